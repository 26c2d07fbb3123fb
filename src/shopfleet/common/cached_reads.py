"""Serve cached public GETs before FastAPI runs; fill the cache from FastAPI's answer.

A hit costs one Redis round trip and no routing, validation or serialisation: the stored
bytes are the response. A miss runs the endpoint as usual and keeps its body when the
status is 200. Concurrent misses of one key share one run of the endpoint (single flight).

A route may also have a `direct` answer: for the plain form of its request (say, a
product by its canonical id, no query) it reads the 200 body itself, without FastAPI's
routing, dependencies and response machinery; anything else, and every error, is left
to the FastAPI endpoint, which stays the route's definition (and its OpenAPI entry).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopfleet.common.cache import Found, ResponseCache
from shopfleet.common.metrics import Metrics, label_children

log = logging.getLogger("shopfleet.cached_reads")
ROUTE_TEMPLATE_KEY = "shopfleet.route_template"


# A query parameter's value in the form the cache key holds it (see normalise_query).
QueryValue = Callable[[str], str]


def text_value(value: str) -> str:
    return value


def int_value(value: str) -> str:
    """`7`, `07` and `+7` are one page."""
    try:
        return str(int(value))
    except ValueError:
        return value  # the endpoint answers 422, which is never cached


_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def bool_value(value: str) -> str:
    """The spellings pydantic accepts for a bool, as `true` or `false`."""
    lowered = value.strip().lower()
    return "true" if lowered in _TRUE else "false" if lowered in _FALSE else value


def decimal_value(value: str) -> str:
    try:
        number = Decimal(value)
    except InvalidOperation:
        return value
    return str(number.normalize()) if number.is_finite() else value


def set_value(value: str) -> str:
    """A comma-separated set (`fields=name,id`): order and repeats do not matter."""
    return ",".join(sorted({part.strip() for part in value.split(",")} - {""}))


@dataclass(frozen=True)
class CachedRoute:
    """A GET route whose 200 answers are cached.

    `scope(match)` names the generation the entry belongs to (bumped on writes);
    `key(match, query)` names the entry itself, or None to pass the request through
    uncached (an id in a form writes would never invalidate, say). `query` names the
    query parameters the endpoint reads, each with its normal form: only those make up
    the key, so parameters the endpoint ignores never create entries of their own.
    """

    pattern: re.Pattern[str]
    template: str  # the route's template, the `route` label of its metrics
    scope: Callable[[re.Match[str]], str]
    key: Callable[[re.Match[str], str], str | None]
    ttl: Callable[[Any], int]
    query: Mapping[str, QueryValue] = field(default_factory=dict)
    # The 200 body read without FastAPI, or None to let the endpoint answer (see above).
    direct: Callable[[Scope, re.Match[str]], Awaitable[bytes | None]] | None = None
    # Another cache entry the direct answer reads, as (scope, key), or None: read early,
    # in the limiter's round trip (SideRead). A list's total, say.
    side: Callable[[Scope, re.Match[str]], tuple[str, str] | None] | None = None


def normalise_query(query_string: bytes, known: Mapping[str, QueryValue]) -> str:
    """The recognised parameters, normalised and sorted: one entry per distinct answer.

    `page=1&limit=10` and `limit=10&page=1&utm=x` share an entry. A repeated parameter
    keeps its last value, the one FastAPI reads.
    """
    values: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        normal = known.get(name)
        if normal is not None:
            values[name] = normal(value)
    return urlencode(sorted(values.items()))


class _NotCacheable(Exception):
    """The endpoint answered with something other than 200: replay it to this caller."""

    def __init__(self, messages: list[Message]) -> None:
        super().__init__("not cacheable")
        self.messages = messages


@dataclass(slots=True)
class CacheLookup:
    """The cache read a request will make; `found` once read (in the limiter's round trip)."""

    route: CachedRoute
    match: re.Match[str]
    scope: str
    key: str
    found: Found | None = None


@dataclass(slots=True)
class SideRead:
    """A cache entry a direct answer will read besides its own (CachedRoute.side);
    `found` once read in the limiter's round trip."""

    scope: str
    key: str
    found: Found | None = None


_LOOKUP_KEY = "shopfleet.cache_lookup"
_SIDE_KEY = "shopfleet.side_read"


def side_read_found(scope: Scope) -> Found | None:
    """What the limiter read of the request's side entry (its route's `side` named it),
    or None: the direct answer reads it itself."""
    side: SideRead | None = scope.get(_SIDE_KEY)
    return None if side is None else side.found


class CachedReads:
    """Which requests are served from the cache, and under which key."""

    def __init__(self, routes: list[CachedRoute]) -> None:
        self.routes = routes

    def lookup(self, scope: Scope) -> CacheLookup | None:
        """The request's cache read, or None when it passes through uncached.

        Decided once per request (the limiter asks first, to read in its round trip);
        an admin's `no-cache` needs the claims, which the limiter has verified by then.
        """
        if _LOOKUP_KEY in scope:
            found: CacheLookup | None = scope[_LOOKUP_KEY]
            return found
        scope[_LOOKUP_KEY] = lookup = self._decide(scope)
        return lookup

    def side_read(self, scope: Scope) -> SideRead | None:
        """The other cache entry the request's direct answer will read, if any."""
        found = self.route_of(scope)
        if found is None or found[0].side is None:
            return None
        entry = found[0].side(scope, found[1])
        if entry is None:
            return None
        scope[_SIDE_KEY] = side = SideRead(*entry)
        return side

    def route_of(self, scope: Scope) -> tuple[CachedRoute, re.Match[str]] | None:
        """The cached route a GET asks for, with its path's match."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        path = scope["path"]
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is not None:
                return route, match
        return None

    def _decide(self, scope: Scope) -> CacheLookup | None:
        found = self.route_of(scope)
        if found is None:
            return None
        route, match = found
        if _admin_wants_fresh(scope):
            # An admin may insist on the database (Cache-Control: no-cache); nothing is stored.
            return None
        key = route.key(match, normalise_query(scope["query_string"], route.query))
        if key is None:
            return None
        return CacheLookup(route, match, route.scope(match), key)


class CachedReadMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        reads: CachedReads,
        cache: Callable[[], ResponseCache | None],
        settings: Callable[[], Any],
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.reads = reads
        self.cache = cache
        self.settings = settings
        self.fallbacks = label_children(metrics.direct_fallbacks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = self.cache()
        lookup = self.reads.lookup(scope) if cache is not None else None
        if lookup is None:
            # Uncached (an admin's no-cache, caching off): still answered directly if it can.
            found = self.reads.route_of(scope)
            if found is not None and found[0].direct is not None:
                body = await self._direct_body(scope, *found)
                if body is not None:
                    await _send_json(send, body)
                    return
            await self.app(scope, receive, send)
            return
        assert cache is not None
        # A hit never reaches routing: name the route for the metrics here.
        scope[ROUTE_TEMPLATE_KEY] = lookup.route.template

        async def load() -> bytes:
            if lookup.route.direct is not None:
                body = await self._direct_body(scope, lookup.route, lookup.match)
                if body is not None:
                    return body
            messages: list[Message] = []

            async def capture(message: Message) -> None:
                messages.append(message)

            await self.app(scope, receive, capture)
            start = messages[0]
            if start["status"] != 200 or any(
                name == b"content-encoding" for name, _ in start.get("headers", [])
            ):
                raise _NotCacheable(messages)
            return b"".join(m.get("body", b"") for m in messages[1:])

        try:
            result = await cache.get_or_load(
                scope=lookup.scope,
                key=lookup.key,
                ttl=lookup.route.ttl(self.settings()),
                load=load,
                known=lookup.found,
            )
        except _NotCacheable as refused:
            for message in refused.messages:
                await send(dict(message))  # copies: each waiter's layers add their own headers
            return
        await _send_json(send, result.body, cache=(lookup.key, result.hit))

    async def _direct_body(
        self, scope: Scope, route: CachedRoute, match: re.Match[str]
    ) -> bytes | None:
        """The route's direct answer; None leaves the request to the FastAPI endpoint.

        A failure (the database unavailable, say) is left to it too: the endpoint runs
        the same read again and answers the error as every other route does (503,
        problem+json). It is counted (direct_answer_fallbacks_total), so a direct answer
        that always fails shows instead of silently costing every request twice.
        """
        assert route.direct is not None
        scope[ROUTE_TEMPLATE_KEY] = route.template  # never routed: name it for the metrics
        try:
            return await route.direct(scope, match)
        except Exception as exc:
            self.fallbacks(route.template).inc()
            log.debug("direct answer failed", extra={"route": route.template, "error": repr(exc)})
            return None


def _admin_wants_fresh(scope: Scope) -> bool:
    claims = scope.get("state", {}).get("claims")
    if claims is None or claims.role != "admin":
        return False
    return any(
        name == b"cache-control" and b"no-cache" in value.lower()
        for name, value in scope["headers"]
    )


async def warm(app: ASGIApp, paths: list[str]) -> int:
    """Request `paths` from the app itself so their answers are cached; return how many."""
    import httpx

    transport = httpx.ASGITransport(app=app, client=("cache-warmer", 0))
    warmed = 0
    async with httpx.AsyncClient(transport=transport, base_url="http://warm") as client:
        for path in paths:
            if (await client.get(path)).status_code == 200:
                warmed += 1
    return warmed


async def _send_json(send: Send, body: bytes, *, cache: tuple[str, bool] | None = None) -> None:
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if cache is not None:
        key, hit = cache
        headers += [(b"x-cache", b"HIT" if hit else b"MISS"), (b"x-cache-key", key.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
