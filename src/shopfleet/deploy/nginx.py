"""The nginx gateway config, rendered from the topology.

Every path in the file is relative to nginx's prefix (`nginx -p var/run/nginx/`), so the
committed render holds no machine paths and a non-root user can run it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shopfleet.bench.gateway import bench_locations, bench_upstream
from shopfleet.deploy.gateway_policy import (
    error_pages,
    gzip_settings,
    not_found,
    problem,
    public_location,
    response_headers,
)
from shopfleet.deploy.topology import Gateway, Topology

NGINX = "/usr/sbin/nginx"
COMMITTED_PATH = "deploy/local/nginx.conf"
# Relative to the prefix var/run/nginx/: logs land in var/log/ with the instances' logs.
LOG_DIR = "../../log"
MICRO_CACHED = ("products", "categories")
# Passive health, chosen by measurement (docs/deployment.md, tests/e2e/test_gateway.py):
# no instance is ever marked down. A refused connect costs microseconds on loopback and is
# retried on the next instance at once (proxy_next_upstream), whereas any "down" window
# (fail_timeout) outlives the restart it was caused by: a sibling restarting inside it
# left no instance, and nginx answered 502 while every instance was healthy again.
PASSIVE_HEALTH = "max_fails=0"
AUTH_LIMITED = ("/v1/auth/login", "/v1/auth/register")
MODERN_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)


def _block(head: str, lines: Iterable[str]) -> list[str]:
    """`head { ... }` with the inner lines indented one level."""
    return [f"{head} {{", *(f"    {line}" if line else "" for line in lines), "}"]


def instance_name(service: str, index: int) -> str:
    """The name of an instance everywhere: supervisor program, X-Instance, logs."""
    return f"{service}-{index}"


def _upstreams(topology: Topology, excluded: frozenset[str]) -> list[str]:
    gateway = topology.gateway
    out: list[str] = []
    for service in topology.ordered_services():
        # Shared by the workers: one worker's failed connect spares the others the retry.
        lines = ["least_conn;", f"zone upstream_{service.name} 64k;"]
        indexes = range(1, service.instances + 1)
        kept = [i for i in indexes if instance_name(service.name, i) not in excluded]
        for index in kept or indexes:
            port = service.instance_port(index)
            lines.append(f"server 127.0.0.1:{port} {PASSIVE_HEALTH};")
        if service.instances == 0:
            # An upstream needs a server; a scaled-to-zero service answers 502 -> problem+json.
            lines.append("server 127.0.0.1:9 down;")
        lines += [
            f"keepalive {gateway.upstream_keepalive};",
            # Below uvicorn's timeout_keep_alive (75 s): nginx always closes idle first.
            f"keepalive_timeout {gateway.upstream_keepalive_timeout}s;",
            "keepalive_requests 10000;",
        ]
        out += [*_block(f"upstream {service.name}", lines), ""]
    return out


def _http_settings(topology: Topology) -> list[str]:
    gateway = topology.gateway
    return [
        "default_type application/json;",
        "server_tokens off;",
        "sendfile on;",
        "tcp_nopush on;",
        "tcp_nodelay on;",
        "keepalive_timeout 65s;",
        "keepalive_requests 10000;",
        f"client_max_body_size {gateway.client_max_body_size};",
        # Bodies up to the limit stay in memory; no temp file per POST.
        f"client_body_buffer_size {gateway.client_max_body_size};",
        "client_body_temp_path client_body_temp;",
        "proxy_temp_path proxy_temp;",
        "fastcgi_temp_path fastcgi_temp;",
        "uwsgi_temp_path uwsgi_temp;",
        "scgi_temp_path scgi_temp;",
        "",
        'log_format shopfleet escape=json \'{"time":"$time_iso8601","client":'
        '"$remote_addr","request_id":"$shopfleet_request_id","method":"$request_method",'
        '"uri":"$request_uri","status":$status,"bytes":$body_bytes_sent,'
        '"duration":$request_time,"upstream":"$upstream_addr",'
        '"upstream_status":"$upstream_status","upstream_time":"$upstream_response_time",'
        '"cache":"$upstream_cache_status"}\';',
        f"access_log {LOG_DIR}/nginx-access.log shopfleet buffer=64k flush=1s;",
        "",
        "# The caller's request id when it is a sane token (as the services judge it),",
        "# otherwise nginx's own.",
        *request_header_maps(),
        "",
        *gzip_settings(),
        "",
        *proxy_defaults(gateway, keepalive_upstreams=True),
        "proxy_buffer_size 16k;",
        "proxy_buffers 32 16k;",
        "proxy_busy_buffers_size 64k;",
        "",
        *rate_limit_zones(gateway),
        "limit_req_log_level warn;",
        "limit_conn_log_level warn;",
        "",
        "proxy_cache_path micro_cache levels=1:2 keys_zone=micro:10m max_size=256m",
        "                 inactive=60s use_temp_path=off;",
    ]


def proxy_defaults(gateway: Gateway, *, keepalive_upstreams: bool) -> list[str]:
    """How every gateway (local, PM2, Compose) proxies: headers, timeouts, retries."""
    return [
        "# The gateway compresses; instances never spend CPU on gzip behind it.",
        'proxy_set_header Accept-Encoding "";',
        "proxy_http_version 1.1;",
        # Keep-alive to upstream blocks needs the client's Connection header dropped.
        *(['proxy_set_header Connection "";'] if keepalive_upstreams else []),
        "proxy_set_header Host $host;",
        "# Overwritten, never appended: a client cannot forge its address.",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Request-ID $shopfleet_request_id;",
        "# A live instance accepts in microseconds; an address that does not answer (a",
        "# container being replaced) is given up quickly for the next one.",
        "proxy_connect_timeout 1s;",
        f"proxy_send_timeout {gateway.proxy_read_timeout}s;",
        "# Above the instances' 30 s request timeout, so their own answer reaches the client.",
        f"proxy_read_timeout {gateway.proxy_read_timeout}s;",
        "# Another instance takes the request after a connect error or timeout, and a GET",
        "# (idempotent) also after a 502/503 (a draining or failing instance). POST and",
        "# PATCH go to another instance only when the first never received them.",
        "proxy_next_upstream error timeout http_502 http_503;",
        "# Every instance at most once, within the time a client would still wait.",
        "proxy_next_upstream_tries 0;",
        "proxy_next_upstream_timeout 10s;",
    ]


def rate_limit_zones(gateway: Gateway) -> list[str]:
    """The per-address limit_req/limit_conn zones, answering 429."""
    limits = gateway.rate_limits
    return [
        f"limit_req_zone $binary_remote_addr zone=general:10m rate={limits.general.rate}r/s;",
        f"limit_req_zone $binary_remote_addr zone=auth:10m rate={limits.auth.rate}r/s;",
        f"limit_req_zone $binary_remote_addr zone=api:10m rate={limits.api.rate}r/s;",
        "limit_conn_zone $binary_remote_addr zone=per_client:10m;",
        "limit_req_status 429;",
        "limit_conn_status 429;",
    ]


def request_header_maps() -> list[str]:
    """http-level maps: `$shopfleet_request_id` (the caller's id when the services would
    accept it) and the rate-limit counters of a fresh upstream answer (empty when the
    answer came from the micro-cache, whose stored headers nginx would otherwise replay)."""
    lines = _block(
        "map $http_x_request_id $shopfleet_request_id",
        ["default $request_id;", '"~^[A-Za-z0-9._:-]{1,128}$" $http_x_request_id;'],
    )
    for name in _PER_REQUEST_HEADERS[1:]:
        variable = name.lower().replace("-", "_")
        # Exact values (a hash lookup on every hit), not a regex over the status.
        lines += _block(
            f"map $upstream_cache_status $shopfleet_{variable}",
            [f"default $upstream_http_{variable};", 'HIT "";', 'STALE "";', 'UPDATING "";'],
        )
    return lines


_PER_REQUEST_HEADERS = ("X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def micro_cache(seconds: int) -> list[str]:
    """The micro-cache directives of a location (local, PM2 and Compose gateways)."""
    return [
        "proxy_cache micro;",
        'proxy_cache_key "$request_method$host$request_uri";',
        # nginx counts an entry's age in whole seconds and keeps it through its last
        # second, so `valid Ns` lives up to N+1 s: render one less than the promise.
        f"proxy_cache_valid 200 {seconds - 1}s;",
        "# Signed-in requests never read from or write to the shared cache.",
        "proxy_cache_bypass $http_authorization;",
        "proxy_no_cache $http_authorization;",
        "# The window is the gateway's: upstream cache headers must not stretch it.",
        "proxy_ignore_headers Cache-Control Expires X-Accel-Expires;",
        "proxy_cache_lock on;",
        "proxy_cache_lock_timeout 5s;",
        "proxy_cache_use_stale updating error timeout http_502 http_503 http_504;",
        "add_header X-Cache-Status $upstream_cache_status always;",
        "# A cached answer must not replay the request id and rate-limit counters of the",
        "# request that filled it: hide them and add this request's own (the counters only",
        "# on a fresh answer: add_header skips an empty value).",
        *(f"proxy_hide_header {name};" for name in _PER_REQUEST_HEADERS),
        "add_header X-Request-ID $shopfleet_request_id always;",
        *(
            f"add_header {name} $shopfleet_{name.lower().replace('-', '_')} always;"
            for name in _PER_REQUEST_HEADERS[1:]
        ),
    ]


def _public_locations(topology: Topology, extra_headers: Mapping[str, str]) -> list[str]:
    """Locations of the public listeners (HTTP and HTTPS)."""
    gateway = topology.gateway
    headers = response_headers(extra_headers)
    out: list[str] = []
    for path in AUTH_LIMITED:
        lines = public_location(gateway, api=True, auth=True)
        out += _block(f"location = {path}", [*lines, *headers, "proxy_pass http://auth;"])
    for service in topology.ordered_services():
        lines = [*public_location(gateway, api=True), *headers]
        if service.name in MICRO_CACHED:
            lines += micro_cache(gateway.micro_cache_seconds)
        out += _block(
            f"location /v1/{service.name}", [*lines, f"proxy_pass http://{service.name};"]
        )
    for service in topology.ordered_services():
        name = service.name
        docs = [*public_location(gateway, api=False), *headers]
        out += _block(f"location = /docs/{name}", [f"return 301 /docs/{name}/;"])
        out += _block(f"location = /docs/{name}/", [*docs, f"proxy_pass http://{name}/docs/;"])
        out += _block(
            f"location = /docs/{name}/openapi.json",
            [*docs, f"proxy_pass http://{name}/openapi.json;"],
        )
        # Swagger UI's assets, served by the instance itself (no CDN).
        out += _block(
            f"location /docs/{name}/assets/",
            [*docs, f"proxy_pass http://{name}/docs/assets/;"],
        )
    # Operational routes exist only on the internal listener.
    for path in ("/internal/", "/metrics", "/health", "/nginx/"):
        out += _block(f"location ^~ {path}", not_found(extra_headers))
    out += _block("location /", not_found(extra_headers))
    return out


def _connection_limit(topology: Topology) -> int:
    # nginx caps limit_conn below 65536; a higher topology value means "unlimited".
    return min(topology.gateway.rate_limits.connections_per_client, 65535)


def _public_server(topology: Topology) -> list[str]:
    gateway = topology.gateway
    limits = gateway.rate_limits
    common = [
        f"limit_req zone=general burst={limits.general.burst} nodelay;",
        f"limit_conn per_client {_connection_limit(topology)};",
        "",
        *error_pages(),
        *bench_locations(topology.gateway),
        *_public_locations(topology, {}),
    ]
    out = _block("server", [f"listen {gateway.public_port} backlog=4096;", *common])
    if gateway.tls:
        hsts = {"Strict-Transport-Security": '"max-age=31536000"'}
        tls = [
            f"listen {gateway.https_port} ssl http2 backlog=4096;",
            f"ssl_certificate {gateway.tls_certificate};",
            f"ssl_certificate_key {gateway.tls_certificate_key};",
            "ssl_protocols TLSv1.2 TLSv1.3;",
            f"ssl_ciphers {MODERN_CIPHERS};",
            "ssl_prefer_server_ciphers off;",
            "ssl_session_cache shared:TLS:10m;",
            "ssl_session_timeout 1d;",
            "ssl_session_tickets off;",
            f"limit_req zone=general burst={limits.general.burst} nodelay;",
            f"limit_conn per_client {_connection_limit(topology)};",
            "",
            *error_pages(hsts),
            *_public_locations(topology, hsts),
        ]
        out += ["", *_block("server", tls)]
    return out


def _internal_server(topology: Topology) -> list[str]:
    gateway = topology.gateway
    lines = [
        f"listen {gateway.internal_host}:{gateway.internal_port} backlog=4096;",
        "# Service-to-service calls: no rate limits, no micro-cache.",
        *error_pages(),
    ]
    for service in topology.ordered_services():
        for prefix in ("/internal", "/v1"):
            lines += _block(
                f"location {prefix}/{service.name}", [f"proxy_pass http://{service.name};"]
            )
    lines += _block("location = /nginx/health", ['return 200 \'{"status":"ok"}\';'])
    lines += _block("location = /nginx/status", ["stub_status;"])
    lines += _block(
        "location /",
        [
            "default_type application/problem+json;",
            "add_header X-Request-ID $shopfleet_request_id always;",
            f"return 404 {problem(404, 'Not Found', 'no such route')};",
        ],
    )
    return _block("server", lines)


def render_nginx(
    topology: Topology,
    *,
    worker_user: str | None = None,
    excluded: frozenset[str] = frozenset(),
) -> str:
    """The whole nginx.conf for a topology (its current instance counts).

    `worker_user`: when the master runs as root, keep the workers under this user (they
    must write the micro-cache under var/, which may sit in a private directory).
    `excluded`: instances taken out of the gateway (being stopped or restarted); a service
    never loses its last instance this way.
    """
    user = [f"user {worker_user};"] if worker_user else []
    header = [
        f"# Rendered by `shopfleet render` from shopfleet.toml (profile {topology.profile}).",
        "# Do not edit: change the topology and render again.",
        '# Run from the repository root: nginx -p var/run/nginx/ -c "$PWD/deploy/local/nginx.conf"',
        "# (`shopfleet up` renders its own copy into var/run/nginx/ with the live scale).",
        "daemon off;",
        *user,
        "worker_processes auto;",
        # Two descriptors per proxied request; above the usual soft limit of 1024.
        "worker_rlimit_nofile 8192;",
        "pid nginx.pid;",
        f"error_log {LOG_DIR}/nginx-error.log warn;",
        "",
        *_block("events", ["worker_connections 4096;", "multi_accept on;"]),
        "",
    ]
    http = [
        *_http_settings(topology),
        "",
        *_upstreams(topology, excluded),
        *bench_upstream(topology.gateway),
        *_public_server(topology),
        "",
        *_internal_server(topology),
    ]
    return "\n".join([*header, *_block("http", http)]) + "\n"


def render_committed(topology: Topology) -> dict[str, str]:
    return {COMMITTED_PATH: render_nginx(topology)}
