"""Response compression: Starlette's gzip for clients that ask, nothing per request otherwise."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ConditionalGZipMiddleware:
    """Starlette's GZip for clients that accept it, unless they send `x-no-compression`.

    Starlette builds a responder per request even for a client that takes no gzip (the
    gateway never asks for it); that identity case is handled here, its one effect kept:
    a large enough answer says `Vary: Accept-Encoding`.
    """

    def __init__(self, app: ASGIApp, *, minimum_size: int) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accepted = b""
        for key, value in scope["headers"]:
            if key == b"x-no-compression":
                await self.app(scope, receive, send)
                return
            if key == b"accept-encoding" and not accepted:
                accepted = value  # the first, as Starlette reads it
        if b"gzip" in bytes(accepted).lower():
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, _VaryOnEncoding(send, self.minimum_size).send)


_NOT_VARYING = frozenset(
    type_.partition(";")[0].strip().lower() for type_ in DEFAULT_EXCLUDED_CONTENT_TYPES
)


class _VaryOnEncoding:
    """What Starlette's identity responder does: `Vary: Accept-Encoding` on the answers
    it would have compressed for a client that asked (not partial, not already encoded,
    not an excluded type, and not a single body below the minimum size)."""

    __slots__ = ("downstream", "minimum_size", "start", "varies")

    def __init__(self, send: Send, minimum_size: int) -> None:
        self.downstream = send
        self.minimum_size = minimum_size
        self.start: Message | None = None
        self.varies = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.varies = _may_vary(message)
            if not self.varies:
                await self.downstream(message)
                return
            self.start = message
            return
        start = self.start
        if start is not None and kind == "http.response.body":
            self.start = None
            body = message.get("body", b"")
            if message.get("more_body", False) or len(body) >= self.minimum_size:
                MutableHeaders(raw=start["headers"]).add_vary_header("Accept-Encoding")
            await self.downstream(start)
        elif start is not None and kind == "http.response.pathsend":
            self.start = None
            await self.downstream(start)
        await self.downstream(message)


def _may_vary(start: Message) -> bool:
    start.setdefault("headers", [])
    start["headers"] = list(start["headers"])
    if start["status"] == 206:
        return False
    content_type = b""
    for key, value in start["headers"]:
        name = key.lower()
        if name == b"content-encoding":
            return False
        if name == b"content-type":
            content_type = value
    media = bytes(content_type).decode("latin-1").partition(";")[0].strip().lower()
    if media.startswith("application/grpc+"):
        return False
    return media not in _NOT_VARYING and media.partition("/")[0] + "/*" not in _NOT_VARYING
