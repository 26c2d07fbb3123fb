"""Stock reservations of orders: all lines or none, idempotent by order id."""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.common.database import utcnow
from shopfleet.common.errors import Conflict, NotFound, Unprocessable
from shopfleet.products import repository, service
from shopfleet.products.schemas import ReservationItem, ReservationPublic, ReservedLine
from shopfleet.products.service import Shortage


class InsufficientStock(Conflict):
    problem_type = "urn:shopfleet:problem:insufficient-stock"

    def __init__(self, shortages: list[Shortage]) -> None:
        lines = [
            {"productId": str(s.product_id), "requested": s.requested, "available": s.available}
            for s in shortages
        ]
        super().__init__("Not enough stock for some lines.", extra={"lines": lines})


class ReservationReleased(Conflict):
    problem_type = "urn:shopfleet:problem:reservation-released"

    def __init__(self) -> None:
        super().__init__("This order's reservation was released; it cannot be reserved again.")


class ReservationNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No reservation for this order.")


def _view(order_id: uuid.UUID, status: str, lines: dict[uuid.UUID, int]) -> ReservationPublic:
    items = [ReservedLine(product_id=p, quantity=lines[p]) for p in sorted(lines)]
    return ReservationPublic(order_id=order_id, status=status, items=items)


def _replay(order_id: uuid.UUID, stored: tuple[str, dict[uuid.UUID, int]]) -> ReservationPublic:
    status, lines = stored
    if status == "released":
        raise ReservationReleased
    return _view(order_id, status, lines)


async def reserve(
    *, db: AsyncSession, order_id: uuid.UUID, items: list[ReservationItem]
) -> ReservationPublic:
    """Reserve every line of an order in this transaction, or none; a repeat is a no-op."""
    stored = await repository.get_reservation(db, order_id)
    if stored is not None:
        return _replay(order_id, stored)
    quantities: Counter[uuid.UUID] = Counter()
    for item in items:
        quantities[item.product_id] += item.quantity
    known = await repository.stock_levels(db, quantities)
    for index, item in enumerate(items):
        if item.product_id not in known:
            raise Unprocessable("Unknown product.", field=f"items[{index}].productId")
    try:
        # The order id row comes first: a concurrent repeat waits on it (PostgreSQL) and
        # then fails here, before it has touched any stock.
        async with db.begin_nested():
            await repository.insert_reservation(db, order_id, status="reserved", now=utcnow())
    except IntegrityError:
        stored = await repository.get_reservation(db, order_id)
        if stored is None:
            raise
        return _replay(order_id, stored)
    shortages = await service.take_stock(db=db, quantities=quantities)
    if shortages:
        raise InsufficientStock(shortages)  # the request's transaction rolls back
    await repository.insert_reservation_lines(db, order_id, quantities)
    return _view(order_id, "reserved", dict(quantities))


async def release(*, db: AsyncSession, order_id: uuid.UUID) -> ReservationPublic:
    """Return an order's reserved stock once; releasing an unknown order leaves a tombstone."""
    # At most three rounds: each lost race means another request decided in between.
    for _ in range(3):
        if await repository.mark_released(db, order_id, now=utcnow()):
            stored = await repository.get_reservation(db, order_id)
            lines = stored[1] if stored else {}
            await service.return_stock(db=db, quantities=lines)
            return _view(order_id, "released", lines)
        stored = await repository.get_reservation(db, order_id)
        if stored is not None and stored[0] == "released":
            return _view(order_id, "released", stored[1])
        if stored is not None:
            continue  # reserved, committed after our update looked: claim it now
        try:
            async with db.begin_nested():
                await repository.insert_reservation(db, order_id, status="released", now=utcnow())
        except IntegrityError:
            continue  # a concurrent reserve or release inserted the row first
        return _view(order_id, "released", {})
    raise Conflict("The reservation is changing concurrently; try again.")


async def get(*, db: AsyncSession, order_id: uuid.UUID) -> ReservationPublic:
    stored = await repository.get_reservation(db, order_id)
    if stored is None:
        raise ReservationNotFound
    return _view(order_id, *stored)
