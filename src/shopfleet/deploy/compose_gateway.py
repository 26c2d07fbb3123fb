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

import json
from collections.abc import Iterable

from shopfleet.deploy.nginx import (
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


def _problem(status: int, title: str, detail: str) -> str:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return "'" + json.dumps(body, separators=(",", ":")) + "'"


def _block(head: str, lines: Iterable[str]) -> list[str]:
    return [f"{head} {{", *(f"    {line}" if line else "" for line in lines), "}"]


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
        "gzip on;",
        "gzip_min_length 1024;",
        "gzip_comp_level 5;",
        "gzip_proxied any;",
        "gzip_vary on;",
        "gzip_types application/json application/problem+json;",
        *proxy_defaults(gateway, keepalive_upstreams=False),
        "",
        *rate_limit_zones(gateway),
        "",
        f"proxy_cache_path {TMP}/micro_cache levels=1:2 keys_zone=micro:10m max_size=256m",
        "                 inactive=60s use_temp_path=off;",
    ]


def _error_pages() -> list[str]:
    pages = (
        (413, "@too_large", "Content Too Large", "the request body exceeds the limit"),
        (429, "@too_many_requests", "Too Many Requests", "rate limit exceeded at the gateway"),
        (502, "@bad_gateway", "Bad Gateway", "no instance of the service answered"),
        (504, "@gateway_timeout", "Gateway Timeout", "the service did not answer in time"),
    )
    out = [f"error_page {status} = {name};" for status, name, _, _ in pages]
    for status, name, title, detail in pages:
        lines = [
            "default_type application/problem+json;",
            "add_header X-Request-ID $shopfleet_request_id always;",
        ]
        if status in (429, 502, 504):
            lines.append("add_header Retry-After 1 always;")
        lines.append(f"return {status} {_problem(status, title, detail)};")
        out += _block(f"location {name}", lines)
    return out


def _public_server(topology: Topology) -> list[str]:
    gateway = topology.gateway
    limits = gateway.rate_limits
    api_limit = f"limit_req zone=api burst={limits.api.burst} nodelay;"
    auth = topology.services["auth"]
    lines = [
        f"listen {gateway.public_port} backlog=4096;",
        f"limit_req zone=general burst={limits.general.burst} nodelay;",
        # nginx refuses limits of 65536 and more (the bench profile asks for 100000).
        f"limit_conn per_client {min(limits.connections_per_client, 65535)};",
        *_error_pages(),
    ]
    for path in AUTH_LIMITED:
        auth_limit = f"limit_req zone=auth burst={limits.auth.burst} nodelay;"
        lines += _block(f"location = {path}", [auth_limit, api_limit, *_to(auth)])
    for service in topology.ordered_services():
        body = [api_limit]
        if service.name in MICRO_CACHED:
            body += micro_cache(gateway.micro_cache_seconds)
        lines += _block(f"location /v1/{service.name}", [*body, *_to(service)])
    for service in topology.ordered_services():
        name = service.name
        lines += _block(f"location = /docs/{name}", [f"return 301 /docs/{name}/;"])
        lines += _block(f"location = /docs/{name}/", _to(service, "/docs"))
        lines += _block(f"location = /docs/{name}/openapi.json", _to(service, "/openapi.json"))
    not_found = f"return 404 {_problem(404, 'Not Found', 'no such route')};"
    # Service-to-service and operational routes exist only on the internal listener.
    for path in ("/internal/", "/metrics", "/health", "/nginx/"):
        lines += _block(f"location ^~ {path}", [not_found])
    lines += _block("location /", [not_found])
    return _block("server", lines)


def _internal_server(topology: Topology) -> list[str]:
    """Service-to-service calls; reachable on the Compose network only (not published)."""
    lines = [f"listen {topology.gateway.internal_port} backlog=4096;", *_error_pages()]
    for service in topology.ordered_services():
        for prefix in ("/internal", "/v1"):
            lines += _block(f"location {prefix}/{service.name}", _to(service))
    lines += _block("location = /nginx/health", ['return 200 \'{"status":"ok"}\';'])
    lines += _block("location = /nginx/status", ["stub_status;"])
    lines += _block("location /", [f"return 404 {_problem(404, 'Not Found', 'no such route')};"])
    return _block("server", lines)


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
        *_block("events", ["worker_connections 4096;", "multi_accept on;"]),
    ]
    http = [
        *_http_settings(topology),
        "",
        *_public_server(topology),
        "",
        *_internal_server(topology),
    ]
    return "\n".join([*head, *_block("http", http)]) + "\n"
