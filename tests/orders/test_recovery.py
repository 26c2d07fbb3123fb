"""Crash recovery: the sweeper settles orders left pending, keeping stock and orders in step."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from shopfleet.common.database import utcnow
from shopfleet.orders.models import IdempotencyKey
from shopfleet.orders.service import OrdersContext
from shopfleet.orders.sweeper import sweep_once
from tests.orders.conftest import INTERNAL, RESERVE_PATH, Shop, open_shop, reservation_fault

# Every pending order counts as stale at once; the breaker stays out of the way.
SWEEP_NOW = {"orders": {"sweeper_pending_age": 0.0, "breaker_min_calls": 1000}}


def _ctx(shop: Shop) -> OrdersContext:
    return shop.platform.resources("orders").state(OrdersContext)


async def _status(shop: Shop, order_id: str) -> str:
    response = await shop.client.get(f"/v1/orders/{order_id}", headers=shop.admin)
    status: str = response.json()["status"]
    return status


async def test_a_reservation_that_never_arrived_is_rolled_back(make_platform: Any) -> None:
    async with open_shop(make_platform, **SWEEP_NOW) as shop:
        product = await shop.product(stock=5)
        customer = await shop.customer()
        with reservation_fault(shop, lose="request") as fault:
            crashed = await shop.order(customer, [(product, 2)])
        assert crashed.status_code == 503 and fault.broken_calls == 3
        order_id = crashed.json()["orderId"]
        assert await _status(shop, order_id) == "pending"

        report = await sweep_once(_ctx(shop))
        assert (report.confirmed, report.rejected) == (0, 1)
        assert await _status(shop, order_id) == "rejected"
        assert await shop.stock(product) == 5
        reservation = await shop.reservation(order_id)
        assert reservation is not None and reservation["status"] == "released"
        # The crashed request's reserve, arriving late, can no longer take stock.
        late = await shop.client.post(
            RESERVE_PATH,
            json={"orderId": order_id, "items": [{"productId": product, "quantity": 2}]},
            headers=INTERNAL,
        )
        assert late.status_code == 409
        assert late.json()["type"] == "urn:shopfleet:problem:reservation-released"
        assert await shop.stock(product) == 5
        assert (await sweep_once(_ctx(shop))).rejected == 0


async def test_a_reservation_whose_answer_was_lost_is_confirmed(make_platform: Any) -> None:
    async with open_shop(make_platform, **SWEEP_NOW) as shop:
        product = await shop.product(stock=5)
        customer = await shop.customer()
        with reservation_fault(shop, lose="response"):
            crashed = await shop.order(customer, [(product, 2)], key="lost-answer")
        assert crashed.status_code == 503
        order_id = crashed.json()["orderId"]
        assert await shop.stock(product) == 3  # products did reserve, once

        report = await sweep_once(_ctx(shop))
        assert (report.confirmed, report.rejected) == (1, 0)
        assert await _status(shop, order_id) == "confirmed"
        reservation = await shop.reservation(order_id)
        assert reservation is not None and reservation["status"] == "reserved"
        assert await shop.stock(product) == 3
        # The client's repeat gets the final answer the sweeper stored.
        repeat = await shop.order(customer, [(product, 2)], key="lost-answer")
        assert repeat.status_code == 201
        assert repeat.json()["id"] == order_id and repeat.json()["status"] == "confirmed"
        # Priced at what products reserved (the answer that was lost carried the prices).
        assert repeat.json()["total"] == 39.98
        assert repeat.json()["items"][0]["sku"].startswith("SKU-")
        detail = await shop.client.get(f"/v1/orders/{order_id}", headers=shop.admin)
        assert detail.json()["total"] == 39.98 and detail.json()["items"][0]["unitPrice"] == 19.99
        assert await shop.stock(product) == 3


async def test_the_sweeper_leaves_fresh_orders_alone(make_platform: Any) -> None:
    overrides = {"orders": {"sweeper_pending_age": 3600.0, "breaker_min_calls": 1000}}
    async with open_shop(make_platform, **overrides) as shop:
        product = await shop.product(stock=5)
        with reservation_fault(shop, lose="request"):
            crashed = await shop.order(await shop.customer(), [(product, 1)])
        report = await sweep_once(_ctx(shop))
        assert (report.confirmed, report.rejected) == (0, 0)
        assert await _status(shop, crashed.json()["orderId"]) == "pending"


async def test_the_background_sweeper_runs_in_the_lifespan(make_platform: Any) -> None:
    overrides = {
        "orders": {
            "sweeper_pending_age": 0.0,
            "sweeper_interval": 0.05,
            "breaker_min_calls": 1000,
        }
    }
    async with open_shop(make_platform, **overrides) as shop:
        product = await shop.product(stock=5)
        # The reservation never reaches products, so whenever the sweeper strikes (even
        # while the request is still retrying) the only consistent end is `rejected`.
        with reservation_fault(shop, lose="request"):
            crashed = await shop.order(await shop.customer(), [(product, 1)])
        order_id = crashed.json()["orderId"]
        async with asyncio.timeout(20):
            while await _status(shop, order_id) == "pending":
                await asyncio.sleep(0.05)
        assert await _status(shop, order_id) == "rejected"
        assert await shop.stock(product) == 5


async def test_cancelling_a_pending_order_blocks_its_reservation(make_platform: Any) -> None:
    async with open_shop(make_platform, **SWEEP_NOW) as shop:
        product = await shop.product(stock=5)
        customer = await shop.customer()
        with reservation_fault(shop, lose="request"):
            crashed = await shop.order(customer, [(product, 2)], key="cancel-me")
        order_id = crashed.json()["orderId"]
        cancelled = await shop.client.post(f"/v1/orders/{order_id}/cancel", headers=customer)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        # A repeat of the key now learns the order will not go through.
        repeat = await shop.order(customer, [(product, 2)], key="cancel-me")
        assert repeat.status_code == 409
        assert repeat.json()["type"] == "urn:shopfleet:problem:order-cancelled"
        assert (await sweep_once(_ctx(shop))).rejected == 0
        assert await shop.stock(product) == 5


async def test_old_idempotency_keys_are_purged(make_platform: Any) -> None:
    async with open_shop(make_platform, **SWEEP_NOW) as shop:
        product = await shop.product(stock=5)
        customer = await shop.customer()
        first = await shop.order(customer, [(product, 1)], key="old-key")
        async with shop.platform.resources("orders").sessionmaker() as db:
            await db.execute(
                update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25))
            )
            await db.commit()
        assert (await sweep_once(_ctx(shop))).purged_keys == 1
        second = await shop.order(customer, [(product, 1)], key="old-key")
        assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
        assert await shop.stock(product) == 3


async def test_a_reservation_released_elsewhere_rejects_the_order(make_platform: Any) -> None:
    # As after a cancel whose release reached products but whose commit never happened.
    async with open_shop(make_platform, **SWEEP_NOW) as shop:
        product = await shop.product(stock=5)
        with reservation_fault(shop, lose="response"):
            crashed = await shop.order(await shop.customer(), [(product, 2)])
        order_id = crashed.json()["orderId"]
        released = await shop.client.post(f"{RESERVE_PATH}/{order_id}/release", headers=INTERNAL)
        assert released.status_code == 200
        assert await shop.stock(product) == 5
        assert (await sweep_once(_ctx(shop))).rejected == 1
        assert await _status(shop, order_id) == "rejected"
        assert await shop.stock(product) == 5


async def test_concurrent_sweeps_settle_each_order_once(make_platform: Any) -> None:
    async with open_shop(make_platform, **SWEEP_NOW) as shop:
        product = await shop.product(stock=20)
        customer = await shop.customer()
        with reservation_fault(shop, lose="response", times=3 * 4):
            reserved = [(await shop.order(customer, [(product, 1)])) for _ in range(4)]
        with reservation_fault(shop, lose="request", times=3 * 3):
            never = [(await shop.order(customer, [(product, 1)])) for _ in range(3)]
        assert {r.status_code for r in reserved + never} == {503}
        assert await shop.stock(product) == 16

        reports = await asyncio.gather(*(sweep_once(_ctx(shop)) for _ in range(3)))
        assert sum(r.confirmed for r in reports) == 4
        assert sum(r.rejected for r in reports) == 3
        for response in reserved:
            assert await _status(shop, response.json()["orderId"]) == "confirmed"
        for response in never:
            assert await _status(shop, response.json()["orderId"]) == "rejected"
        assert await shop.stock(product) == 16
        async with shop.platform.instance_client("orders") as client:
            assert "orders_created_total 4.0" in (await client.get("/metrics")).text
