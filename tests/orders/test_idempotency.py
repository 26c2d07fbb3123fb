"""Idempotency-Key: one order and one answer per key, also for concurrent repeats."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.orders.conftest import ADDRESS, Shop, open_shop, reservation_fault

CONCURRENT_REPEATS = 30


async def test_a_repeat_gets_the_same_order_and_answer(shop: Shop) -> None:
    product = await shop.product(stock=10)
    customer = await shop.customer()
    first = await shop.order(customer, [(product, 2)], key="order-1")
    again = await shop.order(customer, [(product, 2)], key="order-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await shop.stock(product) == 8
    # Without a key every POST is a new order.
    third = await shop.order(customer, [(product, 2)])
    fourth = await shop.order(customer, [(product, 2)])
    assert len({first.json()["id"], third.json()["id"], fourth.json()["id"]}) == 3
    assert await shop.stock(product) == 4


async def test_same_key_with_another_body_is_409(shop: Shop) -> None:
    product = await shop.product(stock=10)
    customer = await shop.customer()
    first = await shop.order(customer, [(product, 1)], key="reused")
    assert first.status_code == 201
    other = await shop.order(customer, [(product, 5)], key="reused")
    assert other.status_code == 409
    assert other.json()["type"] == "urn:shopfleet:problem:idempotency-key-reused"
    elsewhere = await shop.order(
        customer, [(product, 1)], key="reused", address={**ADDRESS, "city": "Shelbyville"}
    )
    assert elsewhere.status_code == 409
    assert await shop.stock(product) == 9


async def test_keys_belong_to_one_user(shop: Shop) -> None:
    product = await shop.product(stock=10)
    ann, bob = await shop.customer(), await shop.customer()
    mine = await shop.order(ann, [(product, 1)], key="shared-key")
    theirs = await shop.order(bob, [(product, 1)], key="shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert await shop.stock(product) == 8


async def test_a_bad_key_is_refused(shop: Shop) -> None:
    product = await shop.product()
    customer = await shop.customer()
    for key in ("x" * 256, "tab\there"):
        response = await shop.order(customer, [(product, 1)], key=key)
        assert response.status_code in (400, 422), key
    assert (await shop.order(customer, [(product, 1)], key="x" * 255)).status_code == 201
    assert await shop.stock(product) == 9


async def _concurrent_repeats(shop: Shop, product: str, quantity: int) -> list[Any]:
    customer = await shop.customer()
    return list(
        await asyncio.gather(
            *(
                shop.order(customer, [(product, quantity)], key="same-key")
                for _ in range(CONCURRENT_REPEATS)
            )
        )
    )


async def test_concurrent_repeats_make_one_order(shop: Shop) -> None:
    product = await shop.product(stock=10)
    responses = await _concurrent_repeats(shop, product, 3)
    assert {r.status_code for r in responses} == {201}
    bodies = [r.json() for r in responses]
    assert len({b["id"] for b in bodies}) == 1
    assert all(b == bodies[0] for b in bodies)
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == (
        CONCURRENT_REPEATS - 1
    )
    assert await shop.stock(product) == 7
    reservation = await shop.reservation(bodies[0]["id"])
    assert reservation is not None and reservation["status"] == "reserved"
    assert [(i["productId"], i["quantity"]) for i in reservation["items"]] == [(product, 3)]
    everyone = await shop.client.get("/v1/orders", headers=shop.admin)
    assert everyone.json()["pagination"]["total"] == 1


async def test_concurrent_repeats_of_a_refused_order_get_the_same_409(shop: Shop) -> None:
    product = await shop.product(stock=2)
    responses = await _concurrent_repeats(shop, product, 3)
    assert {r.status_code for r in responses} == {409}
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    assert bodies[0]["type"] == "urn:shopfleet:problem:insufficient-stock"
    assert await shop.stock(product) == 2
    everyone = await shop.client.get("/v1/orders", headers=shop.admin)
    assert [o["status"] for o in everyone.json()["results"]] == ["rejected"]


async def test_a_repeat_after_an_outage_finishes_the_order(make_platform: Any) -> None:
    # A breaker that never opens: this test is about the saga, not the breaker.
    async with open_shop(make_platform, orders={"breaker_min_calls": 1000}) as shop:
        product = await shop.product(stock=10)
        customer = await shop.customer()
        with reservation_fault(shop, lose="request"):
            outage = await shop.order(customer, [(product, 2)], key="retry-me")
        assert outage.status_code == 503
        assert int(outage.headers["retry-after"]) >= 1
        order_id = outage.json()["orderId"]
        pending = await shop.client.get(f"/v1/orders/{order_id}", headers=customer)
        assert pending.json()["status"] == "pending"
        # Products prices an order when it reserves it: until then the lines wait unpriced.
        assert pending.json()["items"][0]["unitPrice"] == 0 and pending.json()["total"] == 0
        assert await shop.stock(product) == 10

        retried = await shop.order(customer, [(product, 2)], key="retry-me")
        assert retried.status_code == 201
        assert retried.json()["id"] == order_id and retried.json()["status"] == "confirmed"
        assert retried.json()["total"] == 39.98  # priced by the resumed reservation
        again = await shop.order(customer, [(product, 2)], key="retry-me")
        assert again.status_code == 201 and again.json() == retried.json()
        assert await shop.stock(product) == 8
