"""The internal contract orders relies on: lookup, reservations, category usage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from shopfleet.products import app as products_app
from shopfleet.products import reservations
from tests.categories.helpers import INTERNAL
from tests.products.helpers import insert_products
from tests.support import MakePlatform, Platform

INSUFFICIENT = "urn:shopfleet:problem:insufficient-stock"
RELEASED = "urn:shopfleet:problem:reservation-released"


@pytest.fixture
async def store(make_platform: MakePlatform) -> AsyncIterator[Platform]:
    async with make_platform("products") as platform:
        yield platform


async def stocked(platform: Platform, *stocks: int, category: uuid.UUID | None = None) -> list[str]:
    category = category or uuid.uuid4()
    rows = [
        {"name": f"Item {i}", "price_cents": 1000 + i, "stock": stock, "category_id": category}
        for i, stock in enumerate(stocks)
    ]
    return [str(product_id) for product_id in await insert_products(platform, rows)]


async def reserve(
    platform: Platform, order_id: str, items: dict[str, int] | list[Any]
) -> httpx.Response:
    lines = (
        [{"productId": p, "quantity": q} for p, q in items.items()]
        if isinstance(items, dict)
        else items
    )
    return await platform.client.post(
        "/internal/products/reservations",
        json={"orderId": order_id, "items": lines},
        headers=INTERNAL,
    )


async def release(platform: Platform, order_id: str) -> httpx.Response:
    return await platform.client.post(
        f"/internal/products/reservations/{order_id}/release", headers=INTERNAL
    )


async def stock_of(platform: Platform, product_id: str) -> int:
    response = await platform.client.get(f"/v1/products/{product_id}", params={"fields": "stock"})
    stock: int = response.json()["stock"]
    return stock


async def test_lookup_returns_the_known_products(store: Platform) -> None:
    a, b = await stocked(store, 3, 0)
    response = await store.client.post(
        "/internal/products/lookup", json={"ids": [a, str(uuid.uuid4()), b, a]}, headers=INTERNAL
    )
    assert response.status_code == 200
    products = sorted(response.json()["products"], key=lambda p: p["stock"])
    assert products == [
        {"id": b, "sku": products[0]["sku"], "name": "Item 1", "price": 10.01, "stock": 0},
        {"id": a, "sku": products[1]["sku"], "name": "Item 0", "price": 10.0, "stock": 3},
    ]
    empty = await store.client.post("/internal/products/lookup", json={"ids": []}, headers=INTERNAL)
    assert empty.json() == {"products": []}
    too_many = await store.client.post(
        "/internal/products/lookup",
        json={"ids": [str(uuid.uuid4()) for _ in range(101)]},
        headers=INTERNAL,
    )
    assert too_many.status_code == 422
    bad_id = await store.client.post(
        "/internal/products/lookup", json={"ids": ["x"]}, headers=INTERNAL
    )
    assert bad_id.status_code == 422


async def test_internal_routes_need_the_credential(store: Platform) -> None:
    (product,) = await stocked(store, 3)
    order = str(uuid.uuid4())
    calls = [
        ("POST", "/internal/products/lookup", {"ids": [product]}),
        (
            "POST",
            "/internal/products/reservations",
            {"orderId": order, "items": [{"productId": product, "quantity": 1}]},
        ),
        ("POST", f"/internal/products/reservations/{order}/release", None),
        ("GET", f"/internal/products/reservations/{order}", None),
        ("GET", f"/internal/products/category-usage/{uuid.uuid4()}", None),
    ]
    for method, path, body in calls:
        for headers in ({}, {"X-Internal-Token": "wrong"}):
            response = await store.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, path
    assert await stock_of(store, product) == 3
    missing = await store.client.get(f"/internal/products/reservations/{order}", headers=INTERNAL)
    assert missing.status_code == 404  # the refused release left no tombstone


async def test_reserve_takes_every_line_and_repeats_are_no_ops(store: Platform) -> None:
    a, b = await stocked(store, 5, 4)
    order = str(uuid.uuid4())
    lines = [
        {"productId": b, "quantity": 1},
        {"productId": a, "quantity": 2},
        {"productId": b, "quantity": 2},  # the same product twice: summed
    ]
    first = await reserve(store, order, lines)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["orderId"] == order and body["status"] == "reserved"
    assert sorted((i["productId"], i["quantity"]) for i in body["items"]) == sorted(
        [(a, 2), (b, 3)]
    )
    assert (await stock_of(store, a), await stock_of(store, b)) == (3, 1)
    listed = await store.client.get("/v1/products", params={"fields": "stock", "sort": "price"})
    assert [p["stock"] for p in listed.json()["results"]] == [3, 1]
    again = await reserve(store, order, lines)
    assert again.status_code == 200 and again.json() == body
    assert (await stock_of(store, a), await stock_of(store, b)) == (3, 1)
    stored = await store.client.get(f"/internal/products/reservations/{order}", headers=INTERNAL)
    assert stored.status_code == 200 and stored.json() == body


async def test_reserve_is_all_or_nothing(store: Platform) -> None:
    a, b, c = await stocked(store, 5, 1, 0)
    order = str(uuid.uuid4())
    response = await reserve(store, order, {a: 2, b: 3, c: 1})
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == INSUFFICIENT and problem["released"] is False
    assert response.headers["content-type"] == "application/problem+json"
    assert sorted(problem["lines"], key=lambda line: line["available"]) == [
        {"productId": c, "requested": 1, "available": 0},
        {"productId": b, "requested": 3, "available": 1},
    ]
    assert [await stock_of(store, p) for p in (a, b, c)] == [5, 1, 0]
    nothing = await store.client.get(f"/internal/products/reservations/{order}", headers=INTERNAL)
    assert nothing.status_code == 404
    # The same order id may try again once stock allows it.
    assert (await reserve(store, order, {a: 5, b: 1})).status_code == 200
    assert [await stock_of(store, p) for p in (a, b, c)] == [0, 0, 0]


async def test_a_refusal_asked_to_release_leaves_a_tombstone(store: Platform) -> None:
    """`releaseOnRefusal`: on PostgreSQL a refusal releases the order id in the same
    statement and says so, so a late attempt of the order takes nothing. SQLite's refusal
    writes nothing and says `released: false`: the caller releases as before."""
    (a,) = await stocked(store, 1)
    order = str(uuid.uuid4())
    body = {"orderId": order, "items": [{"productId": a, "quantity": 2}], "releaseOnRefusal": True}
    refused = await store.client.post(
        "/internal/products/reservations", json=body, headers=INTERNAL
    )
    assert refused.status_code == 409 and refused.json()["type"] == INSUFFICIENT
    on_postgres = store.backend == "postgres"
    assert refused.json()["released"] is on_postgres
    stored = await store.client.get(f"/internal/products/reservations/{order}", headers=INTERNAL)
    if on_postgres:
        assert stored.json() == {"orderId": order, "status": "released", "items": []}
        late = await reserve(store, order, {a: 1})
        assert late.status_code == 409 and late.json()["type"] == RELEASED
        assert await stock_of(store, a) == 1
    else:
        assert stored.status_code == 404
    # A repeat of the refusal answers the same whatever it finds stored.
    again = await store.client.post("/internal/products/reservations", json=body, headers=INTERNAL)
    assert again.status_code == 409
    assert again.json()["type"] == (RELEASED if on_postgres else INSUFFICIENT)


async def test_reserve_rejects_bad_requests_and_unknown_products(store: Platform) -> None:
    (a,) = await stocked(store, 5)
    unknown = str(uuid.uuid4())
    response = await reserve(store, str(uuid.uuid4()), {a: 1, unknown: 1})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "items[1].productId"
    for order, items in (
        (str(uuid.uuid4()), []),
        (str(uuid.uuid4()), [{"productId": a, "quantity": 0}]),
        (str(uuid.uuid4()), [{"productId": a, "quantity": 101}]),
        (str(uuid.uuid4()), [{"productId": a, "quantity": 1.5}]),
        (str(uuid.uuid4()), [{"productId": a, "quantity": "1"}]),
        (str(uuid.uuid4()), [{"productId": a}]),
        (str(uuid.uuid4()), [{"productId": "nope", "quantity": 1}]),
        ("not-a-uuid", [{"productId": a, "quantity": 1}]),
        (str(uuid.uuid4()), [{"productId": a, "quantity": 1}] * 101),
    ):
        assert (await reserve(store, order, items)).status_code == 422, items
    assert await stock_of(store, a) == 5


async def test_release_returns_exactly_what_was_reserved_once(store: Platform) -> None:
    a, b = await stocked(store, 5, 5)
    order = str(uuid.uuid4())
    reserved = await reserve(store, order, {a: 2, b: 5})
    assert reserved.status_code == 200
    # Stock that changed meanwhile is not what a release puts back.
    await store.client.post(
        "/internal/products/reservations",
        json={"orderId": str(uuid.uuid4()), "items": [{"productId": a, "quantity": 1}]},
        headers=INTERNAL,
    )
    first = await release(store, order)
    assert first.status_code == 200
    assert first.json() == {**reserved.json(), "status": "released"}
    assert (await stock_of(store, a), await stock_of(store, b)) == (4, 5)
    second = await release(store, order)
    assert second.status_code == 200 and second.json() == first.json()
    assert (await stock_of(store, a), await stock_of(store, b)) == (4, 5)
    late = await reserve(store, order, {a: 1})
    assert late.status_code == 409 and late.json()["type"] == RELEASED
    assert await stock_of(store, a) == 4
    stored = await store.client.get(f"/internal/products/reservations/{order}", headers=INTERNAL)
    assert stored.json() == first.json()


async def test_release_before_reserve_leaves_a_tombstone(store: Platform) -> None:
    (a,) = await stocked(store, 5)
    order = str(uuid.uuid4())
    first = await release(store, order)
    assert first.status_code == 200
    assert first.json() == {"orderId": order, "status": "released", "items": []}
    assert (await release(store, order)).json() == first.json()
    late = await reserve(store, order, {a: 1})
    assert late.status_code == 409 and late.json()["type"] == RELEASED
    assert await stock_of(store, a) == 5
    stored = await store.client.get(f"/internal/products/reservations/{order}", headers=INTERNAL)
    assert stored.json() == first.json()


async def test_malformed_order_ids_are_404(store: Platform) -> None:
    for path in ("/internal/products/reservations/not-a-uuid", "/internal/products/reservations/1"):
        assert (await store.client.get(path, headers=INTERNAL)).status_code == 404
        released = await store.client.post(f"{path}/release", headers=INTERNAL)
        assert released.status_code == 404


async def test_category_usage_counts_products(store: Platform) -> None:
    category = uuid.uuid4()
    await stocked(store, 1, 2, 3, category=category)
    await stocked(store, 1)
    usage = await store.client.get(
        f"/internal/products/category-usage/{category}", headers=INTERNAL
    )
    assert usage.status_code == 200 and usage.json() == {"count": 3}
    other = await store.client.get(
        f"/internal/products/category-usage/{uuid.uuid4()}", headers=INTERNAL
    )
    assert other.json() == {"count": 0}


async def test_concurrent_orders_for_the_last_units_never_oversell(store: Platform) -> None:
    (a,) = await stocked(store, 5)
    responses = await asyncio.gather(
        *(reserve(store, str(uuid.uuid4()), {a: 1}) for _ in range(20))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 5 + [409] * 15
    assert await stock_of(store, a) == 0


async def test_concurrent_multi_line_orders_stay_consistent(store: Platform) -> None:
    a, b = await stocked(store, 6, 6)
    # Lines in both orders: row locks are taken in id order, so no deadlock either way.
    orders = [{a: 1, b: 2} if i % 2 else {b: 2, a: 1} for i in range(8)]
    responses = await asyncio.gather(*(reserve(store, str(uuid.uuid4()), o) for o in orders))
    won = [r for r in responses if r.status_code == 200]
    assert len(won) == 3 and all(r.status_code in (200, 409) for r in responses)
    assert (await stock_of(store, a), await stock_of(store, b)) == (3, 0)


@pytest.mark.parametrize("stock", [10, 3])
async def test_concurrent_repeats_of_one_order_reserve_once(store: Platform, stock: int) -> None:
    # With 3 in stock, every repeat but the first finds too little left: it must still
    # answer the reservation the first one made, not refuse it.
    (a,) = await stocked(store, stock)
    order = str(uuid.uuid4())
    responses = await asyncio.gather(*(reserve(store, order, {a: 3}) for _ in range(10)))
    assert {response.status_code for response in responses} == {200}
    assert len({response.text for response in responses}) == 1
    assert await stock_of(store, a) == stock - 3
    releases = await asyncio.gather(*(release(store, order) for _ in range(10)))
    assert {response.status_code for response in releases} == {200}
    assert {tuple(map(str, r.json()["items"])) for r in releases} == {
        tuple(map(str, responses[0].json()["items"]))
    }
    assert await stock_of(store, a) == stock


async def test_a_repeat_answers_what_is_stored_whatever_the_stock_is_now(store: Platform) -> None:
    a, b = await stocked(store, 3, 1)
    order = str(uuid.uuid4())
    first = await reserve(store, order, {a: 3})
    assert first.status_code == 200
    again = await reserve(store, order, {a: 3})  # none left: still this order's reservation
    assert again.status_code == 200 and again.json() == first.json()
    assert await stock_of(store, a) == 0
    released = str(uuid.uuid4())
    assert (await release(store, released)).status_code == 200
    for items in ({b: 5}, {b: 1}, {str(uuid.uuid4()): 1}):  # short, enough, unknown
        late = await reserve(store, released, items)
        assert late.status_code == 409 and late.json()["type"] == RELEASED, items
    assert await stock_of(store, b) == 1


async def test_racing_reserve_and_release_of_one_order_settle_consistently(store: Platform) -> None:
    (a,) = await stocked(store, 100)
    orders = [str(uuid.uuid4()) for _ in range(10)]
    calls = [reserve(store, o, {a: 2}) for o in orders] + [release(store, o) for o in orders]
    await asyncio.gather(*calls)
    # Whatever the interleaving, every order ends released and all stock is back.
    for order in orders:
        stored = await store.client.get(
            f"/internal/products/reservations/{order}", headers=INTERNAL
        )
        assert stored.json()["status"] == "released"
    assert await stock_of(store, a) == 100


async def _reservation_answers(platform: Platform) -> list[tuple[int, str, str]]:
    """Every kind of answer POST /internal/products/reservations gives, ids named."""
    a, b = (uuid.UUID(int=n) for n in (0xA, 0xB))
    rows = [
        {"id": a, "sku": "PARITY-A", "name": "A", "price_cents": 1250, "stock": 5},
        {"id": b, "sku": "PARITY-B", "name": "B", "price_cents": 99, "stock": 1},
    ]
    await insert_products(platform, [{**row, "category_id": uuid.uuid4()} for row in rows])
    first, short, unknown, released = (str(uuid.UUID(int=n)) for n in (1, 2, 3, 4))
    before = await stock_of(platform, str(a))  # the detail is cached now
    calls: list[tuple[str, dict[str, int] | list[Any]]] = [
        (first, [{"productId": str(a), "quantity": 2}, {"productId": str(b), "quantity": 1}]),
        (first, [{"productId": str(a), "quantity": 2}, {"productId": str(b), "quantity": 1}]),
        (short, {str(a): 9}),
        (unknown, {str(a): 1, str(uuid.UUID(int=0xC)): 1}),
        (str(uuid.UUID(int=5)), [{"productId": str(a), "quantity": 0}]),
    ]
    responses = [await reserve(platform, order, items) for order, items in calls]
    await release(platform, released)
    responses.append(await reserve(platform, released, {str(a): 1}))
    responses.append(
        await platform.client.post(
            "/internal/products/reservations",
            json={"orderId": released, "items": []},
            headers={"X-Internal-Token": "wrong"},
        )
    )
    responses.append(
        await platform.client.post(
            "/internal/products/reservations",
            content=b"{not json",
            headers={**INTERNAL, "Content-Type": "application/json"},
        )
    )
    assert (before, await stock_of(platform, str(a))) == (5, 3)  # never stale after an order
    return [(r.status_code, r.headers["content-type"], r.text) for r in responses]


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite's reservations go to the endpoint
async def test_direct_reservations_answer_as_the_endpoint(
    make_platform: MakePlatform, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a reservation is answered without FastAPI (common/direct_writes.py):
    every answer, the cache invalidation and every refusal equal the endpoint's."""
    endpoint_calls = 0
    endpoint_reserve = reservations.reserve

    async def counted(**kwargs: Any) -> Any:
        nonlocal endpoint_calls
        endpoint_calls += 1
        return await endpoint_reserve(**kwargs)

    monkeypatch.setattr(reservations, "reserve", counted)
    async with make_platform("products") as platform:
        direct = await _reservation_answers(platform)
    assert endpoint_calls == 0  # the refusals too: only the bad requests went there
    assert [status for status, _, _ in direct] == [200, 200, 409, 422, 422, 409, 401, 400]
    monkeypatch.setattr(products_app, "SPEC", replace(products_app.SPEC, direct_writes=()))
    async with make_platform("products") as platform:
        assert await _reservation_answers(platform) == direct
