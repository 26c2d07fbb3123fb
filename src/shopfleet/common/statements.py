"""Single statements outside a request's session, each its own transaction on PostgreSQL.

The hot paths (the order saga's writes, a reservation, reads answered as bytes) run one
statement at a time. SQLAlchemy's Connection, execution context and result cost ~0.35 ms
of CPU per statement over asyncpg's own work (0.60 against 0.25 ms for a checkout and a
7-parameter SELECT, measured side by side), more than the statement itself. So on
asyncpg a statement is compiled once to its SQL text and parameter order and then sent
on the driver's connection, in autocommit (no BEGIN or COMMIT: one round trip).

What stays SQLAlchemy's: the pool (its size, the liveness check on checkout, idle
closing, checkout metrics), the statement metrics and slow-query log (dbmetrics'
StatementTimer), and the exceptions callers and the error handlers see (IntegrityError,
DBAPIError, OperationalError for a lost connection). Traced instances, other drivers and
SQLite go through SQLAlchemy's execution, whose events the tracer sees.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy import Executable
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from shopfleet.common.database import transaction_intent
from shopfleet.common.dbmetrics import StatementTimer, timer_of

Row = Mapping[Any, Any]  # by column name: asyncpg.Record or RowMapping


class Statements(Protocol):
    async def rows(self, statement: ClauseElement, params: Mapping[str, Any]) -> Sequence[Row]:
        """Run one statement; its rows by column name (none for a statement without)."""
        ...


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in $1..$n order
    # Parameters whose type converts the value first (a TypeDecorator such as UTCDateTime).
    processors: Mapping[str, Callable[[Any], Any]]
    # Values the statement carries itself (`stock > 0` binds its 0).
    defaults: Mapping[str, Any]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = [params[name] if name in params else self.defaults[name] for name in self.names]
        if not self.processors:
            return values
        return [
            self.processors[name](value) if name in self.processors else value
            for name, value in zip(self.names, values, strict=True)
        ]


# Compiled once per statement object (statements are module constants or cached shapes);
# the asyncpg dialect is the only one compiled for.
_COMPILED: weakref.WeakKeyDictionary[ClauseElement, _Compiled] = weakref.WeakKeyDictionary()


def _compiled(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    found = _COMPILED.get(statement)
    if found is None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        if "POSTCOMPILE" in compiled.string:  # an expanding IN: its text depends on values
            raise TypeError("a driver statement needs fixed SQL text; use SQLAlchemy's path")
        # SQLAlchemy's own per-type conversions of the values (a TypeDecorator's).
        processors: dict[str, Any] = dict(compiled._bind_processors)
        if any(not callable(processor) for processor in processors.values()):
            raise TypeError("a tuple-typed parameter: use SQLAlchemy's path")
        defaults = {
            name: bind.effective_value
            for bind, name in compiled.bind_names.items()
            if not bind.required
        }
        found = _COMPILED[statement] = _Compiled(
            compiled.string, tuple(compiled.positiontup or ()), processors, defaults
        )
    return found


class _OnDriver:
    """Statements on one pooled asyncpg connection, checked out for a block."""

    def __init__(
        self, fairy: PoolProxiedConnection, dialect: Dialect, timer: StatementTimer | None
    ) -> None:
        self.fairy = fairy
        self.driver: asyncpg.Connection = fairy.driver_connection
        self.dialect = dialect
        self.timer = timer
        self.broken = False

    async def rows(self, statement: ClauseElement, params: Mapping[str, Any]) -> Sequence[Row]:
        compiled = _compiled(statement, self.dialect)
        arguments = compiled.arguments(params)  # a missing parameter is a bug: KeyError
        started = time.perf_counter()
        try:
            records = await self.driver.fetch(compiled.sql, *arguments)
        except asyncpg.IntegrityConstraintViolationError as error:
            raise sa_exc.IntegrityError(compiled.sql, None, error, hide_parameters=True) from error
        except asyncpg.PostgresError as error:
            # The server refused the statement; its SQLSTATE says whether that is an
            # outage (errors.is_connection_failure: 503) or a bug (500).
            raise sa_exc.DBAPIError(compiled.sql, None, error, hide_parameters=True) from error
        except (TypeError, ValueError) as error:
            # A value the driver could not encode (its DataError is a ValueError): a bug,
            # caught before anything was sent.
            raise sa_exc.DBAPIError(compiled.sql, None, error, hide_parameters=True) from error
        except Exception as error:
            # The connection failed under the statement (closed, reset, terminated by the
            # server, or the driver lost track of its state): an outage (503), and the
            # connection is closed rather than handed to the next request.
            self.broken = True
            raise sa_exc.OperationalError(
                compiled.sql, None, error, hide_parameters=True, connection_invalidated=True
            ) from error
        except BaseException:
            # Cancelled mid-statement: the connection may still be busy with it.
            self.broken = True
            raise
        if self.timer is not None:
            self.timer.observe(compiled.sql, time.perf_counter() - started)
        return cast(Sequence[Row], records)


class _OnSqlalchemy:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def rows(self, statement: ClauseElement, params: Mapping[str, Any]) -> Sequence[Row]:
        result = await self.connection.execute(cast(Executable, statement), params)
        return list(result.mappings()) if result.returns_rows else []


@contextlib.asynccontextmanager
async def statements(engine: AsyncEngine) -> AsyncIterator[Statements]:
    """A connection for single statements (reads, or writes atomic by themselves).

    PostgreSQL: autocommit, each statement its own transaction. SQLite: one deferred
    transaction for the block (a reader beside the writer in WAL mode).
    """
    timer = timer_of(engine)
    if engine.dialect.driver == "asyncpg" and not (timer is not None and timer.traced):
        try:
            fairy = await engine.raw_connection()
        except engine.dialect.loaded_dbapi.Error as error:
            # As engine.connect() does: the driver's refusal (too many clients, shutting
            # down) as SQLAlchemy's error, which the 503 mapping reads.
            raise sa_exc.DBAPIError.instance(
                None,
                None,
                error,
                engine.dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=engine.dialect,
            ) from error
        on_driver = _OnDriver(fairy, engine.dialect, timer)
        try:
            yield on_driver
        finally:
            if on_driver.broken:
                fairy.invalidate()
            else:
                fairy.close()
        return
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield _OnSqlalchemy(autocommit)
            return
        with transaction_intent(writes=False):
            yield _OnSqlalchemy(connection)


async def one_statement(
    engine: AsyncEngine, statement: ClauseElement, params: Mapping[str, Any]
) -> Sequence[Row]:
    """Run one statement as its own transaction (PostgreSQL) and return its rows."""
    async with statements(engine) as connection:
        return await connection.rows(statement, params)
