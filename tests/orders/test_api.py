"""The orders contract of API.md, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any

import orjson
import pytest

from shopfleet.common.direct_writes import DirectAnswer
from shopfleet.common.errors import ShopfleetError
from shopfleet.orders import api as orders_api
from shopfleet.orders import app as orders_app
from tests.orders.conftest import ADDRESS, Shop, open_shop

ORDER_FIELDS = {
    "id",
    "userId",
    "status",
    "items",
    "total",
    "currency",
    "shippingAddress",
    "createdAt",
    "updatedAt",
}


async def test_create_takes_prices_from_products(shop: Shop) -> None:
    pricey = await shop.product(price=19.99, stock=10)
    cheap = await shop.product(price=0.1, stock=10)
    customer = await shop.customer()
    response = await shop.order(customer, [(pricey, 2), (cheap, 3)])
    assert response.status_code == 201, response.text
    order = response.json()
    assert set(order) == ORDER_FIELDS
    assert response.headers["location"] == f"/v1/orders/{order['id']}"
    assert order["status"] == "confirmed" and order["currency"] == "USD"
    assert order["items"][0]["productId"] == pricey
    assert order["items"][0]["unitPrice"] == 19.99 and order["items"][0]["lineTotal"] == 39.98
    assert order["items"][1]["unitPrice"] == 0.1 and order["items"][1]["lineTotal"] == 0.3
    assert order["total"] == 40.28  # exact: 39.98 + 0.30
    assert order["items"][0]["sku"].startswith("SKU-") and order["items"][0]["name"]
    assert order["shippingAddress"] == {**ADDRESS, "label": None, "line2": None}
    assert order["createdAt"].endswith("Z")
    assert await shop.stock(pricey) == 8 and await shop.stock(cheap) == 7
    reservation = await shop.reservation(order["id"])
    assert reservation is not None and reservation["status"] == "reserved"


async def test_a_client_price_or_status_is_refused(shop: Shop) -> None:
    product = await shop.product()
    customer = await shop.customer()
    body = {
        "items": [{"productId": product, "quantity": 1, "unitPrice": 0.01}],
        "shippingAddress": ADDRESS,
    }
    response = await shop.client.post("/v1/orders", json=body, headers=customer)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert any(e["field"] == "items[0].unitPrice" for e in response.json()["errors"])
    for extra in ({"userId": str(uuid.uuid4())}, {"status": "confirmed"}, {"total": 1}):
        sneaky = {"items": [{"productId": product, "quantity": 1}], "shippingAddress": ADDRESS}
        response = await shop.client.post("/v1/orders", json={**sneaky, **extra}, headers=customer)
        assert response.status_code == 422, extra
    assert await shop.stock(product) == 10


def _items(*pairs: tuple[Any, Any]) -> list[dict[str, Any]]:
    return [{"productId": p, "quantity": q} for p, q in pairs]


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("empty", "items"),
        ("zero", "items[0].quantity"),
        ("over_100", "items[0].quantity"),
        ("fraction", "items[0].quantity"),
        ("string_quantity", "items[0].quantity"),
        ("51_lines", "items"),
        ("duplicate_product", "items"),
        ("not_a_uuid", "items[0].productId"),
        ("no_address", "shippingAddress"),
        ("bad_country", "shippingAddress.country"),
        ("address_extra_field", "shippingAddress.phone"),
    ],
)
async def test_invalid_orders_are_422(shop: Shop, case: str, field: str) -> None:
    product = await shop.product()
    bodies: dict[str, dict[str, Any]] = {
        "empty": {"items": []},
        "zero": {"items": _items((product, 0))},
        "over_100": {"items": _items((product, 101))},
        "fraction": {"items": _items((product, 1.5))},
        "string_quantity": {"items": _items((product, "1"))},
        "51_lines": {"items": _items(*[(str(uuid.uuid4()), 1) for _ in range(51)])},
        "duplicate_product": {"items": _items((product, 1), (product, 2))},
        "not_a_uuid": {"items": _items(("nope", 1))},
        "no_address": {"items": _items((product, 1)), "shippingAddress": None},
        "bad_country": {"shippingAddress": {**ADDRESS, "country": "USA"}},
        "address_extra_field": {"shippingAddress": {**ADDRESS, "phone": "1"}},
    }
    body = {"items": _items((product, 1)), "shippingAddress": ADDRESS, **bodies[case]}
    if body["shippingAddress"] is None:
        del body["shippingAddress"]
    response = await shop.client.post("/v1/orders", json=body, headers=await shop.customer())
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert await shop.stock(product) == 10


async def test_unknown_product_is_422_after_lookup(shop: Shop) -> None:
    known = await shop.product()
    missing = str(uuid.uuid4())
    customer = await shop.customer()
    response = await shop.order(customer, [(known, 1), (missing, 1)])
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "items[1].productId", "message": "No such product."}
    ]
    assert await shop.stock(known) == 10
    listed = await shop.client.get("/v1/orders", headers=customer)
    assert listed.json()["pagination"]["total"] == 0


async def test_insufficient_stock_is_409_naming_the_lines(shop: Shop) -> None:
    plenty = await shop.product(stock=10)
    scarce = await shop.product(stock=2)
    customer = await shop.customer()
    response = await shop.order(customer, [(plenty, 1), (scarce, 3)])
    assert response.status_code == 409
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"] == "urn:shopfleet:problem:insufficient-stock"
    assert [(x["productId"], x["requested"], x["available"]) for x in problem["lines"]] == [
        (scarce, 3, 2)
    ]
    assert problem["lines"][0]["sku"].startswith("SKU-")
    # All or nothing: the line that had stock was not reserved either.
    assert await shop.stock(plenty) == 10 and await shop.stock(scarce) == 2
    rejected = await shop.client.get("/v1/orders", params={"status": "rejected"}, headers=customer)
    assert [o["id"] for o in rejected.json()["results"]] == [problem["orderId"]]
    reservation = await shop.reservation(problem["orderId"])
    assert reservation is None or reservation["status"] == "released"


async def test_list_and_detail_are_scoped_to_the_owner(shop: Shop) -> None:
    product = await shop.product(stock=50)
    ann, bob = await shop.customer(), await shop.customer()
    ann_orders = [(await shop.order(ann, [(product, 1)])).json() for _ in range(3)]
    bob_order = (await shop.order(bob, [(product, 2)])).json()

    listed = await shop.client.get("/v1/orders", headers=ann)
    assert listed.status_code == 200
    page = listed.json()
    assert [o["id"] for o in page["results"]] == [o["id"] for o in reversed(ann_orders)]
    pagination = page["pagination"]
    assert (pagination["page"], pagination["limit"], pagination["total"]) == (1, 20, 3)
    assert pagination["pages"] == 1
    second = await shop.client.get("/v1/orders", params={"limit": 2, "page": 2}, headers=ann)
    assert [o["id"] for o in second.json()["results"]] == [ann_orders[0]["id"]]

    detail = await shop.client.get(f"/v1/orders/{ann_orders[0]['id']}", headers=ann)
    assert detail.status_code == 200 and detail.json() == ann_orders[0]
    assert (await shop.client.get(f"/v1/orders/{bob_order['id']}", headers=ann)).status_code == 404
    for missing_id in (uuid.uuid4(), "not-an-id"):
        missing = await shop.client.get(f"/v1/orders/{missing_id}", headers=ann)
        assert missing.status_code == 404
    assert (await shop.client.get("/v1/orders")).status_code == 401

    everyone = await shop.client.get("/v1/orders", headers=shop.admin)
    assert everyone.json()["pagination"]["total"] == 4
    only_bob = await shop.client.get(
        "/v1/orders", params={"userId": bob_order["userId"]}, headers=shop.admin
    )
    assert [o["id"] for o in only_bob.json()["results"]] == [bob_order["id"]]
    spying = await shop.client.get(
        "/v1/orders", params={"userId": bob_order["userId"]}, headers=ann
    )
    assert spying.status_code == 403
    admin_detail = await shop.client.get(f"/v1/orders/{bob_order['id']}", headers=shop.admin)
    assert admin_detail.status_code == 200


async def test_list_filters_and_validates_queries(shop: Shop) -> None:
    product = await shop.product(stock=1)
    customer = await shop.customer()
    assert (await shop.order(customer, [(product, 1)])).status_code == 201
    assert (await shop.order(customer, [(product, 1)])).status_code == 409
    confirmed = await shop.client.get(
        "/v1/orders", params={"status": "confirmed"}, headers=customer
    )
    assert [o["status"] for o in confirmed.json()["results"]] == ["confirmed"]
    for params in ({"status": "lost"}, {"limit": 0}, {"limit": 101}, {"page": "x"}):
        response = await shop.client.get("/v1/orders", params=params, headers=customer)
        assert response.status_code == 422, params


async def test_cancel_returns_stock_and_is_idempotent(shop: Shop) -> None:
    product = await shop.product(stock=5)
    customer = await shop.customer()
    order = (await shop.order(customer, [(product, 2)])).json()
    assert await shop.stock(product) == 3
    cancelled = await shop.client.post(f"/v1/orders/{order['id']}/cancel", headers=customer)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert await shop.stock(product) == 5
    reservation = await shop.reservation(order["id"])
    assert reservation is not None and reservation["status"] == "released"
    again = await shop.client.post(f"/v1/orders/{order['id']}/cancel", headers=customer)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert await shop.stock(product) == 5


async def test_cancel_is_refused_once_shipped_or_rejected(shop: Shop) -> None:
    product = await shop.product(stock=1)
    customer = await shop.customer()
    shipped = (await shop.order(customer, [(product, 1)])).json()
    rejected = (await shop.order(customer, [(product, 1)])).json()
    await shop.client.patch(
        f"/v1/orders/{shipped['id']}/status", json={"status": "shipped"}, headers=shop.admin
    )
    for order_id in (shipped["id"], rejected["orderId"]):
        response = await shop.client.post(f"/v1/orders/{order_id}/cancel", headers=customer)
        assert response.status_code == 409
        assert response.json()["type"] == "urn:shopfleet:problem:invalid-transition"
    assert await shop.stock(product) == 0


async def test_others_cannot_read_cancel_or_change_an_order(shop: Shop) -> None:
    product = await shop.product()
    owner, other = await shop.customer(), await shop.customer()
    order = (await shop.order(owner, [(product, 1)])).json()
    assert (await shop.client.get(f"/v1/orders/{order['id']}", headers=other)).status_code == 404
    cancel = await shop.client.post(f"/v1/orders/{order['id']}/cancel", headers=other)
    assert cancel.status_code == 404
    listed = await shop.client.get("/v1/orders", headers=other)
    assert listed.json()["results"] == []
    for who in (owner, other):
        change = await shop.client.patch(
            f"/v1/orders/{order['id']}/status", json={"status": "shipped"}, headers=who
        )
        assert change.status_code == 403
    detail = await shop.client.get(f"/v1/orders/{order['id']}", headers=owner)
    assert detail.json()["status"] == "confirmed"
    assert await shop.stock(product) == 9


async def test_admin_status_transitions(shop: Shop) -> None:
    product = await shop.product(stock=5)
    customer = await shop.customer()
    order = (await shop.order(customer, [(product, 1)])).json()
    path = f"/v1/orders/{order['id']}/status"

    async def move(status: str) -> int:
        response = await shop.client.patch(path, json={"status": status}, headers=shop.admin)
        if response.status_code == 200:
            assert response.json()["status"] == status
        return response.status_code

    assert await move("pending") == 409
    assert await move("delivered") == 409  # confirmed -> delivered skips shipping
    assert await move("shipped") == 200
    assert await move("shipped") == 409
    assert await move("cancelled") == 409
    assert await move("delivered") == 200
    assert await move("confirmed") == 409
    assert await shop.stock(product) == 4
    invalid = await shop.client.patch(path, json={"status": "lost"}, headers=shop.admin)
    assert invalid.status_code == 422
    extra = await shop.client.patch(
        path, json={"status": "shipped", "total": 0}, headers=shop.admin
    )
    assert extra.status_code == 422
    missing = await shop.client.patch(
        f"/v1/orders/{uuid.uuid4()}/status", json={"status": "shipped"}, headers=shop.admin
    )
    assert missing.status_code == 404


async def test_admin_cancel_through_status_returns_stock(shop: Shop) -> None:
    product = await shop.product(stock=5)
    customer = await shop.customer()
    order = (await shop.order(customer, [(product, 4)])).json()
    response = await shop.client.patch(
        f"/v1/orders/{order['id']}/status", json={"status": "cancelled"}, headers=shop.admin
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert await shop.stock(product) == 5
    mine = await shop.client.get(f"/v1/orders/{order['id']}", headers=customer)
    assert mine.json()["status"] == "cancelled"


async def test_business_metrics_are_counted(shop: Shop) -> None:
    product = await shop.product(stock=1)
    customer = await shop.customer()
    assert (await shop.order(customer, [(product, 1)], key="k-1")).status_code == 201
    assert (await shop.order(customer, [(product, 1)], key="k-1")).status_code == 201
    assert (await shop.order(customer, [(product, 1)])).status_code == 409
    async with shop.platform.instance_client("orders") as client:
        text = (await client.get("/metrics")).text
    assert "orders_created_total 1.0" in text
    assert "orders_rejected_stock_total 1.0" in text
    assert "idempotent_replays_total 1.0" in text


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _named(answers: list[tuple[int, str, str | None, str | None, Any]]) -> str:
    """The answers with ids named by first appearance, instants and skus blanked: one
    shop's answers equal another's that ran the same requests."""
    text = orjson.dumps(answers, option=orjson.OPT_SORT_KEYS).decode()
    names: dict[str, str] = {}
    text = _UUID.sub(lambda m: names.setdefault(m[0], f"<id {len(names)}>"), text)
    text = re.sub(r"SKU-[0-9a-fA-F]{10}", "<sku>", text)
    return re.sub(r'"(\w+At)":"[^"]*"', r'"\1":"<instant>"', text)


async def _order_answers(shop: Shop) -> str:
    """Every kind of answer POST /v1/orders gives, in a fresh shop."""
    product = await shop.product(price=12.5, stock=5)
    customer = await shop.customer()
    calls = [
        (customer, [(product, 2)], "first"),
        (customer, [(product, 2)], "first"),  # a repeat: replayed
        (customer, [(product, 1)], "first"),  # the key with another body
        (customer, [(product, 9)], None),  # short
        (customer, [(product, 1), (str(uuid.UUID(int=7)), 1)], None),  # unknown product
        ({}, [(product, 1)], None),  # anonymous
        (customer, [(product, 0)], None),  # invalid
        (customer, [(product, 1)], "k" * 256),  # a key too long
    ]
    answers: list[tuple[int, str, str | None, str | None, Any]] = []
    for headers, items, key in calls:
        response = await shop.order(headers, items, key=key)
        answers.append(
            (
                response.status_code,
                response.headers["content-type"],
                response.headers.get("location"),
                response.headers.get("idempotent-replayed"),
                response.json(),
            )
        )
    assert await shop.stock(product) == 3
    return _named(answers)


async def test_direct_orders_answer_as_the_endpoint(
    make_platform: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /v1/orders is answered without FastAPI (common/direct_writes.py) in its plain
    form; every answer equals the endpoint's, which answers the rest."""
    answered: list[int] = []
    stepped_aside = 0

    async def counted(scope: Any, match: Any, body: bytes) -> DirectAnswer | None:
        nonlocal stepped_aside
        try:
            answer = await orders_api._direct_create(scope, match, body)
        except ShopfleetError as refused:
            answered.append(refused.status_code)
            raise
        if answer is None:
            stepped_aside += 1
        else:
            answered.append(answer.status)
        return answer

    (route,) = orders_api.DIRECT_WRITES
    spec = orders_app.SPEC
    monkeypatch.setattr(
        orders_app, "SPEC", replace(spec, direct_writes=[replace(route, answer=counted)])
    )
    async with open_shop(make_platform) as shop:
        direct = await _order_answers(shop)
    assert answered == [201, 201, 409, 409, 422]
    assert stepped_aside == 3  # anonymous, invalid, the long key: the endpoint's to answer
    # Without the rate limiter, which verifies tokens first, the answer verifies its own.
    answered, stepped_aside = [], 0
    async with open_shop(make_platform, orders={"rate_limit_enabled": False}) as shop:
        assert await _order_answers(shop) == direct
    assert (answered, stepped_aside) == ([201, 201, 409, 409, 422], 3)
    monkeypatch.setattr(orders_app, "SPEC", replace(spec, direct_writes=()))
    async with open_shop(make_platform) as shop:
        assert await _order_answers(shop) == direct
