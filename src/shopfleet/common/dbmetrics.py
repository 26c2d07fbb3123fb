"""Statement timing for an engine: duration by kind, and slow statements counted and logged."""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event
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


def instrument_engine(
    engine: AsyncEngine,
    metrics: Metrics,
    *,
    slow_query_seconds: float,
    tracer: Tracer | None = None,
) -> None:
    """Time every statement of `engine` (two clock reads and one histogram observe).

    With a tracer, each statement is also a span (SQLAlchemy's own instrumentor patches
    engine creation process-wide; these hooks keep tracing per instance).
    """
    durations = {kind: metrics.db_query_duration.labels(kind) for kind in (*_KINDS, "other")}
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
        if started is None:
            return
        elapsed = time.perf_counter() - started
        kind = statement_kind(statement)
        durations[kind].observe(elapsed)
        if elapsed >= slow_query_seconds:
            metrics.db_slow_queries.labels(kind).inc()
            # The statement text only: parameters may hold personal data.
            log.warning(
                "slow statement",
                extra={"seconds": round(elapsed, 4), "kind": kind, "statement": statement[:500]},
            )
