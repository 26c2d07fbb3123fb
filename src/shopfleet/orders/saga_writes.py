"""The order saga's own writes, in as few database round trips as the engine allows.

On PostgreSQL each step is one statement, run outside an explicit transaction (a
single statement is atomic by itself), so it costs one round trip:
- the pending order, its lines and the idempotency record: one INSERT with CTEs;
- the outcome: one conditional UPDATE (`status = 'pending'`) with CTEs that also
  prices the lines and stores the answer for the key.
The lines travel as one JSON parameter (jsonb_to_recordset), so the statement text is
the same for every order and stays prepared. SQLite has no data-modifying CTEs: there
the same rows are written by a few statements in one BEGIN IMMEDIATE transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shopfleet.common.database import transaction_intent
from shopfleet.common.statements import one_statement
from shopfleet.orders import repository
from shopfleet.orders.models import IdempotencyKey, Order, OrderLine, PendingOrder, SagaOrder

_PENDING = """
WITH new_order AS (
    INSERT INTO orders
        (id, user_id, status, total_cents, currency, shipping_address, created_at, updated_at)
    VALUES (CAST(:id AS UUID), CAST(:user_id AS UUID), 'pending', CAST(:total AS BIGINT),
            CAST(:currency AS VARCHAR), CAST(:address AS JSONB), CAST(:now AS TIMESTAMPTZ),
            CAST(:now AS TIMESTAMPTZ))
), new_lines AS (
    INSERT INTO order_lines
        (order_id, position, product_id, sku, name, unit_price_cents, quantity, line_total_cents)
    SELECT CAST(:id AS UUID), line.position, line.product_id, line.sku, line.name,
           line.unit_price_cents, line.quantity, line.line_total_cents
    FROM jsonb_to_recordset(CAST(:lines AS JSONB)) AS line(
        position INTEGER, product_id UUID, sku VARCHAR, name VARCHAR,
        unit_price_cents BIGINT, quantity INTEGER, line_total_cents BIGINT)
)
"""
_PENDING_WITH_KEY = text(
    _PENDING
    + """
INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at)
VALUES (CAST(:user_id AS UUID), CAST(:key AS VARCHAR), CAST(:digest AS VARCHAR),
        CAST(:id AS UUID), CAST(:now AS TIMESTAMPTZ))
"""
)
_PENDING_WITHOUT_KEY = text(_PENDING + "SELECT 1")

_DECIDE = text("""
WITH decided AS (
    UPDATE orders
    SET status = CAST(:status AS VARCHAR), updated_at = CAST(:now AS TIMESTAMPTZ),
        total_cents = COALESCE(CAST(:total AS BIGINT), total_cents)
    WHERE id = CAST(:id AS UUID) AND status = 'pending'
    RETURNING id
), priced AS (
    UPDATE order_lines
    SET sku = line.sku, name = line.name, unit_price_cents = line.unit_price_cents,
        line_total_cents = line.line_total_cents
    FROM jsonb_to_recordset(CAST(:lines AS JSONB)) AS line(
        position INTEGER, sku VARCHAR, name VARCHAR,
        unit_price_cents BIGINT, line_total_cents BIGINT)
    WHERE order_lines.order_id IN (SELECT id FROM decided)
      AND order_lines.position = line.position
), answered AS (
    UPDATE idempotency_keys
    SET response_status = CAST(:response_status AS INTEGER),
        response_body = CAST(:response_body AS JSONB)
    WHERE order_id IN (SELECT id FROM decided)
)
SELECT count(*) AS decided FROM decided
""")


def _engine(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    engine: AsyncEngine = sessionmaker.kw["bind"]
    return engine


def _lines_json(order: SagaOrder) -> str:
    return orjson.dumps(
        [
            {
                "position": line.position,
                "product_id": str(line.product_id),
                "sku": line.sku,
                "name": line.name,
                "unit_price_cents": line.unit_price_cents,
                "quantity": line.quantity,
                "line_total_cents": line.line_total_cents,
            }
            for line in order.lines
        ]
    ).decode()


async def store_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    order: PendingOrder,
    key: str | None,
    digest: str,
) -> None:
    """Store the pending order, its lines and the key's record, all or nothing.

    A concurrent request with the same key makes this raise IntegrityError (the record's
    primary key), and then nothing of this order is stored.
    """
    engine = _engine(sessionmaker)
    if engine.dialect.name == "postgresql":
        params = {
            "id": order.id,
            "user_id": order.user_id,
            "total": order.total_cents,
            "currency": order.currency,
            "address": orjson.dumps(order.shipping_address).decode(),
            "now": order.created_at,
            "lines": _lines_json(order),
        }
        if key is None:
            await one_statement(engine, _PENDING_WITHOUT_KEY, params)
        else:
            await one_statement(engine, _PENDING_WITH_KEY, {**params, "key": key, "digest": digest})
        return
    with transaction_intent(writes=True):
        async with sessionmaker() as db:
            order_row = {c.key: getattr(order, c.key) for c in Order.__table__.columns}
            await db.execute(insert(Order), [order_row])
            line_columns = [c.key for c in OrderLine.__table__.columns if c.key != "order_id"]
            await db.execute(
                insert(OrderLine),
                [{c: getattr(line, c) for c in line_columns} | {"order_id": order.id}
                 for line in order.lines],
            )  # fmt: skip
            if key is not None:
                await db.execute(
                    insert(IdempotencyKey),
                    [
                        {
                            "user_id": order.user_id,
                            "key": key,
                            "request_hash": digest,
                            "order_id": order.id,
                            "created_at": order.created_at,
                        }
                    ],
                )
            await db.commit()


async def decide(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    order: SagaOrder,
    status: str,
    response_status: int,
    response_body: dict[str, Any] | None,
    priced: bool,
    now: datetime,
) -> bool:
    """Settle a pending order (and store its key's answer) unless another actor did first.

    `priced`: the lines of `order` carry products' prices, to be stored with the outcome.
    """
    engine = _engine(sessionmaker)
    if engine.dialect.name == "postgresql":
        rows = await one_statement(
            engine,
            _DECIDE,
            {
                "id": order.id,
                "status": status,
                "now": now,
                "total": order.total_cents if priced else None,
                "lines": _lines_json(order) if priced else "[]",
                "response_status": response_status,
                "response_body": orjson.dumps(response_body).decode(),
            },
        )
        return bool(rows and rows[0]["decided"])
    with transaction_intent(writes=True):
        async with sessionmaker() as db:
            decided_here = await repository.resolve_pending(
                db,
                order_id=order.id,
                status=status,
                response_status=response_status,
                response_body=response_body,
                now=now,
                priced=order if priced else None,
            )
            await db.commit()
    return decided_here
