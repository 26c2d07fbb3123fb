"""The PostgreSQL pool's lifecycle: idle connections close, readiness knows the database.

SQLAlchemy's QueuePool keeps every connection it ever opened until the engine is
disposed: after a burst, 13 instances held all 100 of PostgreSQL's connections idle,
and neither a new instance, `psql` nor a migration could connect. Here idle
connections beyond `database_pool_min` close after `database_idle_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util import queue as sa_queue

log = logging.getLogger("shopfleet.database")
IDLE_SINCE = "shopfleet_idle_since"


class IdleClosingPool(AsyncAdaptedQueuePool):
    """A QueuePool (LIFO) that can close the connections idle longer than a timeout.

    LIFO hands out the most recently used connection, so under light load the surplus
    ones stay untouched and age out; FIFO would keep every connection warm for ever.
    It also counts the checkouts in progress and times each (a wait for a free
    connection, or the connect of a new one), for `/metrics`.
    """

    waiting = 0
    checkout_observer: Callable[[float], None] | None = None

    def _do_get(self) -> ConnectionPoolEntry:
        started = time.perf_counter()
        self.waiting += 1
        try:
            return super()._do_get()
        finally:
            self.waiting -= 1
            if self.checkout_observer is not None:
                self.checkout_observer(time.perf_counter() - started)

    def close_idle(self, *, idle_seconds: float, keep: int) -> int:
        """Close checked-in connections idle over `idle_seconds`, keeping the `keep` newest.

        Runs inside greenlet_spawn (closing an asyncpg connection awaits). Uses the
        queue and overflow counter the way QueuePool's own return path does when full.
        """
        records: list[ConnectionPoolEntry] = []
        while True:
            try:
                records.append(self._pool.get(False))
            except sa_queue.Empty:
                break
        now = time.monotonic()
        records.sort(key=lambda record: record.info.get(IDLE_SINCE, now), reverse=True)
        stale = [
            record
            for index, record in enumerate(records)
            if index >= keep and now - record.info.get(IDLE_SINCE, now) > idle_seconds
        ]
        # Keepers go back first: a request waiting meanwhile gets one at once.
        for record in records:
            if record not in stale:
                self._pool.put(record, False)
        for record in stale:
            try:
                record.close()
            finally:
                # Only once closed: the server never sees more than pool_size from us.
                self._dec_overflow()
        return len(stale)


def track_idle_time(engine: AsyncEngine) -> None:
    """Stamp each connection with the time it went back to the pool."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[IDLE_SINCE] = time.monotonic()


async def close_idle_connections(engine: AsyncEngine, *, idle_seconds: float, keep: int) -> int:
    """Close the engine's idle connections beyond `keep` (no-op for other pools)."""
    pool = engine.pool
    if not isinstance(pool, IdleClosingPool):
        return 0
    closed: int = await greenlet_spawn(pool.close_idle, idle_seconds=idle_seconds, keep=keep)
    return closed


async def run_idle_reaper(engine: AsyncEngine, *, idle_seconds: float, keep: int) -> None:
    """Close idle connections every quarter of the timeout, until cancelled."""
    interval = max(0.25, idle_seconds / 4)
    while True:
        await asyncio.sleep(interval)
        try:
            closed = await close_idle_connections(engine, idle_seconds=idle_seconds, keep=keep)
        except Exception as exc:  # a failed close must never stop the reaper
            log.warning("closing idle connections failed", extra={"error": repr(exc)})
            continue
        if closed:
            log.info("closed idle database connections", extra={"closed": closed})


async def open_connections(engine: AsyncEngine, count: int, *, within: float) -> bool:
    """Open up to `count` pooled connections (a warm start); False if the database refused."""
    if count <= 0:
        return True
    try:
        async with asyncio.timeout(within), contextlib.AsyncExitStack() as stack:
            for _ in range(count):
                await stack.enter_async_context(engine.connect())
    except Exception as exc:
        log.warning("database not reachable at start", extra={"error": repr(exc)})
        return False
    return True


class DatabaseProbe:
    """Can this instance get a database connection? Cached, so probes cost nothing under load.

    A busy pool (every connection checked out) is working, so it is ready; otherwise a
    checkout proves it: an idle pooled connection the server has not closed, or a new one.
    """

    def __init__(self, engine: AsyncEngine, *, ttl: float = 1.0, timeout: float = 2.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self.timeout = timeout
        self._checked_at = -float("inf")
        self._ok = False
        self._lock = asyncio.Lock()

    async def ok(self) -> bool:
        if time.monotonic() - self._checked_at < self.ttl:
            return self._ok
        async with self._lock:  # concurrent probes share one check
            if time.monotonic() - self._checked_at >= self.ttl:
                self._ok = await self._check()
                self._checked_at = time.monotonic()
        return self._ok

    async def _check(self) -> bool:
        pool = self.engine.pool
        if isinstance(pool, AsyncAdaptedQueuePool) and pool.checkedout() >= pool.size():
            return True
        try:
            async with asyncio.timeout(self.timeout), self.engine.connect():
                return True
        except Exception as exc:
            log.warning("database check failed", extra={"error": repr(exc)})
            return False
