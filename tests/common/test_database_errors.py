"""Which database errors mean "no connection now" (503) and which are bugs (500)."""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from shopfleet.common.errors import is_connection_failure

# SQLAlchemy leaves its DBAPI adapters untyped.
DBAPI: Any = AsyncAdapt_asyncpg_dbapi(asyncpg)  # type: ignore[no-untyped-call]


def as_sqlalchemy_raises_it(error: Exception) -> sa_exc.DBAPIError:
    """Translate an asyncpg error the way SQLAlchemy's asyncpg dialect does."""
    try:
        try:
            raise error
        except Exception as raised:
            raise DBAPI.Error(str(raised), raised) from raised
    except DBAPI.Error as translated:
        wrapped = sa_exc.DBAPIError.instance("SELECT 1", {}, translated, DBAPI.Error)
        assert isinstance(wrapped, sa_exc.DBAPIError)
        return wrapped


def test_refused_and_lost_connections_are_unavailability() -> None:
    for error in (
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed mid-query"),
    ):
        wrapped = as_sqlalchemy_raises_it(error)
        # The generic DBAPIError, not OperationalError: it used to escape as a 500.
        assert type(wrapped) is sa_exc.DBAPIError
        assert is_connection_failure(wrapped), error


def test_network_errors_and_connect_timeouts_are_unavailability() -> None:
    assert is_connection_failure(ConnectionResetError("reset by peer"))
    assert is_connection_failure(TimeoutError())


def test_a_bad_statement_stays_a_bug() -> None:
    for error in (
        asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence"),
        asyncpg.exceptions.UndefinedTableError('relation "x" does not exist'),
    ):
        assert not is_connection_failure(as_sqlalchemy_raises_it(error)), error
