"""Products' ORM-session queries: writes, stock changes and reservations (reads: reads.py)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    RowMapping,
    Table,
    bindparam,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shopfleet.common.statements import one_statement
from shopfleet.products.models import Product, Reservation, ReservationLine


async def get_product(session: AsyncSession, product_id: uuid.UUID) -> Product | None:
    return await session.get(Product, product_id)


async def sku_taken(
    session: AsyncSession, sku: str, *, other_than: uuid.UUID | None = None
) -> bool:
    condition = Product.sku == sku
    if other_than is not None:
        condition = condition & (Product.id != other_than)
    return bool(await session.scalar(select(exists().where(condition))))


async def lookup_products(
    session: AsyncSession, ids: Collection[uuid.UUID]
) -> Sequence[RowMapping]:
    statement = select(
        Product.id, Product.sku, Product.name, Product.price_cents, Product.stock
    ).where(Product.id.in_(ids))
    return (await session.execute(statement)).mappings().all()


async def count_in_category(session: AsyncSession, category_id: uuid.UUID) -> int:
    statement = select(func.count()).select_from(Product).where(Product.category_id == category_id)
    return int(await session.scalar(statement) or 0)


@dataclass(frozen=True)
class PricedStock:
    """A product as a reservation sees it: its row locked, what it is called and costs."""

    sku: str
    name: str
    price_cents: int
    stock: int


# The reservation path runs Core statements on the session's connection (the same
# transaction): the ORM's statement handling (annotations, bulk-insert bookkeeping) cost
# more than the SQL. Built once (an expanding IN of bound ids): no statement
# construction per call.
_PRODUCTS = cast(Table, Product.__table__)
_RESERVATIONS = cast(Table, Reservation.__table__)
_LINES = cast(Table, ReservationLine.__table__)
_LOCK_FOR_RESERVATION = (
    select(_PRODUCTS.c.id, _PRODUCTS.c.sku, _PRODUCTS.c.name, _PRODUCTS.c.price_cents,
           _PRODUCTS.c.stock)
    .where(_PRODUCTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_PRODUCTS.c.id)
    .with_for_update()
)  # fmt: skip


async def lock_for_reservation(
    session: AsyncSession, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, PricedStock]:
    """Lock the rows of `ids` in id order (FOR UPDATE; SQLite's writer lock is already held).

    One round trip gives the stock to check and the price snapshot to answer; the id
    order is the lock order every reservation and release uses, so they never deadlock.
    """
    connection = await session.connection()
    rows = await connection.execute(_LOCK_FOR_RESERVATION, {"ids": sorted(ids)})
    return {row.id: PricedStock(row.sku, row.name, row.price_cents, row.stock) for row in rows}


# PostgreSQL: a whole reservation as one statement (one round trip, its own transaction).
# Data flows in one direction, so the steps run in this order whatever the planner does:
# lock the products in id order (the lock order of every reservation and release), judge
# the lines on the locked rows, claim the order id (a claim taken earlier makes ON
# CONFLICT do nothing: a repeat, answered by the caller), store the lines only with a
# claim to reserve, and take stock only for stored lines. A refusal writes nothing, or,
# when the caller asks (release_on_refusal), claims the order id as released: the
# tombstone a release leaves, so an earlier attempt of the same order that lands late is
# refused and orders need not call release (contracts.products.ReservationConflict).
_RESERVE_AT_ONCE = text("""
WITH wanted AS (
    SELECT wanted.product_id, wanted.quantity
    FROM unnest(CAST(:ids AS UUID[]), CAST(:quantities AS INTEGER[]))
        AS wanted(product_id, quantity)
), locked AS (
    SELECT id, sku, name, price_cents, stock FROM products
    WHERE id = ANY(CAST(:ids AS UUID[]))
    ORDER BY id
    FOR UPDATE
), verdict AS (
    SELECT count(locked.id) = count(*)
           AND coalesce(bool_and(locked.stock >= wanted.quantity), false) AS ok
    FROM wanted LEFT JOIN locked ON locked.id = wanted.product_id
), claim AS (
    INSERT INTO reservations (order_id, status, created_at, updated_at)
    SELECT CAST(:order_id AS UUID), CASE WHEN verdict.ok THEN 'reserved' ELSE 'released' END,
           CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
    FROM verdict WHERE verdict.ok OR CAST(:release_on_refusal AS BOOLEAN)
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id, status
), stored AS (
    INSERT INTO reservation_lines (order_id, product_id, quantity, sku, name, unit_price_cents)
    SELECT claim.order_id, locked.id, wanted.quantity, locked.sku, locked.name,
           locked.price_cents
    FROM claim CROSS JOIN wanted JOIN locked ON locked.id = wanted.product_id
    WHERE claim.status = 'reserved'
    RETURNING product_id, quantity
), taken AS (
    UPDATE products
    SET stock = products.stock - stored.quantity, updated_at = CAST(:now AS TIMESTAMPTZ)
    FROM stored WHERE products.id = stored.product_id
    RETURNING products.id
)
SELECT wanted.product_id, locked.sku, locked.name, locked.price_cents, locked.stock,
       (SELECT count(*) FROM taken) AS taken, (SELECT count(*) FROM claim) AS claimed
FROM wanted LEFT JOIN locked ON locked.id = wanted.product_id
""")


@dataclass(frozen=True)
class AtOnce:
    """What one reservation statement did: `taken` (all lines) or nothing, and what it saw.

    `released`: it refused the lines and claimed the order id as released (a tombstone).
    """

    taken: bool
    catalog: dict[uuid.UUID, PricedStock]  # the known products, locked, before any take
    released: bool = False


async def reserve_at_once(
    engine: AsyncEngine,
    order_id: uuid.UUID,
    quantities: Mapping[uuid.UUID, int],
    *,
    now: datetime,
    release_on_refusal: bool = False,
) -> AtOnce:
    """Claim `order_id`, store its lines and take their stock in one statement.

    A line unknown or short takes nothing, and with `release_on_refusal` claims the order
    id as released; an order id claimed already (reserved, or released) makes it do
    nothing at all.
    """
    ids = sorted(quantities)
    params = {
        "order_id": order_id,
        "ids": ids,
        "quantities": [quantities[i] for i in ids],
        "now": now,
        "release_on_refusal": release_on_refusal,
    }
    rows = await one_statement(engine, _RESERVE_AT_ONCE, params)
    catalog = {
        row["product_id"]: PricedStock(row["sku"], row["name"], row["price_cents"], row["stock"])
        for row in rows
        if row["sku"] is not None
    }
    taken = bool(rows) and rows[0]["taken"] > 0
    released = bool(rows) and not taken and rows[0]["claimed"] > 0
    return AtOnce(taken=taken, catalog=catalog, released=released)


_DECREMENT = (
    update(Product.__table__)  # type: ignore[arg-type]
    .where(Product.id == bindparam("pid"), Product.stock >= bindparam("qty"))
    .values(stock=Product.stock - bindparam("qty"), updated_at=bindparam("now"))
)
_INCREMENT = (
    update(Product.__table__)  # type: ignore[arg-type]
    .where(Product.id == bindparam("pid"))
    .values(stock=Product.stock + bindparam("qty"), updated_at=bindparam("now"))
)


async def change_stock(
    session: AsyncSession, quantities: Mapping[uuid.UUID, int], *, take: bool, now: datetime
) -> None:
    """Take (or put back) stock of every product in one executemany, in id order.

    Taking is still conditional (`stock >= quantity`), though the caller has locked the
    rows and checked the levels already.
    """
    params = [{"pid": pid, "qty": quantities[pid], "now": now} for pid in sorted(quantities)]
    if params:
        connection = await session.connection()
        await connection.execute(_DECREMENT if take else _INCREMENT, params)


@dataclass(frozen=True)
class ReservedItem:
    """One line of a stored reservation, with its price snapshot (None before 0002)."""

    quantity: int
    sku: str | None = None
    name: str | None = None
    unit_price_cents: int | None = None


_GET_RESERVATION = (
    select(_RESERVATIONS.c.status, _LINES.c.product_id, _LINES.c.quantity, _LINES.c.sku,
           _LINES.c.name, _LINES.c.unit_price_cents)
    .select_from(_RESERVATIONS.outerjoin(_LINES, _LINES.c.order_id == _RESERVATIONS.c.order_id))
    .where(_RESERVATIONS.c.order_id == bindparam("order_id"))
)  # fmt: skip


async def get_reservation(
    session: AsyncSession, order_id: uuid.UUID
) -> tuple[str, dict[uuid.UUID, ReservedItem]] | None:
    """Return a reservation's status and its lines (by product id), in one round trip."""
    connection = await session.connection()
    result = await connection.execute(_GET_RESERVATION, {"order_id": order_id})
    return _reservation_of(result.mappings().all())


async def read_reservation(
    engine: AsyncEngine, order_id: uuid.UUID
) -> tuple[str, dict[uuid.UUID, ReservedItem]] | None:
    """get_reservation as a statement of its own (PostgreSQL: on the driver, autocommit):
    what is committed now, with no session or transaction around it."""
    return _reservation_of(await one_statement(engine, _GET_RESERVATION, {"order_id": order_id}))


def _reservation_of(
    rows: Sequence[Mapping[Any, Any]],
) -> tuple[str, dict[uuid.UUID, ReservedItem]] | None:
    if not rows:
        return None
    lines = {
        row["product_id"]: ReservedItem(
            row["quantity"], row["sku"], row["name"], row["unit_price_cents"]
        )
        for row in rows
        if row["product_id"] is not None
    }
    return rows[0]["status"], lines


def _claim_statement(insert_for_dialect: Any) -> Any:
    # Built once per dialect with bound values: no statement building or cache key per call.
    return (
        insert_for_dialect(_RESERVATIONS)
        .values(
            order_id=bindparam("order_id"),
            status=bindparam("status"),
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(_RESERVATIONS.c.order_id)
    )


_CLAIM = {
    "postgresql": _claim_statement(postgresql_insert),
    "sqlite": _claim_statement(sqlite_insert),
}


async def claim_reservation(
    session: AsyncSession, order_id: uuid.UUID, *, status: str, now: datetime
) -> bool:
    """Insert the reservation row unless one exists; False when another request has it.

    On PostgreSQL a concurrent insert of the same order id makes this wait for that
    transaction, then do nothing if it committed: no savepoint, no IntegrityError.
    """
    connection = await session.connection()
    statement = _CLAIM[connection.dialect.name]
    params = {"order_id": order_id, "status": status, "now": now}
    return (await connection.execute(statement, params)).first() is not None


_INSERT_LINES = insert(_LINES)


async def insert_reservation_lines(
    session: AsyncSession, order_id: uuid.UUID, lines: Mapping[uuid.UUID, ReservedItem]
) -> None:
    connection = await session.connection()
    await connection.execute(
        _INSERT_LINES,
        [
            {
                "order_id": order_id,
                "product_id": product_id,
                "quantity": line.quantity,
                "sku": line.sku,
                "name": line.name,
                "unit_price_cents": line.unit_price_cents,
            }
            for product_id, line in lines.items()
        ],
    )


_MARK_RELEASED = (
    update(_RESERVATIONS)
    .where(_RESERVATIONS.c.order_id == bindparam("oid"), _RESERVATIONS.c.status == "reserved")
    .values(status="released", updated_at=bindparam("now"))
)


async def mark_released(session: AsyncSession, order_id: uuid.UUID, *, now: datetime) -> bool:
    """Flip a reservation from reserved to released; True only for the one caller who did."""
    connection = await session.connection()
    result = await connection.execute(_MARK_RELEASED, {"oid": order_id, "now": now})
    return bool(result.rowcount == 1)
