"""GET /v1/products: filters, sorts, field selection, pages and keyset cursors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from shopfleet.common.database import utcnow
from shopfleet.products import reads
from shopfleet.products.schemas import PRODUCT_FIELDS
from tests.categories.helpers import admin_headers, create_category
from tests.products.helpers import insert_products
from tests.support import MakePlatform, Platform, sent_statements, with_fields

SORTS = ["createdAt", "-createdAt", "price", "-price", "name", "-name"]
SORT_KEYS = {"createdAt": "created_at", "price": "price_cents", "name": "name"}


@dataclass(kw_only=True)
class Shelf(Platform):
    """A catalog with the products of `rows` in two categories."""

    rows: list[dict[str, Any]]
    categories: tuple[uuid.UUID, uuid.UUID]


@pytest.fixture
async def shelf(make_platform: MakePlatform) -> AsyncIterator[Shelf]:
    """Eight products with ties in every sort key, in two categories."""
    async with make_platform("auth", "categories", "products") as platform:
        admin = await admin_headers(platform)
        lamps = await create_category(platform, admin, "Lamps")
        seats = await create_category(platform, admin, "Seats", slug="seating")
        c1, c2 = uuid.UUID(lamps["id"]), uuid.UUID(seats["id"])
        t = utcnow().replace(microsecond=0) - timedelta(days=1)
        rows: list[dict[str, Any]] = [
            {
                "name": "Alpha Lamp",
                "price_cents": 1000,
                "stock": 5,
                "category_id": c1,
                "created_at": t,
            },
            {
                "name": "Bravo Chair",
                "price_cents": 2500,
                "stock": 0,
                "category_id": c1,
                "created_at": t + timedelta(seconds=2),
            },
            {
                "name": "Charlie Desk lamp",
                "price_cents": 2500,
                "stock": 3,
                "category_id": c2,
                "created_at": t + timedelta(seconds=2),
            },
            {
                "name": "Delta Lamp",
                "price_cents": 999,
                "stock": 10,
                "category_id": c2,
                "created_at": t + timedelta(seconds=3),
            },
            {
                "name": "Echo Sofa",
                "price_cents": 100000,
                "stock": 1,
                "category_id": c1,
                "created_at": t + timedelta(seconds=4),
            },
            {
                "name": "Bravo Chair",
                "price_cents": 1999,
                "stock": 2,
                "category_id": c2,
                "created_at": t + timedelta(seconds=5),
            },
            {
                "name": "Foxtrot 50% Off_Sale",
                "price_cents": 1,
                "stock": 0,
                "category_id": c1,
                "created_at": t + timedelta(seconds=6),
            },
            {
                "name": "golf stool",
                "price_cents": 4550,
                "stock": 7,
                "category_id": c2,
                "created_at": t + timedelta(seconds=6),
            },
        ]
        for row in rows:
            row["id"] = uuid.uuid4()
        await insert_products(platform, rows)
        yield with_fields(platform, Shelf, rows=rows, categories=(c1, c2))


def _expected(rows: list[dict[str, Any]], sort: str) -> list[str]:
    key = SORT_KEYS[sort.lstrip("-")]
    ordered = sorted(rows, key=lambda r: (r[key], r["id"]), reverse=sort.startswith("-"))
    return [str(r["id"]) for r in ordered]


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [product["id"] for product in response.json()["results"]]


async def test_every_sort_orders_with_id_as_tie_breaker(shelf: Shelf) -> None:
    for sort in SORTS:
        response = await shelf.client.get("/v1/products", params={"sort": sort})
        assert _ids(response) == _expected(shelf.rows, sort), sort


async def test_default_sort_is_newest_first(shelf: Shelf) -> None:
    response = await shelf.client.get("/v1/products")
    assert _ids(response) == _expected(shelf.rows, "-createdAt")
    assert response.json()["pagination"]["total"] == 8


async def test_filters(shelf: Shelf) -> None:
    c1, c2 = shelf.categories

    async def names(**params: Any) -> list[str]:
        response = await shelf.client.get("/v1/products", params={"sort": "name", **params})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["pagination"]["total"] == len(body["results"])
        return [product["name"] for product in body["results"]]

    assert await names(category=str(c2)) == [
        "Bravo Chair", "Charlie Desk lamp", "Delta Lamp", "golf stool"
    ]  # fmt: skip
    assert await names(category="seating") == await names(category=str(c2))
    assert await names(category="lamps") == [
        "Alpha Lamp", "Bravo Chair", "Echo Sofa", "Foxtrot 50% Off_Sale"
    ]  # fmt: skip
    assert await names(category=str(c1)) == await names(category="lamps")
    assert await names(category="no-such-category") == []
    assert await names(category=str(uuid.uuid4())) == []
    assert await names(inStock="false") == ["Bravo Chair", "Foxtrot 50% Off_Sale"]
    assert len(await names(inStock="true")) == 6
    assert await names(minPrice="19.99", maxPrice=25) == [
        "Bravo Chair",
        "Bravo Chair",
        "Charlie Desk lamp",
    ]
    assert await names(minPrice="45.50") == ["Echo Sofa", "golf stool"]
    assert await names(maxPrice="0.01") == ["Foxtrot 50% Off_Sale"]
    assert await names(q="LAMP") == ["Alpha Lamp", "Charlie Desk lamp", "Delta Lamp"]
    assert await names(q="50%") == ["Foxtrot 50% Off_Sale"]
    assert await names(q="alpha%lamp") == []  # "%" is a literal too
    assert await names(q="f_x") == []  # "_" is a literal, not a wildcard (it would match "Fox")
    assert await names(q="off_") == ["Foxtrot 50% Off_Sale"]
    assert await names(q="lamp", category="seating", inStock="true", maxPrice=20) == ["Delta Lamp"]


async def test_offset_pages_and_totals(shelf: Shelf) -> None:
    expected = _expected(shelf.rows, "price")
    pages = []
    for page in (1, 2, 3, 4):
        response = await shelf.client.get(
            "/v1/products", params={"sort": "price", "limit": 3, "page": page}
        )
        pages.append(_ids(response))
        pagination = response.json()["pagination"]
        assert pagination["total"] == 8 and pagination["pages"] == 3 and pagination["page"] == page
    assert pages[0] + pages[1] + pages[2] == expected and pages[3] == []


async def test_cursor_walk_returns_each_product_once(shelf: Shelf) -> None:
    for sort in SORTS:
        seen: list[str] = []
        params: dict[str, Any] = {"sort": sort, "limit": 3, "fields": "sku"}
        for _ in range(10):
            body = (await shelf.client.get("/v1/products", params=params)).json()
            seen += [product["id"] for product in body["results"]]
            assert all(set(product) == {"id", "sku"} for product in body["results"])
            assert body["pagination"]["total"] == 8
            cursor = body["pagination"]["nextCursor"]
            if cursor is None:
                break
            params["cursor"] = cursor
        assert seen == _expected(shelf.rows, sort), sort


async def test_cursor_walk_with_a_filter(shelf: Shelf) -> None:
    in_stock = [r for r in shelf.rows if r["stock"] > 0]
    seen: list[str] = []
    params: dict[str, Any] = {"sort": "-price", "limit": 2, "inStock": "true"}
    while True:
        body = (await shelf.client.get("/v1/products", params=params)).json()
        seen += [product["id"] for product in body["results"]]
        if body["pagination"]["nextCursor"] is None:
            break
        params["cursor"] = body["pagination"]["nextCursor"]
    assert seen == _expected(in_stock, "-price")


async def test_last_offset_page_has_no_next_cursor(shelf: Shelf) -> None:
    last = await shelf.client.get("/v1/products", params={"limit": 4, "page": 2})
    assert last.json()["pagination"]["nextCursor"] is None
    first = await shelf.client.get("/v1/products", params={"limit": 4})
    cursor = first.json()["pagination"]["nextCursor"]
    after = await shelf.client.get("/v1/products", params={"limit": 4, "cursor": cursor})
    assert _ids(after) == _ids(last)


async def test_field_selection_in_lists(shelf: Shelf) -> None:
    response = await shelf.client.get(
        "/v1/products", params={"fields": "name,price,inStock,currency", "sort": "price"}
    )
    first = response.json()["results"][0]
    assert first == {
        "id": str(shelf.rows[6]["id"]),
        "name": "Foxtrot 50% Off_Sale",
        "price": 0.01,
        "inStock": False,
        "currency": "USD",
    }
    unknown = await shelf.client.get("/v1/products", params={"fields": "name,secret"})
    assert unknown.status_code == 422
    assert "secret" in unknown.json()["detail"]


BAD_QUERIES: list[dict[str, Any]] = [
    {"minPrice": "abc"},
    {"maxPrice": "-1"},
    {"minPrice": "1.001"},
    {"minPrice": "NaN"},
    {"minPrice": "30", "maxPrice": "20"},
    {"inStock": "maybe"},
    {"limit": 0},
    {"limit": 101},
    {"page": 0},
    {"page": "two"},
    {"sort": "stock"},
    {"sort": "+price"},
    {"fields": "bogus"},
    {"q": ""},
    {"category": ""},
    {"cursor": "not-a-cursor!"},
    {"cursor": "eyJub3QiOiJhIGxpc3QifQ"},  # base64 JSON, but not a cursor
    {"cursor": "WyJwcmljZSIsMTAwLCJub3QtYS11dWlkIiw1XQ"},  # ["price",100,"not-a-uuid",5]
    {"sort": "price", "cursor": "WyJwcmljZSIsNSw1LDFd"},  # ["price",5,5,1]
    # ["price", 2**64 - 1, uuid, 1]: a key no BIGINT holds
    {
        "sort": "price",
        "cursor": "WyJwcmljZSIsMTg0NDY3NDQwNzM3MDk1NTE2MTUsIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCIsMV0",
    },
    {
        "sort": "price",
        "cursor": "WyJwcmljZSIsMTAwLCIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiLC0xXQ",
    },
    {
        "sort": "price",
        "cursor": "WyJwcmljZSIsMTAwLCIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiXQ",
    },
]


async def test_bad_query_parameters_are_422(shelf: Shelf) -> None:
    for params in BAD_QUERIES:
        response = await shelf.client.get("/v1/products", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_cursor_of_another_sort_or_with_a_page_is_422(shelf: Shelf) -> None:
    body = (await shelf.client.get("/v1/products", params={"sort": "price", "limit": 2})).json()
    cursor = body["pagination"]["nextCursor"]
    assert cursor
    other_sort = await shelf.client.get("/v1/products", params={"sort": "name", "cursor": cursor})
    assert other_sort.status_code == 422
    with_page = await shelf.client.get(
        "/v1/products", params={"sort": "price", "cursor": cursor, "page": 2}
    )
    assert with_page.status_code == 422


async def test_listing_sql_selects_only_what_it_returns(shelf: Shelf) -> None:
    engine = shelf.resources("products").engine
    with sent_statements(engine) as sent:
        first = await shelf.client.get(
            "/v1/products", params={"sort": "name", "limit": 2, "fields": "sku"}
        )
        cursor = first.json()["pagination"]["nextCursor"]
        await shelf.client.get(
            "/v1/products", params={"sort": "name", "limit": 2, "fields": "sku", "cursor": cursor}
        )
    statements = [
        (" ".join(statement.split()), parameters)
        for statement, parameters in sent
        if "FROM products" in statement
    ]
    # The first page counts; a page after a cursor does not (the total rides in the cursor).
    counts = [sql for sql, _ in statements if "count(" in sql]
    assert len(counts) == 1
    pages = [(sql, parameters) for sql, parameters in statements if "count(" not in sql]
    (offset_query, _), (keyset_query, keyset_parameters) = pages
    for sql, _ in pages:
        selected = sql.split(" FROM ")[0]
        assert "sku" in selected and "price_cents" not in selected and "description" not in selected
        assert "LIMIT" in sql
    assert "OFFSET" in offset_query
    # SQLite's dialect always writes "OFFSET ?": there it must be a literal 0.
    assert "OFFSET" not in keyset_query or list(keyset_parameters)[-1] == 0
    assert "(products.name, products.id) >" in keyset_query


@pytest.mark.parametrize("stock", [0, 7])
def test_a_whole_product_renders_as_each_field_does(stock: int) -> None:
    """product_dict's one-call form for every field gives each field's own value, in
    the response model's order; a projection keeps to its fields."""
    row = {
        "id": uuid.uuid4(),
        "sku": "SKU-1",
        "name": "Lamp",
        "description": None,
        "price_cents": 1999,
        "category_id": uuid.uuid4(),
        "stock": stock,
        "image": "https://img.example/1.png",
        "created_at": utcnow(),
        "updated_at": utcnow() + timedelta(seconds=1),
    }
    whole = reads.product_dict(row, PRODUCT_FIELDS, "EUR")
    assert list(whole) == list(PRODUCT_FIELDS)
    assert whole == {field: reads._JSON_VALUES[field](row, "EUR") for field in PRODUCT_FIELDS}
    fields = reads.ordered_fields(frozenset({"price", "id", "inStock"}))
    assert reads.product_dict(row, fields, "EUR") == {
        "id": str(row["id"]),
        "price": 19.99,
        "inStock": stock > 0,
    }
