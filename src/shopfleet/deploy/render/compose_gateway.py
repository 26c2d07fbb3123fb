"""The nginx config of the Compose gateway container.

Replicas come and go (`--scale products=5`, restarts), so the config names services, not
addresses: every proxy_pass target is a variable, which makes nginx resolve the name per
request through the `resolver` (cached `valid=5s`) and spread requests over all the
addresses the engine's DNS returns. The resolver line is written at start by the image's
entrypoint from the container's /etc/resolv.conf (Docker and Podman use different DNS
servers). The policies mirror the local gateway: rate-limit zones, micro-cache for anonymous
product and category reads, retries only on connect errors and timeouts.
"""

from __future__ import annotations

from shopfleet.deploy.render.gateway_policy import (
    block,
    error_pages,
    gzip_settings,
    not_found,
    problem,
    public_location,
    response_headers,
)
from shopfleet.deploy.render.nginx import (
    micro_cache,
    proxy_defaults,
    rate_limit_zones,
    request_header_maps,
)
from shopfleet.deploy.topology import Service, Topology

COMMITTED_PATH = "deploy/compose/nginx.conf"
TMP = "/var/cache/shopfleet-gateway"
MICRO_CACHED = ("products", "categories")
AUTH_LIMITED = ("/v1/auth/login", "/v1/auth/register")


def _to(service: Service, uri: str = "") -> list[str]:
    """Proxy to every replica of a service, resolved per request."""
    return [f"set $upstream {service.name}:{service.port};", f"proxy_pass http://$upstream{uri};"]


def _http_settings(topology: Topology) -> list[str]:
    gateway = topology.gateway
    return [
        f"include {TMP}/resolver.conf;",
        "resolver_timeout 2s;",
        "default_type application/json;",
        "server_tokens off;",
        "tcp_nodelay on;",
        "keepalive_timeout 65s;",
        "keepalive_requests 10000;",
        f"client_max_body_size {gateway.client_max_body_size};",
        f"client_body_buffer_size {gateway.client_max_body_size};",
        *(f"{kind}_temp_path {TMP}/{kind};" for kind in ("client_body", "proxy", "fastcgi")),
        *(f"{kind}_temp_path {TMP}/{kind};" for kind in ("uwsgi", "scgi")),
        "",
        'log_format shopfleet escape=json \'{"time":"$time_iso8601","client":'
        '"$remote_addr","request_id":"$shopfleet_request_id","method":"$request_method",'
        '"uri":"$request_uri","status":$status,"bytes":$body_bytes_sent,'
        '"duration":$request_time,"upstream":"$upstream_addr",'
        '"upstream_status":"$upstream_status","upstream_time":"$upstream_response_time",'
        '"cache":"$upstream_cache_status"}\';',
        "access_log /dev/stdout shopfleet;",
        *request_header_maps(),
        "",
        *gzip_settings(),
        *proxy_defaults(gateway, keepalive_upstreams=False),
        "",
        *rate_limit_zones(gateway),
        "",
        f"proxy_cache_path {TMP}/micro_cache levels=1:2 keys_zone=micro:10m max_size=256m",
        "                 inactive=60s use_temp_path=off;",
    ]


def _public_server(topology: Topology) -> list[str]:
    gateway = topology.gateway
    limits = gateway.rate_limits
    auth = topology.services["auth"]
    headers = response_headers()
    lines = [
        f"listen {gateway.public_port} backlog=4096;",
        f"limit_req zone=general burst={limits.general.burst} nodelay;",
        # nginx refuses limits of 65536 and more (the bench profile asks for 100000).
        f"limit_conn per_client {min(limits.connections_per_client, 65535)};",
        *error_pages(),
    ]
    for path in AUTH_LIMITED:
        policy = public_location(gateway, api=True, auth=True)
        lines += block(f"location = {path}", [*policy, *headers, *_to(auth)])
    for service in topology.ordered_services():
        body = [*public_location(gateway, api=True), *headers]
        if service.name in MICRO_CACHED:
            body += micro_cache(gateway.micro_cache_seconds)
        lines += block(f"location /v1/{service.name}", [*body, *_to(service)])
    for service in topology.ordered_services():
        name = service.name
        docs = [*public_location(gateway, api=False), *headers]
        lines += block(f"location = /docs/{name}", [f"return 301 /docs/{name}/;"])
        lines += block(f"location = /docs/{name}/", [*docs, *_to(service, "/docs/")])
        lines += block(
            f"location = /docs/{name}/openapi.json", [*docs, *_to(service, "/openapi.json")]
        )
        # Swagger UI's assets, served by the instance itself (no CDN). A variable
        # proxy_pass sends its URI as written, so the file name is captured.
        lines += block(
            f"location ~ ^/docs/{name}/assets/([A-Za-z0-9._-]+)$",
            [*docs, *_to(service, "/docs/assets/$1")],
        )
    # Service-to-service and operational routes exist only on the internal listener.
    for path in ("/internal/", "/metrics", "/health", "/nginx/"):
        lines += block(f"location ^~ {path}", not_found())
    lines += block("location /", not_found())
    return block("server", lines)


def _internal_server(topology: Topology) -> list[str]:
    """Service-to-service calls; reachable on the Compose network only (not published)."""
    lines = [f"listen {topology.gateway.internal_port} backlog=4096;", *error_pages()]
    for service in topology.ordered_services():
        for prefix in ("/internal", "/v1"):
            lines += block(f"location {prefix}/{service.name}", _to(service))
    lines += block("location = /nginx/health", ['return 200 \'{"status":"ok"}\';'])
    lines += block("location = /nginx/status", ["stub_status;"])
    lines += block("location /", [f"return 404 {problem(404, 'Not Found', 'no such route')};"])
    return block("server", lines)


def render_gateway(topology: Topology) -> str:
    head = [
        f"# Rendered by `shopfleet render` from shopfleet.toml (profile {topology.profile}).",
        "# Do not edit: change the topology and render again.",
        "# The Compose gateway (mounted at /etc/shopfleet/nginx.conf); its entrypoint writes",
        f"# {TMP}/resolver.conf, the container's DNS server, before starting nginx.",
        "daemon off;",
        "worker_processes auto;",
        f"pid {TMP}/nginx.pid;",
        "error_log /dev/stderr warn;",
        *block("events", ["worker_connections 4096;", "multi_accept on;"]),
    ]
    http = [
        *_http_settings(topology),
        "",
        *_public_server(topology),
        "",
        *_internal_server(topology),
    ]
    return "\n".join([*head, *block("http", http)]) + "\n"
