"""Pure-ASGI middleware: request id, instance header, access log, metrics, limits, gzip."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopfleet.common.deadlines import Deadlines
from shopfleet.common.errors import PROBLEM_JSON, problem_bytes
from shopfleet.common.logging import AccessLog
from shopfleet.common.metrics import Metrics
from shopfleet.common.tracing import current_trace_id

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})
access_log = AccessLog(logging.getLogger("shopfleet.access"), __file__)
error_log = logging.getLogger("shopfleet.errors")


class _BodyTooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class ServiceMiddleware:
    """The outermost layer of every service: one pass does all per-request bookkeeping."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        instance: str,
        metrics: Metrics,
        request_timeout: float,
        max_body_size: int,
        access_log_enabled: bool = True,
        trace_ids: bool = False,
    ) -> None:
        self.app = app
        self.instance = instance.encode()
        self.metrics = metrics
        self.request_timeout = request_timeout
        self.max_body_size = max_body_size
        self.access_log_enabled = access_log_enabled
        self.trace_ids = trace_ids
        self.deadlines = Deadlines()
        self.http_metrics = metrics.http

    @staticmethod
    def _route_template(scope: Scope) -> str:
        route = scope.get("route")
        if route is None and "shopfleet.route_template" in scope:
            return str(scope["shopfleet.route_template"])  # answered from the cache
        return str(getattr(route, "path_format", None) or getattr(route, "path", "unmatched"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = (
            given.decode("latin-1")
            if given and _SANE_REQUEST_ID.match(given.decode("latin-1"))
            else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        method = scope["method"]
        extra_headers = [
            (b"x-request-id", request_id.encode()),
            (b"x-instance", self.instance),
            # Every answer is JSON (or the docs page): never let a browser guess otherwise.
            (b"x-content-type-options", b"nosniff"),
        ]
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + extra_headers
            await send(message)

        async def respond_problem(code: int, detail: str, headers: list[Any] | None = None) -> None:
            body = problem_bytes(code, detail)
            await send_wrapper(
                {
                    "type": "http.response.start",
                    "status": code,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                        *(headers or []),
                    ],
                }
            )
            await send_wrapper({"type": "http.response.body", "body": body})

        # The route template is known only once routing ran, so in-flight is per method.
        self.http_metrics.started(method)
        try:
            error = self._check_body_headers(scope)
            if error is not None:
                await respond_problem(*error)
                return
            if _is_chunked(scope):
                # No Content-Length to check up front: read the body here, up to the limit.
                # Checked while FastAPI reads it, an overflow would surface as its 400.
                buffered = await self._read_limited(receive)
                if buffered is None:
                    await respond_problem(413, "The request body is too large.")
                    return
                receive = replay(buffered, receive)
            received = 0

            async def receive_wrapper() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_size:
                        raise _BodyTooLarge
                return message

            timed_out = False
            try:
                task = self.deadlines.enter(self.request_timeout)
                try:
                    await self.app(scope, receive_wrapper, send_wrapper)
                finally:
                    timed_out = self.deadlines.leave(task)
            except _BodyTooLarge:
                if not response_started:
                    await respond_problem(413, "The request body is too large.")
            except (TimeoutError, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and not timed_out:
                    raise  # cancelled by someone else: the server, a shutdown
                if not response_started:
                    await respond_problem(
                        503, "The request took too long.", [(b"retry-after", b"1")]
                    )
            except Exception:
                # Handled here, once, with the request id; never a stack trace to the client.
                error_log.exception("unhandled error", extra={"request_id": request_id})
                if not response_started:
                    await respond_problem(500, "An unexpected error occurred.")
        finally:
            route = self._route_template(scope)
            elapsed = time.perf_counter() - started
            self.http_metrics.finished(method, route, str(status), elapsed)
            if self.access_log_enabled and access_log.enabled():
                fields = {
                    "request_id": request_id,
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                }
                if self.trace_ids:
                    fields["trace_id"] = current_trace_id()
                access_log.write(fields)

    async def _read_limited(self, receive: Receive) -> list[Message] | None:
        """The request's body messages, or None once they pass the size limit."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # the client went away: let the app see it
            size += len(message.get("body", b""))
            if size > self.max_body_size:
                return None
            if not message.get("more_body", False):
                return messages

    def _check_body_headers(self, scope: Scope) -> tuple[int, str] | None:
        if scope["method"].encode() not in _BODY_METHODS:
            return None
        length = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return 400, "Invalid Content-Length."
            if size > self.max_body_size:
                return 413, "The request body is too large."
            if size == 0:
                return None
        elif chunked is None:
            return None
        content_type = _header(scope, b"content-type")
        if content_type is None or not _is_json(content_type):
            return 415, "The request body must be application/json."
        return None


def _is_chunked(scope: Scope) -> bool:
    return (
        scope["method"].encode() in _BODY_METHODS
        and _header(scope, b"content-length") is None
        and _header(scope, b"transfer-encoding") is not None
    )


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out `messages` first, then whatever the server sends next."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
