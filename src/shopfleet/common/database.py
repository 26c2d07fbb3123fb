"""Async engines, per-request sessions and the column types every service shares."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import JSON, DateTime, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator

from shopfleet.common.cache import ResponseCache
from shopfleet.common.errors import ShopfleetError
from shopfleet.common.pool import IdleClosingPool, track_idle_time
from shopfleet.common.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_write_intent: ContextVar[bool] = ContextVar("shopfleet_write_intent", default=True)

JSONType = JSON().with_variant(JSONB(), "postgresql")


def new_metadata() -> MetaData:
    """Return a MetaData with the shared constraint naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_engine(settings: Settings, service: str | None = None) -> AsyncEngine:
    """Create the pooled async engine of one service's database."""
    url = settings.database_url_for(service)
    kwargs: dict[str, Any] = {"echo": settings.database_echo}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.update(
        poolclass=IdleClosingPool,
        pool_size=settings.database_pool_size,
        max_overflow=0,
        pool_timeout=settings.database_pool_timeout,
        pool_use_lifo=True,
        connect_args=_postgres_connect_args(settings, service),
    )
    engine = create_async_engine(url, **kwargs)
    _replace_closed_connections(engine)
    track_idle_time(engine)
    return engine


def _postgres_connect_args(settings: Settings, service: str | None) -> dict[str, Any]:
    # A connect that hangs (a server at its limit, a lost network) fails within the
    # pool timeout, as a 503, rather than asyncpg's default of 60 s.
    args: dict[str, Any] = {"timeout": settings.database_pool_timeout}
    if settings.database_pgbouncer:
        # Transaction pooling: the next transaction may run on another server connection,
        # so asyncpg must not reuse named statements (PgBouncer 1.18, Debian 12's, cannot
        # track them); each statement gets a unique name and no cache. PgBouncer's
        # per-service database sets search_path itself (connect_query).
        args.update(
            statement_cache_size=0,
            prepared_statement_cache_size=0,
            prepared_statement_name_func=_unique_statement_name,
        )
        return args
    schema = settings.database_schema_for(service)
    args["server_settings"] = {"search_path": schema or "public"}
    return args


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def _replace_closed_connections(engine: AsyncEngine) -> None:
    """Hand out no connection the server has closed (restart, idle timeout, terminated).

    Instead of pool_pre_ping, which costs three round trips per checkout (BEGIN, a ping,
    ROLLBACK: half of a primary-key read's), the driver's own view of the socket is asked:
    the server's goodbye has been read by then, so a dead connection is replaced for free.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            # The pool discards this connection and checks out another (a fresh one).
            raise DisconnectionError("the server closed this connection")


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside one writer; every process of a service shares the file.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A transaction that may write takes the write lock up front (BEGIN IMMEDIATE),
        # so two processes never both read and then fail to upgrade (SQLITE_BUSY).
        # Read-only requests begin deferred and run beside the writer (WAL).
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


@contextmanager
def transaction_intent(*, writes: bool) -> Iterator[None]:
    """Open the transactions of this block as writers (BEGIN IMMEDIATE on SQLite) or readers.

    For code that owns its sessions outside a request (sagas, background tasks).
    """
    token = _write_intent.set(writes)
    try:
        yield
    finally:
        _write_intent.reset(token)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the request's transaction has committed (cache invalidation)."""
    session.info.setdefault("after_commit", []).append(callback)


def invalidate_after_commit(session: AsyncSession, *scopes: str) -> None:
    """Declare cache scopes this transaction changes; they are bumped once it commits."""
    session.info.setdefault("invalidate", set()).update(scopes)


async def run_after_commit(session: AsyncSession, cache: ResponseCache | None = None) -> None:
    """Invalidate declared cache scopes, then run the callbacks registered with after_commit."""
    scopes: set[str] = session.info.pop("invalidate", set())
    if scopes and cache is not None:
        await cache.invalidate(*sorted(scopes))
    callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
    for callback in callbacks:
        await callback()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Open the request's one transaction; commit on success, roll back on error."""
    resources = request.app.state.resources
    sessionmaker: async_sessionmaker[AsyncSession] = resources.sessionmaker
    _write_intent.set(request.method not in READ_ONLY_METHODS)
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
            await run_after_commit(session, resources.cache)
        except ShopfleetError as exc:
            # Some refusals must still record what they found (a reused refresh token
            # revokes its session); they say so with `keep_changes`.
            if exc.keep_changes:
                await session.commit()
                await run_after_commit(session, resources.cache)
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
