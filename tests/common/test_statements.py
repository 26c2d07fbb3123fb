"""Single statements on the driver's connection (common/statements.py), on a real PostgreSQL.

They must behave like SQLAlchemy's execution where callers can tell: rows by column name,
type conversions of the parameters, SQLAlchemy's exceptions (so the 503 mapping and the
saga's IntegrityError handling still work), the statement metrics and slow-query log,
and a pool that never hands out a connection whose state is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, exc, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shopfleet.common.database import UTCDateTime, create_engine
from shopfleet.common.dbmetrics import instrument_engine
from shopfleet.common.errors import is_connection_failure
from shopfleet.common.metrics import Metrics
from shopfleet.common.pool import IdleClosingPool
from shopfleet.common.settings import Settings
from shopfleet.common.statements import one_statement, statements
from tests.support import POSTGRES_URL

_TABLE = Table(
    "statement_probe",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime),
)
_INSERT = text("INSERT INTO statement_probe (id, at) VALUES (:id, :at) RETURNING id")
_SELECT = select(_TABLE.c.id, _TABLE.c.at).where(
    _TABLE.c.id == bindparam("id"), _TABLE.c.at >= bindparam("since", type_=UTCDateTime)
)


def _durations(metrics: Metrics) -> int:
    return sum(
        int(sample.value)
        for metric in metrics.db_query_duration.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    )


@contextlib.asynccontextmanager
async def _engine(**overrides: object) -> AsyncIterator[tuple[AsyncEngine, Metrics]]:
    schema_prefix = f"stmt{uuid.uuid4().hex[:6]}_"
    settings = Settings(
        service="products",
        database_url=POSTGRES_URL,
        database_schema_prefix=schema_prefix,
        database_pool_size=1,
        **overrides,  # type: ignore[arg-type]
    )
    schema = f"{schema_prefix}products"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await connection.execute(
            text(
                f'CREATE TABLE "{schema}".statement_probe (id INTEGER PRIMARY KEY, at TIMESTAMPTZ)'
            )
        )
    engine = create_engine(settings)
    metrics = Metrics()
    instrument_engine(engine, metrics, slow_query_seconds=settings.slow_query_seconds)
    try:
        yield engine, metrics
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def test_rows_by_name_with_converted_parameters_and_timed() -> None:
    async with _engine() as (engine, metrics):
        at = datetime(2026, 12, 1, 3, 4, 5, tzinfo=UTC)
        inserted = await one_statement(engine, _INSERT, {"id": 7, "at": at})
        assert [row["id"] for row in inserted] == [7]
        # UTCDateTime converts the bound value first (SQLAlchemy's bind processor).
        rows = await one_statement(engine, _SELECT, {"id": 7, "since": at})
        assert [(row["id"], row["at"]) for row in rows] == [(7, at)]
        assert _durations(metrics) == 2
        # Autocommit: the row is there for another connection at once.
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM statement_probe")) == 1


async def test_errors_are_sqlalchemys_and_the_connection_survives_a_refused_statement() -> None:
    async with _engine() as (engine, _):
        await one_statement(engine, _INSERT, {"id": 1, "at": None})
        with pytest.raises(exc.IntegrityError) as duplicate:
            await one_statement(engine, _INSERT, {"id": 1, "at": datetime(2031, 5, 6, tzinfo=UTC)})
        assert not is_connection_failure(duplicate.value)
        assert "2031" not in str(duplicate.value)  # parameters never reach a log line
        with pytest.raises(exc.DBAPIError) as bad:
            await one_statement(engine, text("SELECT no_such_column FROM statement_probe"), {})
        assert not is_connection_failure(bad.value)
        with pytest.raises(exc.DBAPIError) as unencodable:  # a str for an INTEGER
            await one_statement(engine, _INSERT, {"id": "two", "at": None})
        assert not is_connection_failure(unencodable.value)
        pid = (await one_statement(engine, text("SELECT pg_backend_pid() AS pid"), {}))[0]["pid"]
        # Still the same pooled connection (pool size 1): a refusal does not discard it.
        again = await one_statement(engine, text("SELECT pg_backend_pid() AS pid"), {})
        assert again[0]["pid"] == pid


async def test_a_lost_connection_is_an_outage_and_is_not_reused() -> None:
    async with _engine() as (engine, _):
        admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            async with statements(engine) as connection:
                pid = (await connection.rows(text("SELECT pg_backend_pid() AS pid"), {}))[0]["pid"]
                async with admin.connect() as other:
                    await other.execute(text(f"SELECT pg_terminate_backend({pid})"))
                with pytest.raises(exc.DBAPIError) as lost:
                    await connection.rows(text("SELECT 1 AS one"), {})
            assert is_connection_failure(lost.value)  # answered 503, not 500
            after = await one_statement(engine, text("SELECT pg_backend_pid() AS pid"), {})
            assert after[0]["pid"] != pid
        finally:
            await admin.dispose()


async def test_a_cancelled_statement_never_leaves_its_connection_in_the_pool() -> None:
    async with _engine() as (engine, _):
        sleep = text("SELECT pg_sleep(5)")
        first = await one_statement(engine, text("SELECT pg_backend_pid() AS pid"), {})
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await one_statement(engine, sleep, {})
        # The next statement gets a working connection, not one mid-query.
        after = await one_statement(engine, text("SELECT pg_backend_pid() AS pid"), {})
        assert after[0]["pid"] != first[0]["pid"]
        pool = engine.pool
        assert isinstance(pool, IdleClosingPool) and pool.checkedout() == 0


async def test_slow_statements_are_counted_and_logged_without_parameters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _engine(slow_query_seconds=0.05) as (engine, metrics):
        with caplog.at_level(logging.WARNING, logger="shopfleet.db"):
            await one_statement(
                engine, text("SELECT pg_sleep(0.1), CAST(:secret AS TEXT)"), {"secret": "hunter2"}
            )
        slow = sum(
            sample.value
            for metric in metrics.db_slow_queries.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        assert slow == 1
        logged = [record for record in caplog.records if record.getMessage() == "slow statement"]
        assert len(logged) == 1 and "hunter2" not in str(logged[0].__dict__)
