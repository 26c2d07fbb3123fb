"""Orders' queries."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shopfleet.common.database import utcnow
from shopfleet.orders.models import IdempotencyKey, Order, OrderLine, SagaOrder


async def get_order(
    session: AsyncSession, order_id: uuid.UUID, *, for_update: bool = False
) -> Order | None:
    """Load an order with its lines; `for_update` locks the row (PostgreSQL) until commit."""
    statement = select(Order).where(Order.id == order_id).options(selectinload(Order.lines))
    if for_update:
        statement = statement.with_for_update()
    result = await session.execute(statement.execution_options(populate_existing=True))
    return result.scalar_one_or_none()


async def list_orders(
    session: AsyncSession,
    *,
    user_id: uuid.UUID | None,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[Order], int]:
    conditions: list[ColumnElement[bool]] = []
    if user_id is not None:
        conditions.append(Order.user_id == user_id)
    if status is not None:
        conditions.append(Order.status == status)
    total = await session.scalar(select(func.count()).select_from(Order).where(*conditions))
    rows = await session.scalars(
        select(Order)
        .where(*conditions)
        .options(selectinload(Order.lines))
        .order_by(Order.created_at.desc(), Order.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return rows.all(), int(total or 0)


async def get_idempotency_key(
    session: AsyncSession, *, user_id: uuid.UUID, key: str
) -> IdempotencyKey | None:
    result = await session.execute(
        select(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def get_idempotency_key_of_order(
    session: AsyncSession, *, order_id: uuid.UUID
) -> IdempotencyKey | None:
    result = await session.execute(
        select(IdempotencyKey)
        .where(IdempotencyKey.order_id == order_id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def resolve_pending(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    status: str,
    response_status: int,
    response_body: dict[str, Any] | None,
    now: datetime | None = None,
    priced: SagaOrder | None = None,
) -> bool:
    """Move an order out of `pending` and record the answer its creation gets.

    Conditional on the order still being pending, so of the request, a repeat, the
    sweeper and a cancel, exactly one decides; False when another one already did.
    `priced`: the same order with its lines priced by products, stored with the outcome.
    """
    now = now or utcnow()
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if priced is not None:
        values["total_cents"] = priced.total_cents
    result = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    if priced is not None:
        connection = await session.connection()
        await connection.execute(
            _PRICE_LINE,
            [
                {
                    "oid": order_id,
                    "pos": line.position,
                    "sku": line.sku,
                    "name": line.name,
                    "unit": line.unit_price_cents,
                    "total": line.line_total_cents,
                }
                for line in priced.lines
            ],
        )
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.order_id == order_id)
        .values(response_status=response_status, response_body=response_body)
    )
    return True


_PRICE_LINE = (
    update(OrderLine.__table__)  # type: ignore[arg-type]
    .where(OrderLine.order_id == bindparam("oid"), OrderLine.position == bindparam("pos"))
    .values(
        sku=bindparam("sku"),
        name=bindparam("name"),
        unit_price_cents=bindparam("unit"),
        line_total_cents=bindparam("total"),
    )
)


async def set_key_gave_up(
    session: AsyncSession, *, user_id: uuid.UUID, key: str, gave_up: bool
) -> bool:
    """Compare-and-set whether the last attempt on an unanswered key gave up."""
    result = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.response_status.is_(None),
            IdempotencyKey.gave_up.is_(not gave_up),
        )
        .values(gave_up=gave_up)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def lock_stale_pending(
    session: AsyncSession, *, older_than: datetime, skip: Collection[uuid.UUID]
) -> Order | None:
    """Claim the oldest order left pending since `older_than` that no one else holds.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so sweepers on several instances take different
    orders. SQLite ignores the clause; there the sweeper's transaction began with
    BEGIN IMMEDIATE, which already serialises it against every other writer.
    """
    statement = (
        select(Order.id)
        .where(Order.status == "pending", Order.updated_at < older_than)
        .order_by(Order.updated_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if skip:
        statement = statement.where(Order.id.not_in(list(skip)))
    order_id = await session.scalar(statement)
    if order_id is None:
        return None
    return await get_order(session, order_id)


async def delete_pending(session: AsyncSession, *, order_id: uuid.UUID) -> bool:
    """Remove a still-pending order (its lines and key go with it); False if it was settled."""
    result = await session.execute(
        delete(Order)
        .where(Order.id == order_id, Order.status == "pending")
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def purge_idempotency_keys(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < older_than)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
