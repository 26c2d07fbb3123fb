"""The gateway model of each deployment, built from the topology.

The routes and their policy are the same everywhere (`_public_locations`,
`_internal_locations`); what differs is how instances are found (upstream blocks of
loopback ports locally, service names resolved per request in Compose, whose replicas come
and go), where the gateway keeps its files, TLS and the bench references (local only).
"""

from __future__ import annotations

from collections.abc import Callable

from shopfleet.bench.payload import payload_json
from shopfleet.deploy.render.gateway.model import (
    Files,
    GatewayModel,
    LimitZone,
    Listener,
    Location,
    MicroCache,
    Problem,
    Proxy,
    Redirect,
    Respond,
    Server,
    StubStatus,
    Tls,
    Upstream,
    UpstreamServer,
)
from shopfleet.deploy.topology import LOCAL_PROXIES, Service, Topology, instance_name

MICRO_CACHED = ("products", "categories")
AUTH_LIMITED = ("/v1/auth/login", "/v1/auth/register")
# Operational routes exist only on the internal listener.
INTERNAL_ONLY = ("/internal/", "/metrics", "/health", "/nginx/")
# Passive health, chosen by measurement (docs/deployment.md, tests/e2e/test_gateway.py):
# no instance is ever marked down. A refused connect costs microseconds on loopback and is
# retried on the next instance at once (proxy_next_upstream), whereas any "down" window
# (fail_timeout) outlives the restart it was caused by: a sibling restarting inside it
# left no instance, and nginx answered 502 while every instance was healthy again.
PASSIVE_HEALTH = "max_fails=0"
# Relative to the local prefix var/run/nginx/: logs land in var/log/ with the instances'.
LOCAL_LOG_DIR = "../../log"
# The Compose gateway's state: resolver config (written by its entrypoint), temp files,
# micro-cache, pid; a named volume.
COMPOSE_STATE = "/var/cache/shopfleet-gateway"
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
NOT_FOUND = Problem(404, "Not Found", "no such route")
HSTS = ("Strict-Transport-Security", '"max-age=31536000"')

Route = Callable[[Service, str], Proxy]


def _zones(topology: Topology) -> tuple[LimitZone, LimitZone, LimitZone]:
    """The general, auth and api zones."""
    limits = topology.gateway.rate_limits
    return (
        LimitZone("general", limits.general.rate, limits.general.burst),
        LimitZone("auth", limits.auth.rate, limits.auth.burst),
        LimitZone("api", limits.api.rate, limits.api.burst),
    )


def _public_locations(topology: Topology, to: Route, *, assets_by_name: bool) -> list[Location]:
    """Every route of a public listener: the API under the `general` and `api` zones (and
    `auth` for sign-in), the micro-cache for product and category reads, the docs, and a
    problem+json 404 for everything else."""
    general, auth, api = _zones(topology)
    out = [
        Location(f"= {path}", to(topology.services["auth"], ""), (general, api, auth), public=True)
        for path in AUTH_LIMITED
    ]
    for service in topology.ordered_services():
        cached = service.name in MICRO_CACHED
        out.append(Location(f"/v1/{service.name}", to(service, ""), (general, api), True, cached))
    for service in topology.ordered_services():
        name = service.name
        out.append(Location(f"= /docs/{name}", Redirect(f"/docs/{name}/")))
        out.append(Location(f"= /docs/{name}/", to(service, "/docs/"), (general,), public=True))
        out.append(
            Location(f"= /docs/{name}/openapi.json", to(service, "/openapi.json"), (general,), True)
        )
        # Swagger UI's assets, served by the instance itself (no CDN). A target resolved
        # per request is sent its URI as written, so there the file name is captured.
        if assets_by_name:
            assets = Location(
                f"~ ^/docs/{name}/assets/([A-Za-z0-9._-]+)$",
                to(service, "/docs/assets/$1"),
                (general,),
                public=True,
            )
        else:
            assets = Location(
                f"/docs/{name}/assets/", to(service, "/docs/assets/"), (general,), public=True
            )
        out.append(assets)
    out += [Location(f"^~ {path}", NOT_FOUND, public=True) for path in INTERNAL_ONLY]
    out.append(Location("/", NOT_FOUND, public=True))
    return out


def _internal_locations(topology: Topology, to: Route) -> list[Location]:
    """Service-to-service calls and the gateway's own health and counters."""
    out = [
        Location(f"{prefix}/{service.name}", to(service, ""))
        for service in topology.ordered_services()
        for prefix in ("/internal", "/v1")
    ]
    return [
        *out,
        Location("= /nginx/health", Respond('{"status":"ok"}')),
        Location("= /nginx/status", StubStatus()),
        Location("/", NOT_FOUND),
    ]


def _servers(
    topology: Topology,
    to: Route,
    *,
    internal_address: str,
    assets_by_name: bool,
    first: tuple[Location, ...] = (),
    tls: Tls | None = None,
) -> tuple[Server, ...]:
    gateway = topology.gateway
    general = _zones(topology)[0]
    # nginx refuses limits of 65536 and more (the bench profile asks for 100000).
    connections = min(gateway.rate_limits.connections_per_client, 65535)
    public = tuple(_public_locations(topology, to, assets_by_name=assets_by_name))
    servers = [
        Server(Listener(str(gateway.public_port)), (*first, *public), "", (general,), connections)
    ]
    if tls is not None:
        listener = Listener(str(gateway.https_port), tls)
        servers.append(Server(listener, public, "", (general,), connections, (HSTS,)))
    internal = tuple(_internal_locations(topology, to))
    comment = "Service-to-service calls: no rate limits, no micro-cache."
    servers.append(Server(Listener(internal_address), internal, comment))
    return tuple(servers)


def _service_upstream(topology: Topology, service: Service, excluded: frozenset[str]) -> Upstream:
    indexes = range(1, service.instances + 1)
    kept = [i for i in indexes if instance_name(service.name, i) not in excluded]
    servers = [
        UpstreamServer(f"127.0.0.1:{service.instance_port(i)}", PASSIVE_HEALTH)
        for i in kept or indexes
    ]
    if service.instances == 0:
        # An upstream needs a server; a scaled-to-zero service answers 502 -> problem+json.
        servers.append(UpstreamServer("127.0.0.1:9", "down"))
    gateway = topology.gateway
    return Upstream(
        service.name,
        tuple(servers),
        gateway.upstream_keepalive,
        gateway.upstream_keepalive_timeout,
        balancing="least_conn",
        shared_zone=True,
    )


def _bench(topology: Topology) -> tuple[tuple[Upstream, ...], tuple[Location, ...]]:
    """`/bench/ceiling` (nginx alone) and `/bench/floor` (a bare app, kept alive like every
    service's upstream): the references of `shopfleet bench`, in its profile only."""
    gateway = topology.gateway
    if gateway.bench is None:
        return (), ()
    floor = UpstreamServer(f"127.0.0.1:{gateway.bench.floor_port}")
    upstream = Upstream(
        "bench_floor", (floor,), gateway.upstream_keepalive, gateway.upstream_keepalive_timeout
    )
    locations = (
        Location("= /bench/ceiling", Respond(payload_json(), content_type="application/json")),
        Location("= /bench/floor", Proxy("bench_floor")),
    )
    return (upstream,), locations


def local_gateway(
    topology: Topology,
    *,
    comments: tuple[str, ...] = (),
    worker_user: str | None = None,
    excluded: frozenset[str] = frozenset(),
) -> GatewayModel:
    """The one-machine gateway (supervisord and PM2): an upstream of loopback ports per
    service, without the `excluded` instances (a service never loses its last one)."""
    gateway = topology.gateway
    bench_upstreams, bench_locations = _bench(topology)
    tls = Tls(gateway.tls_certificate, gateway.tls_certificate_key) if gateway.tls else None
    servers = _servers(
        topology,
        lambda service, uri: Proxy(service.name, uri),
        internal_address=f"{gateway.internal_host}:{gateway.internal_port}",
        assets_by_name=False,
        first=bench_locations,
        tls=tls,
    )
    upstreams = tuple(_service_upstream(topology, s, excluded) for s in topology.ordered_services())
    return GatewayModel(
        comments=comments,
        files=Files(
            pid="nginx.pid",
            error_log=f"{LOCAL_LOG_DIR}/nginx-error.log",
            access_log=f"{LOCAL_LOG_DIR}/nginx-access.log shopfleet buffer=64k flush=1s",
            temp=tuple((kind, f"{kind}_temp") for kind in TEMP_KINDS),
        ),
        client_max_body_size=gateway.client_max_body_size,
        proxy_read_timeout=gateway.proxy_read_timeout,
        zones=_zones(topology),
        micro_cache=MicroCache("micro_cache", gateway.micro_cache_seconds),
        servers=servers,
        upstreams=(*upstreams, *bench_upstreams),
        worker_user=worker_user,
        trusted_proxies=LOCAL_PROXIES,
    )


def compose_gateway(topology: Topology, *, comments: tuple[str, ...] = ()) -> GatewayModel:
    """The Compose gateway container: replicas come and go (`--scale products=5`,
    restarts), so every route names its service and nginx resolves it per request through
    the container's DNS (`resolver`, written by the image's entrypoint), spreading requests
    over every address it returns."""
    gateway = topology.gateway
    servers = _servers(
        topology,
        lambda service, uri: Proxy(f"{service.name}:{service.port}", uri, resolve=True),
        internal_address=str(gateway.internal_port),
        assets_by_name=True,
    )
    return GatewayModel(
        comments=comments,
        files=Files(
            pid=f"{COMPOSE_STATE}/nginx.pid",
            error_log="/dev/stderr",
            access_log="/dev/stdout shopfleet",
            temp=tuple((kind, f"{COMPOSE_STATE}/{kind}") for kind in TEMP_KINDS),
        ),
        client_max_body_size=gateway.client_max_body_size,
        proxy_read_timeout=gateway.proxy_read_timeout,
        zones=_zones(topology),
        micro_cache=MicroCache(f"{COMPOSE_STATE}/micro_cache", gateway.micro_cache_seconds),
        servers=servers,
        resolver_include=f"{COMPOSE_STATE}/resolver.conf",
        trusted_proxies=(topology.networks.compose_subnet,),
    )
