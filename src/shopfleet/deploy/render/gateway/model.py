"""The gateway as data: what one deployment's nginx does, before any nginx syntax.

Built per deployment from the topology (gateway/build.py) and turned into nginx.conf by
one renderer (gateway/nginx.py), so the local, PM2 and Compose gateways differ only
where their deployments do (how instances are found, where files and logs go, TLS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ZoneName = Literal["general", "auth", "api"]


@dataclass(frozen=True)
class LimitZone:
    """A per-client-address `limit_req` zone: its rate, and the burst every use allows."""

    name: ZoneName
    rate: int  # requests per second
    burst: int


@dataclass(frozen=True)
class UpstreamServer:
    address: str
    parameters: str = ""  # e.g. passive health ("max_fails=0") or "down"


@dataclass(frozen=True)
class Upstream:
    """A named group of instances, reached over kept-alive connections."""

    name: str
    servers: tuple[UpstreamServer, ...]
    keepalive: int
    keepalive_timeout: int  # seconds
    balancing: str | None = None  # e.g. "least_conn"; None is round robin
    shared_zone: bool = False  # state shared by the workers (failed connects, least_conn)


@dataclass(frozen=True)
class Proxy:
    """Send the request on: to a named upstream, or to `host:port` resolved per request."""

    target: str
    uri: str = ""
    resolve: bool = False


@dataclass(frozen=True)
class Redirect:
    to: str
    status: int = 301


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 answer made by the gateway itself."""

    status: int
    title: str
    detail: str


@dataclass(frozen=True)
class Respond:
    """A fixed answer (health, bench ceiling)."""

    body: str
    status: int = 200
    content_type: str | None = None


@dataclass(frozen=True)
class StubStatus:
    """nginx's connection counters, for the exporter."""


Action = Proxy | Redirect | Problem | Respond | StubStatus


@dataclass(frozen=True)
class Location:
    """One route: how it is matched, what it does, and the public policy it applies."""

    match: str  # nginx's location argument, e.g. "= /v1/auth/login" or "/v1/products"
    action: Action
    limits: tuple[LimitZone, ...] = ()
    # Public routes: the client's x-no-compression wish, internal headers hidden, the
    # security headers (and the server's own, e.g. HSTS) on every answer.
    public: bool = False
    micro_cache: bool = False


@dataclass(frozen=True)
class Tls:
    certificate: str
    certificate_key: str


@dataclass(frozen=True)
class Listener:
    address: str  # "8080" or "127.0.0.1:8081"
    tls: Tls | None = None


@dataclass(frozen=True)
class Server:
    listener: Listener
    locations: tuple[Location, ...]
    comment: str = ""
    limits: tuple[LimitZone, ...] = ()  # on every route of the server
    connections_per_client: int | None = None
    headers: tuple[tuple[str, str], ...] = ()  # added to every public answer (HSTS)


@dataclass(frozen=True)
class MicroCache:
    """The short shared cache of anonymous public reads."""

    path: str
    seconds: int  # the longest an anonymous reader may see an old answer


@dataclass(frozen=True)
class Files:
    """Where the gateway keeps its pid, logs and temporary files in this deployment."""

    pid: str
    error_log: str
    access_log: str  # the target and its buffering
    temp: tuple[tuple[str, str], ...]  # (kind, path): client_body, proxy, ...


@dataclass(frozen=True)
class GatewayModel:
    """One deployment's gateway."""

    comments: tuple[str, ...]
    files: Files
    client_max_body_size: str
    proxy_read_timeout: int
    zones: tuple[LimitZone, ...]
    micro_cache: MicroCache
    servers: tuple[Server, ...]
    upstreams: tuple[Upstream, ...] = ()
    # Instances found by name per request (Compose): the resolver config nginx includes.
    resolver_include: str | None = None
    worker_user: str | None = None
    # The peers an instance may believe about the client's address (X-Forwarded-For).
    trusted_proxies: tuple[str, ...] = field(default=())
