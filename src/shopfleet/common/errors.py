"""One error hierarchy, rendered as RFC 9457 problem+json in one place."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("shopfleet.errors")


class ShopfleetError(Exception):
    """Base of every error a client may see; subclasses set status and problem type."""

    status_code = 500
    problem_type = "about:blank"
    keep_changes = False  # commit the request's transaction even though it fails

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(ShopfleetError):
    status_code = 400


class Unauthorized(ShopfleetError):
    status_code = 401

    def __init__(self, detail: str = "Missing or invalid credentials.", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="shopfleet"')


class Forbidden(ShopfleetError):
    status_code = 403


class NotFound(ShopfleetError):
    status_code = 404


class Conflict(ShopfleetError):
    status_code = 409


class Unprocessable(ShopfleetError):
    """A 422 for rules a schema cannot express; `field` names the offending input."""

    status_code = 422

    def __init__(self, detail: str, *, field: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        if field is not None:
            self.extra.setdefault("errors", [{"field": field, "message": detail}])


class RateLimited(ShopfleetError):
    status_code = 429


class DependencyUnavailable(ShopfleetError):
    status_code = 503

    def __init__(self, detail: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", str(retry_after))


def problem_response(
    status: int,
    detail: str,
    *,
    problem_type: str = "about:blank",
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": problem_type,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if extra:
        body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_JSON
    )


def problem_bytes(status: int, detail: str, **extra: Any) -> bytes:
    """Serialise a problem body for code paths below FastAPI (pure ASGI middleware)."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    body["detail"] = detail
    body.update(extra)
    return orjson.dumps(body)


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    # An unknown field's name is the client's text: an unpaired surrogate in it would not
    # even serialise, so name it by escapes.
    return path.encode("utf-8", "backslashreplace").decode() or "body"


def _shopfleet_problem(exc: ShopfleetError) -> Response:
    return problem_response(
        exc.status_code,
        exc.detail,
        problem_type=exc.problem_type,
        headers=exc.headers,
        extra=exc.extra,
    )


def _database_unavailable(exc: Exception) -> Response:
    # Pool exhausted, connection lost, SQLite busy past its timeout: the database, a
    # dependency, is unavailable for now; say so and when to retry, never a 500.
    log.warning("database unavailable", extra={"error": type(exc).__name__})
    return problem_response(
        503, "The database is unavailable; retry shortly.", headers={"Retry-After": "1"}
    )


async def _handle_shopfleet_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ShopfleetError)
    return _shopfleet_problem(exc)


async def _handle_database_unavailable(request: Request, exc: Exception) -> Response:
    return _database_unavailable(exc)


# SQLSTATE classes of a refused or lost connection: 08 connection exception, 53
# insufficient resources (53300 "sorry, too many clients already"), 57P0x shutting down
# or starting up. asyncpg's errors for these reach us as SQLAlchemy's generic DBAPIError.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def is_connection_failure(exc: BaseException) -> bool:
    """Whether a database error means "no connection now" rather than a bad statement."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError):
            if current.connection_invalidated:
                return True
            pending.append(current.orig)
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        pending += [current.__cause__, current.__context__]
    return False


async def _handle_database_error(request: Request, exc: Exception) -> Response:
    if is_connection_failure(exc):
        return await _handle_database_unavailable(request, exc)
    raise exc  # a bug, not an outage: ServiceMiddleware answers 500 and logs it


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem_response(400, "The request body is not valid JSON.")
    if any(
        error.get("type") == "model_attributes_type" and error["loc"] == ("body",)
        for error in errors
    ):
        return problem_response(400, "The request body must be a JSON object.")
    fields = [
        {"field": _field_path(tuple(error["loc"])), "message": error["msg"]} for error in errors
    ]
    return problem_response(422, "The request is not valid.", extra={"errors": fields})


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource."
    return problem_response(exc.status_code, detail, headers=dict(exc.headers or {}))


# asyncpg raises a bare ConnectionError when it cannot connect at all, and TimeoutError
# when a connect outlasts its timeout.
_DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.TimeoutError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    ConnectionError,
    TimeoutError,
)


def problem_for(exc: Exception) -> Response | None:
    """The answer the handlers below give `exc` outside FastAPI; None for a bug (a 500).

    For code that answers below FastAPI's exception handling (common/direct_writes.py).
    """
    if isinstance(exc, ShopfleetError):
        return _shopfleet_problem(exc)
    if isinstance(exc, _DATABASE_UNAVAILABLE) or (
        isinstance(exc, sa_exc.DBAPIError) and is_connection_failure(exc)
    ):
        return _database_unavailable(exc)
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Map every error path of the app to problem+json."""
    app.add_exception_handler(ShopfleetError, _handle_shopfleet_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    for database_error in _DATABASE_UNAVAILABLE:
        app.add_exception_handler(database_error, _handle_database_unavailable)
    # Other driver errors: 503 when the connection was refused or lost, else a 500.
    app.add_exception_handler(sa_exc.DBAPIError, _handle_database_error)
    # Unexpected exceptions are answered by ServiceMiddleware (500, logged once).
