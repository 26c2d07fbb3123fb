"""The sweeper: settles orders a crash or an outage left `pending`, and expires old keys.

For each stale pending order it asks products what became of the reservation:
- reserved: the reservation went through, so the order is confirmed (at the prices the
  reservation stored);
- released: stock is already back, so the order is rejected;
- never seen: the sweeper releases the order id at products first, which leaves a
  tombstone that refuses a delayed reserve from the crashed request, then rejects the
  order. It does not retry the reservation: a client that got a 503 must not find, much
  later, a purchase it never saw confirmed (a repeat with the same Idempotency-Key gets
  the final answer either way).

Each order is settled in its own transaction that holds the order's row while products
is asked (FOR UPDATE SKIP LOCKED on PostgreSQL, so instances share the work; BEGIN
IMMEDIATE on SQLite, which serialises writers), so a request confirming the same order
waits and then sees it settled.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.common.database import transaction_intent, utcnow
from shopfleet.common.errors import DependencyUnavailable
from shopfleet.orders import repository
from shopfleet.orders.models import Order
from shopfleet.orders.outcomes import confirmed_outcome, rejected_outcome
from shopfleet.orders.pricing import apply_prices
from shopfleet.orders.service import OrdersContext

log = logging.getLogger("shopfleet.orders.sweeper")
IDEMPOTENCY_KEY_RETENTION = timedelta(hours=24)
BATCH_SIZE = 100


@dataclass
class SweepReport:
    confirmed: int = 0
    rejected: int = 0
    purged_keys: int = 0
    interrupted: bool = False


async def sweep_once(ctx: OrdersContext) -> SweepReport:
    """Run one pass: settle up to BATCH_SIZE stale pending orders, purge expired keys."""
    report = SweepReport()
    now = utcnow()
    older_than = now - timedelta(seconds=ctx.settings.sweeper_pending_age)
    seen: set[uuid.UUID] = set()
    with transaction_intent(writes=True):
        for _ in range(BATCH_SIZE):
            async with ctx.sessionmaker() as db:
                order = await repository.lock_stale_pending(db, older_than=older_than, skip=seen)
                if order is None:
                    break
                seen.add(order.id)
                try:
                    status = await _settle(db, ctx=ctx, order=order)
                except DependencyUnavailable:
                    await db.rollback()
                    log.warning("products unavailable; sweep stops until the next pass")
                    report.interrupted = True
                    break
                await db.commit()
            if status == "confirmed":
                report.confirmed += 1
            else:
                report.rejected += 1
            log.info("settled a stale order", extra={"order_id": str(order.id), "status": status})
        async with ctx.sessionmaker() as db:
            report.purged_keys = await repository.purge_idempotency_keys(
                db, older_than=now - IDEMPOTENCY_KEY_RETENTION
            )
            await db.commit()
    return report


async def _settle(db: AsyncSession, *, ctx: OrdersContext, order: Order) -> str:
    found = await ctx.products.reservation_status(order_id=order.id)
    if found is None:
        await ctx.products.release_stock(order_id=order.id)
    now = utcnow()
    if found is not None and found[0] == "reserved":
        # The order is held in this session: the prices products reserved at are
        # flushed with the commit, like the answer below.
        apply_prices(order, found[1])
        status, outcome = "confirmed", confirmed_outcome(order, confirmed_at=now)
    else:
        status, outcome = "rejected", rejected_outcome(order)
    # The row is held, so this conditional update is the decision.
    await repository.resolve_pending(
        db,
        order_id=order.id,
        status=status,
        response_status=outcome.status_code,
        response_body=outcome.body,
        now=now,
    )
    if status == "confirmed":
        ctx.metrics.created.inc()
    return status


async def run_sweeper(ctx: OrdersContext) -> None:
    """Sweep every `sweeper_interval` seconds until cancelled."""
    while True:
        await asyncio.sleep(ctx.settings.sweeper_interval)
        try:
            await sweep_once(ctx)
        except Exception:
            log.exception("sweep failed")
