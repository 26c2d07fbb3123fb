"""Products' writes and detail reads (API.md "Products service"), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from shopfleet.products.categories_client import CategoriesClient
from tests.categories.helpers import admin_headers, create_category, customer_headers
from tests.products.helpers import create_product, product_body
from tests.support import MakePlatform, Platform, with_fields

PUBLIC_FIELDS = {
    "id", "sku", "name", "description", "price", "currency", "categoryId", "stock",
    "inStock", "image", "createdAt", "updatedAt",
}  # fmt: skip


@dataclass(kw_only=True)
class Shop(Platform):
    """Auth, categories and products with a signed-in admin and one category."""

    admin: dict[str, str]
    category: dict[str, Any]


@pytest.fixture
async def shop(make_platform: MakePlatform) -> AsyncIterator[Shop]:
    async with make_platform("auth", "categories", "products") as platform:
        admin = await admin_headers(platform)
        category = await create_category(platform, admin, "Lighting")
        yield with_fields(platform, Shop, admin=admin, category=category)


async def test_create_returns_the_product_and_reads_it_back(shop: Shop) -> None:
    created = await create_product(
        shop,
        shop.admin,
        shop.category["id"],
        sku=" lamp-01 ",
        name=" Brass Lamp ",
        description="Warm light",
        price=1234.5,
        stock=0,
        image="https://images.example.com/lamp.jpg",
    )
    assert set(created) == PUBLIC_FIELDS
    assert created["sku"] == "LAMP-01" and created["name"] == "Brass Lamp"
    assert created["price"] == 1234.5 and created["currency"] == "USD"
    assert created["stock"] == 0 and created["inStock"] is False
    assert created["categoryId"] == shop.category["id"]
    assert created["image"] == "https://images.example.com/lamp.jpg"
    assert created["createdAt"].endswith("Z") and created["createdAt"] == created["updatedAt"]
    detail = await shop.client.get(f"/v1/products/{created['id']}")
    assert detail.status_code == 200 and detail.json() == created


async def test_prices_are_exact(shop: Shop) -> None:
    for sent, shown in ((0.1, "0.1"), (19.99, "19.99"), (99999999.99, "99999999.99"), (7, "7.0")):
        product = await create_product(shop, shop.admin, shop.category["id"], price=sent)
        raw = await shop.client.get(f"/v1/products/{product['id']}", params={"fields": "price"})
        assert f'"price":{shown}' in raw.text, raw.text
    # More digits than a float holds: still three decimals, still refused.
    body = orjson.dumps(product_body(shop.category["id"], price="P"))
    response = await shop.client.post(
        "/v1/products",
        content=body.replace(b'"P"', b"19.9900000000000000001"),
        headers={**shop.admin, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "price"


BAD_CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"price": 19.999}, "price"),
    ({"price": -1}, "price"),
    ({"price": "19.99"}, "price"),
    ({"price": True}, "price"),
    ({"price": 100000000}, "price"),
    ({"stock": -1}, "stock"),
    ({"stock": 1.5}, "stock"),
    ({"stock": "5"}, "stock"),
    ({"sku": "has space"}, "sku"),
    ({"sku": ""}, "sku"),
    ({"name": "  "}, "name"),
    ({"image": "ftp://example.com/a.png"}, "image"),
    ({"image": "not a url"}, "image"),
    ({"categoryId": "not-a-uuid"}, "categoryId"),
    ({"categoryId": None}, "categoryId"),
    ({"role": "admin"}, "role"),
    ({"currency": "EUR"}, "currency"),
]


async def test_create_rejects_bad_input(shop: Shop) -> None:
    for change, field in BAD_CHANGES:
        response = await shop.client.post(
            "/v1/products", json=product_body(shop.category["id"], **change), headers=shop.admin
        )
        assert response.status_code == 422, (change, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], change
    assert (await shop.client.get("/v1/products")).json()["pagination"]["total"] == 0


async def test_missing_fields_are_422(shop: Shop) -> None:
    for missing in ("sku", "name", "price", "categoryId", "stock"):
        body = product_body(shop.category["id"])
        del body[missing]
        response = await shop.client.post("/v1/products", json=body, headers=shop.admin)
        assert response.status_code == 422, missing


async def test_duplicate_sku_is_409_whatever_the_case(shop: Shop) -> None:
    await create_product(shop, shop.admin, shop.category["id"], sku="DUP-1")
    response = await shop.client.post(
        "/v1/products", json=product_body(shop.category["id"], sku="dup-1"), headers=shop.admin
    )
    assert response.status_code == 409
    assert response.json()["type"] == "urn:shopfleet:problem:sku-taken"


async def test_unknown_category_is_422(shop: Shop) -> None:
    response = await shop.client.post(
        "/v1/products", json=product_body(str(uuid.uuid4())), headers=shop.admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "categoryId"


async def test_category_checks_fall_back_to_recent_answers_when_categories_is_down(
    shop: Shop,
) -> None:
    await create_product(shop, shop.admin, shop.category["id"])  # categories confirms it
    by_slug = await shop.client.get("/v1/products", params={"category": "lighting"})
    assert by_slug.json()["pagination"]["total"] == 1
    shop.mesh.apps.pop("categories")
    cached_slug = await shop.client.get("/v1/products", params={"category": "lighting"})
    assert cached_slug.status_code == 200 and cached_slug.json()["pagination"]["total"] == 1
    unknown_slug = await shop.client.get("/v1/products", params={"category": "garden"})
    assert unknown_slug.status_code == 503
    known = await shop.client.post(
        "/v1/products", json=product_body(shop.category["id"]), headers=shop.admin
    )
    assert known.status_code == 201
    unknown = await shop.client.post(
        "/v1/products", json=product_body(str(uuid.uuid4())), headers=shop.admin
    )
    assert unknown.status_code == 503
    assert unknown.headers["retry-after"]
    # A sighting is trusted for a minute only.
    directory = shop.resources("products").state(CategoriesClient)
    directory.clock = lambda: time.monotonic() + 61
    stale = await shop.client.post(
        "/v1/products", json=product_body(shop.category["id"]), headers=shop.admin
    )
    assert stale.status_code == 503


async def test_category_check_without_categories_is_503(make_platform: MakePlatform) -> None:
    async with make_platform("auth", "products") as platform:
        admin = await admin_headers(platform)
        response = await platform.client.post(
            "/v1/products", json=product_body(str(uuid.uuid4())), headers=admin
        )
        assert response.status_code == 503
        listing = await platform.client.get("/v1/products")
        assert listing.status_code == 200  # reads without a category filter need no one


async def test_writes_need_an_admin(shop: Shop) -> None:
    product = await create_product(shop, shop.admin, shop.category["id"])
    path = f"/v1/products/{product['id']}"
    customer = await customer_headers(shop)
    for headers, status in (({}, 401), (customer, 403)):
        body = product_body(shop.category["id"])
        assert (
            await shop.client.post("/v1/products", json=body, headers=headers)
        ).status_code == status
        assert (
            await shop.client.patch(path, json={"stock": 9}, headers=headers)
        ).status_code == status
        assert (await shop.client.delete(path, headers=headers)).status_code == status
    assert (await shop.client.get(path)).json()["stock"] == product["stock"]


async def test_update_changes_only_what_is_sent(shop: Shop) -> None:
    other = await create_category(shop, shop.admin, "Furniture")
    product = await create_product(
        shop, shop.admin, shop.category["id"], description="Old", image="http://x.example/a.png"
    )
    path = f"/v1/products/{product['id']}"
    response = await shop.client.patch(
        path,
        json={"price": 5.5, "stock": 0, "categoryId": other["id"], "description": None},
        headers=shop.admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["price"] == 5.5 and body["stock"] == 0 and body["inStock"] is False
    assert body["categoryId"] == other["id"] and body["description"] is None
    assert body["name"] == product["name"] and body["image"] == product["image"]
    assert body["updatedAt"] > product["updatedAt"] and body["createdAt"] == product["createdAt"]
    assert (await shop.client.get(path)).json() == body


async def test_update_rejects_bad_changes(shop: Shop) -> None:
    await create_product(shop, shop.admin, shop.category["id"], sku="TAKEN-1")
    product = await create_product(shop, shop.admin, shop.category["id"])
    path = f"/v1/products/{product['id']}"
    for body in (
        {"name": None}, {"price": None}, {"stock": None}, {"sku": None}, {"categoryId": None},
        {"price": 1.234}, {"stock": -3}, {"id": str(uuid.uuid4())}, {"categoryId": str(uuid.uuid4())},
    ):  # fmt: skip
        response = await shop.client.patch(path, json=body, headers=shop.admin)
        assert response.status_code == 422, body
    taken = await shop.client.patch(path, json={"sku": "taken-1"}, headers=shop.admin)
    assert taken.status_code == 409
    assert (await shop.client.get(path)).json() == product


async def test_delete_and_unknown_or_malformed_ids(shop: Shop) -> None:
    product = await create_product(shop, shop.admin, shop.category["id"])
    path = f"/v1/products/{product['id']}"
    assert (await shop.client.delete(path, headers=shop.admin)).status_code == 204
    assert (await shop.client.get(path)).status_code == 404
    for key in (product["id"], str(uuid.uuid4()), "not-a-uuid", "1"):
        missing = f"/v1/products/{key}"
        assert (await shop.client.get(missing)).status_code == 404
        assert (
            await shop.client.patch(missing, json={"stock": 1}, headers=shop.admin)
        ).status_code == 404
        assert (await shop.client.delete(missing, headers=shop.admin)).status_code == 404
        assert (await shop.client.get(missing)).headers[
            "content-type"
        ] == "application/problem+json"


async def test_detail_field_selection(shop: Shop) -> None:
    product = await create_product(shop, shop.admin, shop.category["id"], stock=3)
    path = f"/v1/products/{product['id']}"
    chosen = await shop.client.get(path, params={"fields": "name,inStock, price"})
    assert chosen.json() == {
        "id": product["id"],
        "name": product["name"],
        "inStock": True,
        "price": product["price"],
    }
    only_id = await shop.client.get(path, params={"fields": "id"})
    assert only_id.json() == {"id": product["id"]}
    for fields in ("name,bogus", "", ",", "Name", "price_cents"):
        response = await shop.client.get(path, params={"fields": fields})
        assert response.status_code == 422, fields
        assert response.json()["errors"][0]["field"] == "fields"


async def test_malformed_json_and_wrong_content_type(shop: Shop) -> None:
    bad = await shop.client.post(
        "/v1/products", content=b"{nope", headers={**shop.admin, "content-type": "application/json"}
    )
    assert bad.status_code == 400
    text = await shop.client.post(
        "/v1/products", content=b"sku=a", headers={**shop.admin, "content-type": "text/plain"}
    )
    assert text.status_code == 415


async def test_openapi_documents_the_public_api_only(shop: Shop) -> None:
    async with shop.instance_client("products") as client:
        schema = (await client.get("/openapi.json")).json()
    listing = schema["paths"]["/v1/products"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"page", "limit", "category", "inStock", "minPrice", "maxPrice", "q", "sort",
            "fields", "cursor"} <= names  # fmt: skip
    assert not [path for path in schema["paths"] if path.startswith("/internal")]
