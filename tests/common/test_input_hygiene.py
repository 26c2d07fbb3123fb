"""One input hygiene rule: text with NUL, other C0 controls or unpaired surrogates is a 422."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from shopfleet.common.http import BreakerState
from shopfleet.common.schemas import SafeStr
from tests.conftest import bearer, register, unique_email
from tests.orders.conftest import ADDRESS, open_shop

FORBIDDEN = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)]
_safe: TypeAdapter[str] = TypeAdapter(SafeStr)


@given(
    text=st.text(),
    bad=st.sampled_from(FORBIDDEN) | st.integers(0xD800, 0xDFFF).map(chr),
    at=st.integers(0, 50),
)
def test_the_rule_refuses_every_forbidden_code_point_anywhere(text: str, bad: str, at: int) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        _safe.validate_python(text[:at] + bad + text[at:])


@given(st.text(st.characters(exclude_categories=["Cc", "Cs"]) | st.sampled_from("\t\n\r")))
def test_the_rule_keeps_every_other_text(text: str) -> None:
    assert _safe.validate_python(text) == text


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    # ensure_ascii: NUL and surrogates travel as \\u escapes, as any JSON client sends them.
    return {
        "content": json.dumps(body),
        "headers": {"content-type": "application/json", **(headers or {})},
    }


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]], response.text


async def test_auth_refuses_control_characters(make_platform: Any) -> None:
    async with make_platform("auth") as platform:
        client = platform.client
        login = await client.post("/v1/auth/login", **_json({"email": "a\x00b", "password": "x"}))
        _refused(login, "email")
        for field, value in (
            ("name", "Eve\x00"),
            ("name", "Eve\ud800"),
            ("password", "pass\x00word"),
        ):
            body = {"email": unique_email(), "password": "long-enough-1", "name": "Eve"}
            body[field] = value
            _refused(await client.post("/v1/auth/register", **_json(body)), field)
        refresh = await client.post("/v1/auth/refresh", **_json({"refreshToken": "x\x1bz"}))
        _refused(refresh, "refreshToken")


async def test_a_nul_profile_name_is_a_422_and_leaves_the_breaker_closed(
    make_platform: Any,
) -> None:
    async with make_platform("auth", "users") as platform:
        customer = bearer(await register(platform.client))
        for _ in range(6):
            response = await platform.client.patch(
                "/v1/users/me", **_json({"name": "x\x00"}, customer)
            )
            _refused(response, "name")
        assert platform.resources("users").http.breaker("auth").state is BreakerState.CLOSED
        assert (await platform.client.get("/v1/users/me", headers=customer)).status_code == 200


async def test_catalog_and_orders_refuse_control_characters(make_platform: Any) -> None:
    async with open_shop(make_platform) as shop:
        client = shop.client
        product = await shop.product(stock=5)
        # On SQLite `q=%00` used to match every product; on PostgreSQL it was a 500.
        for query in ("q=%00", "q=a%00b", "category=%00", "fields=id%01", "q=%7F"):
            response = await client.get(f"/v1/products?{query}")
            _refused(response, query.split("=")[0])
        _refused(await client.get("/v1/categories/a%00b"), "id_or_slug")
        _refused(await client.get(f"/v1/products/{product}%00"), "product_id")
        category = await client.post("/v1/categories", **_json({"name": "Tools\x00"}, shop.admin))
        _refused(category, "name")
        created = await client.post(
            "/v1/products",
            **_json(
                {
                    "sku": "NUL-1",
                    "name": "Hammer",
                    "description": "heavy\x00",
                    "price": 1,
                    "categoryId": shop.category_id,
                    "stock": 1,
                },
                shop.admin,
            ),
        )
        _refused(created, "description")
        customer = await shop.customer()
        body = {
            "items": [{"productId": product, "quantity": 1}],
            "shippingAddress": {**ADDRESS, "line1": "1 Main\x00St"},
        }
        order = await client.post("/v1/orders", **_json(body, customer))
        _refused(order, "shippingAddress.line1")
        # Tab, line feed and carriage return stay allowed in free text.
        fine = await client.patch(
            f"/v1/products/{product}",
            **_json({"description": "line one\r\n\tline two"}, shop.admin),
        )
        assert fine.status_code == 200, fine.text
        assert await shop.stock(product) == 5
