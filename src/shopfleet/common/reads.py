"""Helpers for reads that answer JSON bytes straight from Core rows (no ORM, no pydantic)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shopfleet.common.database import transaction_intent


def rfc3339(value: datetime) -> str:
    """A timestamp as common.schemas.Timestamp serialises it (UTC as `Z`)."""
    return value.isoformat().replace("+00:00", "Z")


def optional_str(value: object) -> str | None:
    return None if value is None else str(value)


@contextlib.asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads outside a request session.

    PostgreSQL: autocommit, so a single SELECT is one round trip (no BEGIN, no COMMIT).
    SQLite: a deferred transaction (a reader beside the writer in WAL mode).
    """
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")
            return
        with transaction_intent(writes=False):
            yield connection
