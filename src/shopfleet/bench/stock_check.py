"""After an order scenario: did any product sell more than it had?

Read straight from the two services' tables: products' stock and reservations, orders'
confirmed lines. Zero oversell means, per product, stock >= 0 and the stock taken equals
both the quantity reserved and the quantity in confirmed orders.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy import func, select

from shopfleet.bench.platform import BenchPlatform
from shopfleet.common.database import create_engine
from shopfleet.orders.models import Order, OrderLine
from shopfleet.products.models import Product, Reservation, ReservationLine


async def _products_side(
    platform: BenchPlatform, ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    engine = create_engine(platform.settings("products"))
    try:
        async with engine.connect() as db:
            stock = dict((await db.execute(select(Product.id, Product.stock).where(
                Product.id.in_(ids)))).tuples().all())  # fmt: skip
            reserved = dict(
                (
                    await db.execute(
                        select(ReservationLine.product_id, func.sum(ReservationLine.quantity))
                        .join(Reservation, Reservation.order_id == ReservationLine.order_id)
                        .where(
                            Reservation.status == "reserved", ReservationLine.product_id.in_(ids)
                        )
                        .group_by(ReservationLine.product_id)
                    )
                )
                .tuples()
                .all()
            )
    finally:
        await engine.dispose()
    return stock, {k: int(v) for k, v in reserved.items()}


async def _orders_side(
    platform: BenchPlatform, ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, int], dict[str, int]]:
    engine = create_engine(platform.settings("orders"))
    try:
        async with engine.connect() as db:
            confirmed = dict(
                (
                    await db.execute(
                        select(OrderLine.product_id, func.sum(OrderLine.quantity))
                        .join(Order, Order.id == OrderLine.order_id)
                        .where(Order.status == "confirmed", OrderLine.product_id.in_(ids))
                        .group_by(OrderLine.product_id)
                    )
                )
                .tuples()
                .all()
            )
            with_lines = select(OrderLine.order_id).where(OrderLine.product_id.in_(ids))
            statuses = dict(
                (
                    await db.execute(
                        select(Order.status, func.count())
                        .where(Order.id.in_(with_lines))
                        .group_by(Order.status)
                    )
                )
                .tuples()
                .all()
            )
    finally:
        await engine.dispose()
    return {k: int(v) for k, v in confirmed.items()}, {k: int(v) for k, v in statuses.items()}


async def check_stock(
    platform: BenchPlatform, stock_before: dict[str, int], *, settle_seconds: float = 20
) -> dict[str, Any]:
    """Compare stock taken with reservations and confirmed orders, once nothing moves.

    wrk stops mid-request; orders still in flight then settle within moments, so wait
    (bounded) until none of these products' orders is `pending` and products' side did
    not change while orders' was read. Products is read before and after orders: an
    order stores its pending row before it reserves, so every reservation the first
    read counts has its order in the orders read (pending, so wait, or settled), and an
    order that reserves later changes products' figures in between. Reading orders
    alone first (as this once did) missed a request that stored its order just after
    that read and reserved before products' read: a mismatch with no sale behind it.
    """
    ids = [uuid.UUID(i) for i in stock_before]
    deadline = time.monotonic() + settle_seconds
    while True:
        products_before = await _products_side(platform, ids)
        confirmed, statuses = await _orders_side(platform, ids)
        stock, reserved = await _products_side(platform, ids)
        settled = not statuses.get("pending") and products_before == (stock, reserved)
        if settled or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    taken = {i: stock_before[str(i)] - stock[i] for i in ids}
    mismatched = [
        str(i) for i in ids if taken[i] != reserved.get(i, 0) or taken[i] != confirmed.get(i, 0)
    ]
    negative = [str(i) for i in ids if stock[i] < 0]
    return {
        "products": len(ids),
        "stock_taken": sum(taken.values()),
        "reserved_quantity": sum(reserved.values()),
        "confirmed_quantity": sum(confirmed.values()),
        "orders_by_status": dict(sorted(statuses.items())),
        "negative_stock_products": negative,
        "mismatched_products": mismatched,
        "oversold": bool(negative or mismatched),
    }
