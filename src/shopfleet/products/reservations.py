"""Stock reservations of orders: all lines or none, idempotent by order id, priced.

A reservation answers what orders needs to price the order (each line's sku, name and
unit price, as locked in the same transaction), so placing an order is one call here.
The snapshot is stored with the lines, so a repeat or a status read answers the same.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

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
from shopfleet.products.caching import invalidate_product_caches
from shopfleet.products.repository import PricedStock, ReservedItem
from shopfleet.products.schemas import cents_to_price


class InsufficientStock(Conflict):
    """409 naming the short lines; `products` prices every line, so the order names them."""

    problem_type = INSUFFICIENT_STOCK

    def __init__(
        self,
        lines: list[contract.Shortage],
        catalog: Mapping[uuid.UUID, PricedStock],
        *,
        released: bool = False,
    ) -> None:
        # The body is contracts.products.ReservationConflict, which orders reads.
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
                "released": released,
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
    *,
    db: AsyncSession,
    order_id: uuid.UUID,
    items: list[ReservationItem],
    release_on_refusal: bool = False,
) -> ReservationPublic:
    """Reserve and price every line of an order, or none.

    A repeat for an order id already reserved answers that reservation unchanged. On
    PostgreSQL the whole reservation is one statement (one round trip); SQLite takes the
    steps in the request's write transaction. `release_on_refusal`: a refusal releases
    the order id too (PostgreSQL only; repository.reserve_at_once).
    """
    engine = db.bind
    if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
        reserved, taken = await reserve_at_once(
            engine, order_id, items, release_on_refusal=release_on_refusal
        )
        if taken:  # stock and inStock show in details and lists: never stale after an order
            invalidate_product_caches(db, *taken)
        return reserved
    return await _reserve_in_steps(db, order_id, items, _quantities(items))


async def reserve_at_once(
    engine: AsyncEngine,
    order_id: uuid.UUID,
    items: list[ReservationItem],
    *,
    release_on_refusal: bool = False,
) -> tuple[ReservationPublic, list[uuid.UUID]]:
    """`reserve` on PostgreSQL: one statement, committed on return.

    Also returns the products whose stock it took (none for a repeat): their caches
    are stale now, and the caller invalidates them.
    """
    quantities = _quantities(items)
    done = await repository.reserve_at_once(
        engine, order_id, quantities, now=utcnow(), release_on_refusal=release_on_refusal
    )
    if done.released:  # refused, the order id released with it: the refusal is final
        _refuse(items, quantities, done.catalog, released=True)
    elif not done.taken:
        # Nothing was written. An order id claimed already (this order reserved, or
        # released first) is answered from what is stored, whatever the stock says now;
        # the statement waited for any claim in flight, so it is committed and seen here.
        stored = await repository.read_reservation(engine, order_id)
        if stored is not None:
            return _replay(order_id, stored), []
        _refuse(items, quantities, done.catalog)
    if not done.taken:
        # cannot happen: every line could be had and no claim was in the way
        raise Conflict("The reservation is changing concurrently; try again.")
    lines = _lines(quantities, done.catalog)
    return _view(order_id, "reserved", lines), sorted(lines)


def _quantities(items: list[ReservationItem]) -> Counter[uuid.UUID]:
    quantities: Counter[uuid.UUID] = Counter()
    for item in items:
        quantities[item.product_id] += item.quantity
    return quantities


async def _reserve_in_steps(
    db: AsyncSession,
    order_id: uuid.UUID,
    items: list[ReservationItem],
    quantities: Mapping[uuid.UUID, int],
) -> ReservationPublic:
    """Claim the order id, lock and read the products, take the stock, store the lines."""
    now = utcnow()
    # The order id row comes first: a concurrent repeat waits on it and then finds it
    # taken, before it has touched any stock.
    if not await repository.claim_reservation(db, order_id, status="reserved", now=now):
        stored = await repository.get_reservation(db, order_id)
        if stored is None:  # cannot happen: the row that refused ours is committed
            raise Conflict("The reservation is changing concurrently; try again.")
        return _replay(order_id, stored)
    catalog = await repository.lock_for_reservation(db, quantities)
    _refuse(items, quantities, catalog)  # a refusal rolls the transaction back, claim and all
    await service.take_stock(db=db, quantities=quantities)
    lines = _lines(quantities, catalog)
    await repository.insert_reservation_lines(db, order_id, lines)
    return _taken(db, order_id, lines)


def _refuse(
    items: list[ReservationItem],
    quantities: Mapping[uuid.UUID, int],
    catalog: Mapping[uuid.UUID, PricedStock],
    *,
    released: bool = False,
) -> None:
    """Raise 422 for unknown products, else 409 for short lines; return when all can be had.

    `released`: the refusal released the order id (the 409 says so).
    """
    unknown = [i for i, item in enumerate(items) if item.product_id not in catalog]
    if unknown:
        raise Unprocessable(
            "Unknown product.",
            extra={
                "errors": [
                    {"field": f"items[{i}].productId", "message": "No such product."}
                    for i in unknown
                ]
            },
        )
    shortages = [
        contract.Shortage(
            product_id=product_id,
            requested=quantities[product_id],
            available=catalog[product_id].stock,
        )
        for product_id in sorted(quantities)
        if catalog[product_id].stock < quantities[product_id]
    ]
    if shortages:
        raise InsufficientStock(shortages, catalog, released=released)


def _lines(
    quantities: Mapping[uuid.UUID, int], catalog: Mapping[uuid.UUID, PricedStock]
) -> dict[uuid.UUID, ReservedItem]:
    """The reserved lines with the price snapshot of the locked rows."""
    return {
        product_id: ReservedItem(
            quantity, catalog[product_id].sku, catalog[product_id].name,
            catalog[product_id].price_cents,
        )
        for product_id, quantity in quantities.items()
    }  # fmt: skip


def _taken(
    db: AsyncSession, order_id: uuid.UUID, lines: dict[uuid.UUID, ReservedItem]
) -> ReservationPublic:
    """The answer for stock just taken; the products' caches are stale once it commits."""
    # Stock and inStock show in details and lists: never stale after an order.
    invalidate_product_caches(db, *sorted(lines))
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
