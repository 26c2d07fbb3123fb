"""Statement timing for an engine: duration by kind, and slow statements counted and logged."""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

from shopfleet.common.metrics import Metrics

log = logging.getLogger("shopfleet.db")
_KINDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"})
_STARTED = "shopfleet_statement_started"
_SPAN = "shopfleet_statement_span"


def statement_kind(statement: str) -> str:
    """SELECT, INSERT, UPDATE, DELETE, WITH, or other (BEGIN, SAVEPOINT, DDL...)."""
    word = statement.lstrip()[:6].upper()
    return word if word in _KINDS else ("WITH" if word.startswith("WITH") else "other")


class StatementTimer:
    """Observes one engine's statements: duration by kind; slow ones counted and logged."""

    def __init__(self, metrics: Metrics, *, slow_query_seconds: float, traced: bool) -> None:
        self.durations = {
            kind: metrics.db_query_duration.labels(kind) for kind in (*_KINDS, "other")
        }
        self.slow_queries = metrics.db_slow_queries
        self.slow_query_seconds = slow_query_seconds
        self.traced = traced  # each statement is a span: only SQLAlchemy's path makes them

    def observe(self, statement: str, elapsed: float) -> None:
        kind = statement_kind(statement)
        self.durations[kind].observe(elapsed)
        if elapsed >= self.slow_query_seconds:
            self.slow_queries.labels(kind).inc()
            # The statement text only: parameters may hold personal data.
            log.warning(
                "slow statement",
                extra={"seconds": round(elapsed, 4), "kind": kind, "statement": statement[:500]},
            )


_TIMERS: weakref.WeakKeyDictionary[Engine, StatementTimer] = weakref.WeakKeyDictionary()


def timer_of(engine: AsyncEngine) -> StatementTimer | None:
    """The timer instrument_engine gave `engine` (None when it was never instrumented)."""
    return _TIMERS.get(engine.sync_engine)


def instrument_engine(
    engine: AsyncEngine,
    metrics: Metrics,
    *,
    slow_query_seconds: float,
    tracer: Tracer | None = None,
) -> None:
    """Time every statement of `engine` (two clock reads and one histogram observe).

    With a tracer, each statement is also a span (SQLAlchemy's own instrumentor patches
    engine creation process-wide; these hooks keep tracing per instance). Statements run
    straight on the driver (common/statements.py) are timed by the same StatementTimer.
    """
    timer = StatementTimer(
        metrics, slow_query_seconds=slow_query_seconds, traced=tracer is not None
    )
    _TIMERS[engine.sync_engine] = timer
    system = engine.dialect.name

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        conn.info[_STARTED] = time.perf_counter()
        if tracer is not None:
            conn.info[_SPAN] = tracer.start_span(
                statement_kind(statement),
                kind=SpanKind.CLIENT,
                attributes={"db.system": system, "db.statement": statement[:2000]},
            )

    @event.listens_for(engine.sync_engine, "handle_error")
    def _error(context: Any) -> None:
        span = context.connection.info.pop(_SPAN, None) if context.connection else None
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, type(context.original_exception).__name__))
            span.end()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        span = conn.info.pop(_SPAN, None)
        if span is not None:
            span.end()
        started = conn.info.pop(_STARTED, None)
        if started is not None:
            timer.observe(statement, time.perf_counter() - started)
