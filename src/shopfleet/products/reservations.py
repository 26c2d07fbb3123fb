"""Stock reservations of orders: all lines or none, idempotent by order id, priced.

A reservation answers what orders needs to price the order (each line's sku, name and
unit price, as locked in the same transaction), so placing an order is one call here.
The snapshot is stored with the lines, so a repeat or a status read answers the same.
"""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.common.database import utcnow
from shopfleet.common.errors import Conflict, NotFound, Unprocessable
from shopfleet.contracts import products as contract
from shopfleet.contracts.products import (
    INSUFFICIENT_STOCK,
    RESERVATION_RELEASED,
    ReservationItem,
    ReservationPublic,
    ReservedLine,
)
from shopfleet.products import repository, service
from shopfleet.products.repository import PricedStock, ReservedItem
from shopfleet.products.schemas import cents_to_price
from shopfleet.products.service import Shortage


class InsufficientStock(Conflict):
    """409 naming the short lines; `products` prices every line, so the order names them."""

    problem_type = INSUFFICIENT_STOCK

    def __init__(self, shortages: list[Shortage], catalog: dict[uuid.UUID, PricedStock]) -> None:
        # The body is contracts.products.ReservationConflict, which orders reads.
        lines = [
            contract.Shortage(product_id=s.product_id, requested=s.requested, available=s.available)
            for s in shortages
        ]
        products = [
            contract.PricedProduct(
                product_id=product_id,
                sku=entry.sku,
                name=entry.name,
                price=cents_to_price(entry.price_cents),
            )
            for product_id, entry in catalog.items()
        ]
        super().__init__(
            "Not enough stock for some lines.",
            extra={
                "lines": [line.model_dump(mode="json", by_alias=True) for line in lines],
                "products": [p.model_dump(mode="json", by_alias=True) for p in products],
            },
        )


class ReservationReleased(Conflict):
    problem_type = RESERVATION_RELEASED

    def __init__(self) -> None:
        super().__init__("This order's reservation was released; it cannot be reserved again.")


class ReservationNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No reservation for this order.")


def _line(product_id: uuid.UUID, item: ReservedItem) -> ReservedLine:
    price = None if item.unit_price_cents is None else cents_to_price(item.unit_price_cents)
    return ReservedLine(
        product_id=product_id, quantity=item.quantity, sku=item.sku, name=item.name, price=price
    )


def _view(
    order_id: uuid.UUID, status: str, lines: dict[uuid.UUID, ReservedItem]
) -> ReservationPublic:
    items = [_line(p, lines[p]) for p in sorted(lines)]
    return ReservationPublic(order_id=order_id, status=status, items=items)


def _replay(
    order_id: uuid.UUID, stored: tuple[str, dict[uuid.UUID, ReservedItem]]
) -> ReservationPublic:
    status, lines = stored
    if status == "released":
        raise ReservationReleased
    return _view(order_id, status, lines)


async def reserve(
    *, db: AsyncSession, order_id: uuid.UUID, items: list[ReservationItem]
) -> ReservationPublic:
    """Reserve and price every line of an order in this transaction, or none.

    A repeat for an order id already reserved answers that reservation unchanged. Round
    trips: claim the order id, lock and read the products, take the stock, store the lines.
    """
    now = utcnow()
    # The order id row comes first: a concurrent repeat waits on it (PostgreSQL) and
    # then finds it taken, before it has touched any stock.
    if not await repository.claim_reservation(db, order_id, status="reserved", now=now):
        stored = await repository.get_reservation(db, order_id)
        if stored is None:  # cannot happen: the row that refused ours is committed
            raise Conflict("The reservation is changing concurrently; try again.")
        return _replay(order_id, stored)
    quantities: Counter[uuid.UUID] = Counter()
    for item in items:
        quantities[item.product_id] += item.quantity
    catalog = await repository.lock_for_reservation(db, quantities)
    unknown = [i for i, item in enumerate(items) if item.product_id not in catalog]
    if unknown:  # the request's transaction rolls back, the claim with it
        raise Unprocessable(
            "Unknown product.",
            extra={
                "errors": [
                    {"field": f"items[{i}].productId", "message": "No such product."}
                    for i in unknown
                ]
            },
        )
    levels = {product_id: entry.stock for product_id, entry in catalog.items()}
    shortages = await service.take_stock(db=db, quantities=quantities, levels=levels)
    if shortages:
        raise InsufficientStock(shortages, catalog)  # the request's transaction rolls back
    lines = {
        product_id: ReservedItem(
            quantity, catalog[product_id].sku, catalog[product_id].name,
            catalog[product_id].price_cents,
        )
        for product_id, quantity in quantities.items()
    }  # fmt: skip
    await repository.insert_reservation_lines(db, order_id, lines)
    return _view(order_id, "reserved", lines)


async def release(*, db: AsyncSession, order_id: uuid.UUID) -> ReservationPublic:
    """Return an order's reserved stock once; releasing an unknown order leaves a tombstone."""
    # At most three rounds: each lost race means another request decided in between.
    for _ in range(3):
        if await repository.mark_released(db, order_id, now=utcnow()):
            stored = await repository.get_reservation(db, order_id)
            lines = stored[1] if stored else {}
            await service.return_stock(
                db=db, quantities={p: line.quantity for p, line in lines.items()}
            )
            return _view(order_id, "released", lines)
        stored = await repository.get_reservation(db, order_id)
        if stored is not None and stored[0] == "released":
            return _view(order_id, "released", stored[1])
        if stored is not None:
            continue  # reserved, committed after our update looked: claim it now
        if await repository.claim_reservation(db, order_id, status="released", now=utcnow()):
            return _view(order_id, "released", {})
        # a concurrent reserve or release inserted the row first: look again
    raise Conflict("The reservation is changing concurrently; try again.")


async def get(*, db: AsyncSession, order_id: uuid.UUID) -> ReservationPublic:
    stored = await repository.get_reservation(db, order_id)
    if stored is None:
        raise ReservationNotFound
    return _view(order_id, *stored)
