"""The order-creation saga: store `pending`, reserve and price at products, confirm or reject.

One call to products per order: its reservation answers the lines' prices (see
pricing.py), and orders' own writes are one statement each on PostgreSQL
(saga_writes.py).

The saga owns its transactions instead of using the request's one (SessionDep), because
its steps must be durable in order around the call to products:
- the pending order and its idempotency record are committed BEFORE stock is reserved,
  so a crash after reserving leaves a row the sweeper finds and settles, and a concurrent
  repeat of the same Idempotency-Key meets the unique record and waits for its answer;
- the request's path holds no transaction across its HTTP call (on SQLite an open write
  transaction locks the whole database for every orders instance). The sweeper is the one
  exception, on purpose: it holds the stale order's row (FOR UPDATE SKIP LOCKED on
  PostgreSQL) while it asks products, so a request settling the same order waits and then
  sees it settled (sweeper.py);
- the outcome is committed by a conditional UPDATE (`WHERE status = 'pending'`), so of
  this request, a resumed repeat, the sweeper and a cancel exactly one decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shopfleet.common.database import transaction_intent, utcnow
from shopfleet.common.errors import (
    Conflict,
    DependencyUnavailable,
    ShopfleetError,
    Unprocessable,
)
from shopfleet.common.settings import Settings
from shopfleet.orders import products_client, repository, saga_writes
from shopfleet.orders.metrics import OrdersMetrics
from shopfleet.orders.models import IdempotencyKey, SagaOrder
from shopfleet.orders.outcomes import (
    Outcome,
    confirmed_outcome,
    insufficient_stock_outcome,
    outcome_of,
    rejected_outcome,
)
from shopfleet.orders.pricing import apply_prices, pending_order
from shopfleet.orders.schemas import OrderCreate

log = logging.getLogger("shopfleet.orders")
# How long a repeat waits for the request that holds its key (below the 30 s request timeout).
REPLAY_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class OrdersContext:
    """What the orders rules need besides a request."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    products: products_client.ProductsClient
    metrics: OrdersMetrics


class IdempotencyKeyReused(Conflict):
    problem_type = "urn:shopfleet:problem:idempotency-key-reused"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request body.")


class OrderStillPending(DependencyUnavailable):
    """The order is stored but its stock is not settled yet; a repeat gets the final answer."""

    def __init__(self, order_id: uuid.UUID, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail, retry_after=retry_after, extra={"orderId": str(order_id)})


def request_hash(data: OrderCreate) -> str:
    """Hash the canonical JSON of a validated request, so equal bodies hash equal."""
    canonical = orjson.dumps(
        data.model_dump(mode="json", by_alias=True), option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(canonical).hexdigest()


async def create_order(
    *, ctx: OrdersContext, user_id: uuid.UUID, data: OrderCreate, idempotency_key: str | None
) -> Outcome:
    """Place an order, or answer a repeat of an Idempotency-Key exactly like the first time."""
    digest = request_hash(data)
    order = pending_order(user_id=user_id, data=data, currency=ctx.settings.currency)
    try:
        # No look-up of the key first: storing its record is the check (one round trip).
        await saga_writes.store_pending(
            ctx.sessionmaker, order=order, key=idempotency_key, digest=digest
        )
    except IntegrityError:
        # Only the idempotency record can collide: a repeat of the key stored it first.
        if idempotency_key is None:
            raise
        record = await _load_key(ctx, user_id=user_id, key=idempotency_key)
        if record is None:
            raise
        return await _replay(ctx, record=record, digest=digest)
    return await _settle(ctx, order=order, key=idempotency_key)


async def _settle(ctx: OrdersContext, *, order: SagaOrder, key: str | None) -> Outcome:
    """Saga steps 2 and 3; an outage leaves the order pending for a repeat or the sweeper."""
    try:
        return await _reserve_and_decide(ctx, order=order)
    except (DependencyUnavailable, SQLAlchemyError) as exc:
        if isinstance(exc, SQLAlchemyError):
            log.warning("could not record an order's outcome", extra={"order_id": str(order.id)})
        if key is not None:
            with contextlib.suppress(SQLAlchemyError):
                await _mark_gave_up(ctx, user_id=order.user_id, key=key, gave_up=True)
        # An open breaker knows when products is worth asking again: pass that on.
        retry_after = (
            exc.headers.get("Retry-After", "5") if isinstance(exc, ShopfleetError) else "5"
        )
        raise OrderStillPending(
            order.id,
            "The order is stored but its stock is not settled yet; repeat the request with"
            " the same Idempotency-Key, or read the order later, for the final answer.",
            retry_after=int(retry_after),
        ) from None


async def _reserve_and_decide(ctx: OrdersContext, *, order: SagaOrder) -> Outcome:
    items = [(line.product_id, line.quantity) for line in order.lines]
    result = await ctx.products.reserve_stock(order_id=order.id, items=items)
    if isinstance(result, products_client.Reserved):
        priced = apply_prices(order, result.catalog)
        return await _confirm(ctx, order=order, priced=priced)
    if isinstance(result, products_client.ReservationReleased):
        # Cancelled or swept meanwhile: whoever released it settles the order.
        return await _resolve(ctx, order=order, status="rejected", outcome=rejected_outcome(order))
    # A refused reservation holds nothing, but an earlier attempt of ours that timed out
    # could still land; releasing leaves a tombstone that refuses it (products' refusal
    # may have left it already).
    if not (isinstance(result, products_client.InsufficientStock) and result.released):
        await ctx.products.release_stock(order_id=order.id)
    if isinstance(result, products_client.InsufficientStock):
        priced = apply_prices(order, result.catalog)
        outcome = insufficient_stock_outcome(order, result.lines)
        decided = await _resolve(
            ctx, order=order, status="rejected", outcome=outcome, priced=priced
        )
        if decided is outcome:
            ctx.metrics.rejected_for_stock.inc()
        return decided
    return await _discard_unknown(ctx, order=order, errors=result.errors)


async def _discard_unknown(
    ctx: OrdersContext, *, order: SagaOrder, errors: list[dict[str, Any]]
) -> Outcome:
    """An order naming unknown products is bad input: it leaves nothing behind (a 422)."""
    with transaction_intent(writes=True):
        async with ctx.sessionmaker() as db:
            discarded = await repository.delete_pending(db, order_id=order.id)
            await db.commit()
    if not discarded:  # a cancel or the sweeper settled it meanwhile: theirs is the answer
        current = await _current_outcome(ctx, order_id=order.id)
        if current is not None:
            return current
    raise Unprocessable("Some ordered products do not exist.", extra={"errors": errors})


async def _confirm(ctx: OrdersContext, *, order: SagaOrder, priced: bool) -> Outcome:
    now = utcnow()
    outcome = confirmed_outcome(order, confirmed_at=now)
    decided = await _resolve(
        ctx, order=order, status="confirmed", outcome=outcome, now=now, priced=priced
    )
    if decided is outcome:
        ctx.metrics.created.inc()
    return decided


async def _resolve(
    ctx: OrdersContext,
    *,
    order: SagaOrder,
    status: str,
    outcome: Outcome,
    now: datetime | None = None,
    priced: bool = False,
) -> Outcome:
    """Commit this outcome unless another actor settled the order first; return the winner."""
    decided = await saga_writes.decide(
        ctx.sessionmaker,
        order=order,
        status=status,
        response_status=outcome.status_code,
        response_body=outcome.body,
        priced=priced,
        now=now or utcnow(),
    )
    if decided:
        return outcome
    current = await _current_outcome(ctx, order_id=order.id)
    if current is None:  # cannot happen: it left pending, so it has an outcome
        raise RuntimeError(f"order {order.id} lost its outcome")
    return current


async def _current_outcome(ctx: OrdersContext, *, order_id: uuid.UUID) -> Outcome | None:
    """The answer a settled order's creation got (stored with its key, else derived)."""
    with transaction_intent(writes=False):
        async with ctx.sessionmaker() as db:
            order = await repository.get_order(db, order_id)
            record = await repository.get_idempotency_key_of_order(db, order_id=order_id)
    if record is not None and record.response_status is not None:
        return Outcome(record.response_status, record.response_body or {})
    return None if order is None else outcome_of(order)


async def _load_key(ctx: OrdersContext, *, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
    with transaction_intent(writes=False):
        async with ctx.sessionmaker() as db:
            return await repository.get_idempotency_key(db, user_id=user_id, key=key)


async def _mark_gave_up(ctx: OrdersContext, *, user_id: uuid.UUID, key: str, gave_up: bool) -> bool:
    with transaction_intent(writes=True):
        async with ctx.sessionmaker() as db:
            changed = await repository.set_key_gave_up(
                db, user_id=user_id, key=key, gave_up=gave_up
            )
            await db.commit()
            return changed


async def _replay(ctx: OrdersContext, *, record: IdempotencyKey, digest: str) -> Outcome:
    """Answer a repeat of a key: the stored answer, once the first request has one."""
    if record.request_hash != digest:
        raise IdempotencyKeyReused
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPLAY_WAIT_SECONDS
    delay = 0.02
    current: IdempotencyKey | None = record
    while current is not None:
        if current.response_status is not None:
            ctx.metrics.replays.inc()
            return Outcome(current.response_status, current.response_body or {}, replayed=True)
        if current.gave_up and await _mark_gave_up(
            ctx, user_id=record.user_id, key=record.key, gave_up=False
        ):
            # The first attempt gave up (products was down); this repeat resumes the saga.
            return await _resume(ctx, record=record)
        if loop.time() >= deadline:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
        current = await _load_key(ctx, user_id=record.user_id, key=record.key)
    raise OrderStillPending(
        record.order_id,
        "An earlier request with this Idempotency-Key is still being processed.",
        retry_after=2,
    )


async def _resume(ctx: OrdersContext, *, record: IdempotencyKey) -> Outcome:
    with transaction_intent(writes=False):
        async with ctx.sessionmaker() as db:
            order = await repository.get_order(db, record.order_id)
    if order is None:
        raise RuntimeError(f"idempotency record without order {record.order_id}")
    if order.status != "pending":
        outcome = outcome_of(order)
    else:
        outcome = await _settle(ctx, order=order, key=record.key)
    ctx.metrics.replays.inc()
    return Outcome(outcome.status_code, outcome.body, replayed=True)
