"""One renderer from a gateway model to nginx.conf, for every deployment."""

from __future__ import annotations

from shopfleet.deploy.render.gateway.directives import (
    PUBLIC_HIDDEN_HEADERS,
    REQUEST_ID_HEADER,
    SECURITY_HEADERS,
    add_headers,
    block,
    error_pages,
    gzip_settings,
    micro_cache,
    problem,
    proxy_defaults,
    rate_limit_zones,
    request_header_maps,
)
from shopfleet.deploy.render.gateway.model import (
    GatewayModel,
    LimitZone,
    Location,
    Problem,
    Proxy,
    Redirect,
    Respond,
    Server,
    StubStatus,
    Upstream,
)

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
# Requests per kept-alive connection, both from clients and to instances.
KEEPALIVE_REQUESTS = 10000
LOG_FORMAT = (
    'log_format shopfleet escape=json \'{"time":"$time_iso8601","client":'
    '"$remote_addr","request_id":"$shopfleet_request_id","method":"$request_method",'
    '"uri":"$request_uri","status":$status,"bytes":$body_bytes_sent,'
    '"duration":$request_time,"upstream":"$upstream_addr",'
    '"upstream_status":"$upstream_status","upstream_time":"$upstream_response_time",'
    '"cache":"$upstream_cache_status"}\';'
)


def _limit_lines(zones: tuple[LimitZone, ...]) -> list[str]:
    return [f"limit_req zone={zone.name} burst={zone.burst} nodelay;" for zone in zones]


def _action(location: Location, public_headers: list[str]) -> list[str]:
    action = location.action
    if isinstance(action, Proxy):
        if action.resolve:
            # A variable target makes nginx resolve the name per request (every replica).
            return [f"set $upstream {action.target};", f"proxy_pass http://$upstream{action.uri};"]
        return [f"proxy_pass http://{action.target}{action.uri};"]
    if isinstance(action, Redirect):
        return [f"return {action.status} {action.to};"]
    if isinstance(action, Problem):
        return [
            "default_type application/problem+json;",
            *(public_headers if location.public else []),
            REQUEST_ID_HEADER,
            f"return {action.status} {problem(action.status, action.title, action.detail)};",
        ]
    if isinstance(action, Respond):
        content_type = [f"default_type {action.content_type};"] if action.content_type else []
        return [*content_type, f"return {action.status} '{action.body}';"]
    if isinstance(action, StubStatus):
        return ["stub_status;"]
    raise TypeError(f"unknown gateway action {action!r}")


def _location(model: GatewayModel, server: Server, location: Location) -> list[str]:
    public_headers = add_headers([*SECURITY_HEADERS, *server.headers])
    lines = _limit_lines(location.limits)
    if location.public and not isinstance(location.action, Problem):
        # `gzip` is not variable-driven; "if in location" is its documented context. The if
        # block only switches gzip off and inherits everything else of the location.
        lines += block("if ($shopfleet_no_gzip)", ["gzip off;"])
        lines += [f"proxy_hide_header {name};" for name in PUBLIC_HIDDEN_HEADERS]
        lines += public_headers
    if location.micro_cache:
        lines += micro_cache(model.micro_cache.seconds)
    return block(f"location {location.match}", [*lines, *_action(location, public_headers)])


def _server(model: GatewayModel, server: Server) -> list[str]:
    listener = server.listener
    ssl = " ssl http2" if listener.tls else ""
    lines = [f"listen {listener.address}{ssl} backlog=4096;"]
    if listener.tls:
        lines += [
            f"ssl_certificate {listener.tls.certificate};",
            f"ssl_certificate_key {listener.tls.certificate_key};",
            "ssl_protocols TLSv1.2 TLSv1.3;",
            f"ssl_ciphers {MODERN_CIPHERS};",
            "ssl_prefer_server_ciphers off;",
            "ssl_session_cache shared:TLS:10m;",
            "ssl_session_timeout 1d;",
            "ssl_session_tickets off;",
        ]
    if server.comment:
        lines.append(f"# {server.comment}")
    lines += _limit_lines(server.limits)
    if server.connections_per_client is not None:
        lines.append(f"limit_conn per_client {server.connections_per_client};")
    if server.limits or server.connections_per_client is not None:
        lines.append("")
    lines += error_pages(server.headers)
    for location in server.locations:
        lines += _location(model, server, location)
    return block("server", lines)


def _upstream(upstream: Upstream) -> list[str]:
    lines = [f"{upstream.balancing};"] if upstream.balancing else []
    if upstream.shared_zone:
        # Shared by the workers: one worker's failed connect spares the others the retry.
        lines.append(f"zone upstream_{upstream.name} 64k;")
    for server in upstream.servers:
        parameters = f" {server.parameters}" if server.parameters else ""
        lines.append(f"server {server.address}{parameters};")
    lines += [
        f"keepalive {upstream.keepalive};",
        # Below uvicorn's timeout_keep_alive (75 s): nginx always closes idle first.
        f"keepalive_timeout {upstream.keepalive_timeout}s;",
        f"keepalive_requests {KEEPALIVE_REQUESTS};",
    ]
    return [*block(f"upstream {upstream.name}", lines), ""]


def _http_settings(model: GatewayModel) -> list[str]:
    resolver = (
        [f"include {model.resolver_include};", "resolver_timeout 2s;"]
        if model.resolver_include
        else []
    )
    cache = model.micro_cache
    return [
        *resolver,
        "default_type application/json;",
        "server_tokens off;",
        "sendfile on;",
        "tcp_nopush on;",
        "tcp_nodelay on;",
        "keepalive_timeout 65s;",
        f"keepalive_requests {KEEPALIVE_REQUESTS};",
        f"client_max_body_size {model.client_max_body_size};",
        # Bodies up to the limit stay in memory; no temp file per POST.
        f"client_body_buffer_size {model.client_max_body_size};",
        *(f"{kind}_temp_path {path};" for kind, path in model.files.temp),
        "",
        LOG_FORMAT,
        f"access_log {model.files.access_log};",
        "",
        "# The caller's request id when it is a sane token (as the services judge it),",
        "# otherwise nginx's own.",
        *request_header_maps(),
        "",
        *gzip_settings(),
        "",
        *proxy_defaults(model.proxy_read_timeout, keepalive_upstreams=bool(model.upstreams)),
        "proxy_buffer_size 16k;",
        "proxy_buffers 32 16k;",
        "proxy_busy_buffers_size 64k;",
        "",
        *rate_limit_zones(model.zones),
        "limit_req_log_level warn;",
        "limit_conn_log_level warn;",
        "",
        f"proxy_cache_path {cache.path} levels=1:2 keys_zone=micro:10m max_size=256m",
        "                 inactive=60s use_temp_path=off;",
    ]


def render_nginx_conf(model: GatewayModel) -> str:
    """The whole nginx.conf of a gateway model."""
    user = [f"user {model.worker_user};"] if model.worker_user else []
    main = [
        *(f"# {line}" for line in model.comments),
        "daemon off;",
        *user,
        "worker_processes auto;",
        # Two descriptors per proxied request; above the usual soft limit of 1024.
        "worker_rlimit_nofile 8192;",
        f"pid {model.files.pid};",
        f"error_log {model.files.error_log} warn;",
        "",
        *block("events", ["worker_connections 4096;", "multi_accept on;"]),
        "",
    ]
    http = [*_http_settings(model), ""]
    for upstream in model.upstreams:
        http += _upstream(upstream)
    for index, server in enumerate(model.servers):
        http += [*([""] if index else []), *_server(model, server)]
    return "\n".join([*main, *block("http", http)]) + "\n"
