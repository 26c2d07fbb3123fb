"""Products' queries: the catalog listing, stock updates and reservations."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, exists, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.products.listing import ProductListQuery
from shopfleet.products.models import Product, Reservation, ReservationLine


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(query: ProductListQuery, category_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if category_id is not None:
        conditions.append(Product.category_id == category_id)
    if query.in_stock is not None:
        conditions.append(Product.stock > 0 if query.in_stock else Product.stock == 0)
    if query.min_price_cents is not None:
        conditions.append(Product.price_cents >= query.min_price_cents)
    if query.max_price_cents is not None:
        conditions.append(Product.price_cents <= query.max_price_cents)
    if query.name_contains:
        pattern = f"%{_escape_like(query.name_contains)}%"
        conditions.append(Product.name.ilike(pattern, escape="\\"))
    return conditions


async def list_products(
    session: AsyncSession, query: ProductListQuery, *, category_id: uuid.UUID | None
) -> Sequence[RowMapping]:
    """One page of the listing: only the needed columns, LIMIT in SQL, keyset after a cursor."""
    sort_column = getattr(Product, query.sort_column)
    conditions = _filters(query, category_id)
    if query.after is not None:
        key = tuple_(sort_column, Product.id)
        after = (query.after.key, query.after.id)
        conditions.append(key < after if query.descending else key > after)
    order = (
        (sort_column.desc(), Product.id.desc())
        if query.descending
        else (sort_column.asc(), Product.id.asc())
    )
    statement = (
        select(*(getattr(Product, column) for column in query.columns))
        .where(*conditions)
        .order_by(*order)
        .limit(query.paging.limit)
    )
    if query.after is None:
        statement = statement.offset(query.paging.offset)
    return (await session.execute(statement)).mappings().all()


async def count_products(
    session: AsyncSession, query: ProductListQuery, *, category_id: uuid.UUID | None
) -> int:
    conditions = _filters(query, category_id)
    total = await session.scalar(select(func.count()).select_from(Product).where(*conditions))
    return int(total or 0)


async def get_product_row(
    session: AsyncSession, product_id: uuid.UUID, columns: Sequence[str]
) -> RowMapping | None:
    statement = select(*(getattr(Product, column) for column in columns)).where(
        Product.id == product_id
    )
    return (await session.execute(statement)).mappings().first()


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


async def stock_levels(session: AsyncSession, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(select(Product.id, Product.stock).where(Product.id.in_(ids)))
    return {row.id: row.stock for row in rows}


async def decrement_stock(
    session: AsyncSession, product_id: uuid.UUID, quantity: int, *, now: datetime
) -> bool:
    """Take `quantity` if that much is there; atomic on both engines. False when short."""
    statement = (
        update(Product)
        .where(Product.id == product_id, Product.stock >= quantity)
        .values(stock=Product.stock - quantity, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    result: Any = await session.execute(statement)
    return bool(result.rowcount == 1)


async def increment_stock(
    session: AsyncSession, product_id: uuid.UUID, quantity: int, *, now: datetime
) -> None:
    statement = (
        update(Product)
        .where(Product.id == product_id)
        .values(stock=Product.stock + quantity, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)


async def get_reservation(
    session: AsyncSession, order_id: uuid.UUID
) -> tuple[str, dict[uuid.UUID, int]] | None:
    """Return a reservation's status and its lines (product id to quantity)."""
    status = await session.scalar(
        select(Reservation.status).where(Reservation.order_id == order_id)
    )
    if status is None:
        return None
    lines = await session.execute(
        select(ReservationLine.product_id, ReservationLine.quantity).where(
            ReservationLine.order_id == order_id
        )
    )
    return status, {line.product_id: line.quantity for line in lines}


async def insert_reservation(
    session: AsyncSession, order_id: uuid.UUID, *, status: str, now: datetime
) -> None:
    """Insert the reservation row; a concurrent one for the same order raises IntegrityError."""
    await session.execute(
        insert(Reservation).values(order_id=order_id, status=status, created_at=now, updated_at=now)
    )


async def insert_reservation_lines(
    session: AsyncSession, order_id: uuid.UUID, quantities: Mapping[uuid.UUID, int]
) -> None:
    await session.execute(
        insert(ReservationLine),
        [
            {"order_id": order_id, "product_id": product_id, "quantity": quantity}
            for product_id, quantity in quantities.items()
        ],
    )


async def mark_released(session: AsyncSession, order_id: uuid.UUID, *, now: datetime) -> bool:
    """Flip a reservation from reserved to released; True only for the one caller who did."""
    statement = (
        update(Reservation)
        .where(Reservation.order_id == order_id, Reservation.status == "reserved")
        .values(status="released", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    result: Any = await session.execute(statement)
    return bool(result.rowcount == 1)
