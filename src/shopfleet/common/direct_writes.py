"""Answer a service's hottest writes without FastAPI's routing, dependencies and responses.

A `DirectWrite` names a route (method and path) and an `answer(scope, match, body)` that
handles the request's plain, valid form on its own and returns None for anything else:
no credential, a body that does not validate, a header it does not take. The request
then goes on to the FastAPI endpoint with its body replayed, and that endpoint stays the
route's definition (its validation errors, its OpenAPI entry). So an answer must decide
to step aside before it changes anything.

Errors an answer raises are answered as the app's error handlers answer them
(`errors.problem_for`: problem+json, 503 for a database outage); anything else is a bug
and reaches ServiceMiddleware's 500. Bookkeeping (request id, limits, metrics, access
log, timeouts, body size) stays in the middleware outside this one.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopfleet.common.cached_reads import ROUTE_TEMPLATE_KEY
from shopfleet.common.errors import problem_for
from shopfleet.common.middleware import replay


@dataclass(frozen=True, slots=True)
class DirectAnswer:
    status: int
    body: bytes
    media_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True)
class DirectWrite:
    method: str
    pattern: re.Pattern[str]
    template: str  # the route's template, the `route` label of its metrics
    answer: Callable[[Scope, re.Match[str], bytes], Awaitable[DirectAnswer | None]]


def header_values(scope: Scope, name: bytes) -> list[str]:
    """Every value of header `name` (lower case), decoded as Starlette decodes them."""
    return [value.decode("latin-1") for key, value in scope["headers"] if key == name]


class DirectWriteMiddleware:
    def __init__(self, app: ASGIApp, *, routes: Sequence[DirectWrite]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._route_of(scope) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        route, match = found
        messages = await _read_body(receive)
        if messages[-1]["type"] != "http.request":  # the client went away: the app sees it
            await self.app(scope, replay(messages, receive), send)
            return
        body = b"".join(message.get("body", b"") for message in messages)
        try:
            answer = await route.answer(scope, match, body)
        except Exception as exc:
            problem = problem_for(exc)
            if problem is None:
                raise
            scope[ROUTE_TEMPLATE_KEY] = route.template
            await problem(scope, receive, send)
            return
        if answer is None:
            await self.app(scope, replay(messages, receive), send)
            return
        scope[ROUTE_TEMPLATE_KEY] = route.template  # never routed: name it for the metrics
        headers = [
            (b"content-type", answer.media_type),
            (b"content-length", str(len(answer.body)).encode()),
            *answer.headers,
        ]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _route_of(self, scope: Scope) -> tuple[DirectWrite, re.Match[str]] | None:
        method, path = scope["method"], scope["path"]
        for route in self.routes:
            if route.method == method:
                match = route.pattern.fullmatch(path)
                if match is not None:
                    return route, match
        return None


async def _read_body(receive: Receive) -> list[Message]:
    """The request's body messages, up to its end or the client's going away.

    Its size is bounded by ServiceMiddleware, which wraps `receive` outside this one.
    """
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages
