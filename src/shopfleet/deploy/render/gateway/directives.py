"""The nginx directives every gateway applies the same way: proxying, compression, the
request id, the micro-cache, rate-limit zones and the gateway's own error answers.

nginx inherits `limit_req`, `add_header` and `proxy_hide_header` from the enclosing level
only when a location has none of its own, so a location that sets any repeats them
(gateway/nginx.py), rather than trusting the server level.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from shopfleet.deploy.render.gateway.model import LimitZone

# Headers every answer of the gateway carries (proxied, cached or made by nginx).
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"),)
# The instances' cache key is a debugging aid for operators, not for the public.
# X-Cache-Key is internal; nosniff the gateway adds itself (SECURITY_HEADERS), once.
PUBLIC_HIDDEN_HEADERS = ("X-Cache-Key", "X-Content-Type-Options")
REQUEST_ID_HEADER = "add_header X-Request-ID $shopfleet_request_id always;"
PER_REQUEST_HEADERS = ("X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")

# (status, location, title, detail): every error nginx itself may answer. Internal URIs,
# not named locations: nginx cannot redirect a request whose line it could not parse (400,
# 414) to a named location ("empty URI in redirect").
ERRORS = "/_gateway/errors"
GATEWAY_ERRORS = (
    (400, f"{ERRORS}/bad_request", "Bad Request", "the request could not be parsed"),
    (404, f"{ERRORS}/not_found", "Not Found", "no such route"),
    (405, f"{ERRORS}/method_not_allowed", "Method Not Allowed", "the method is not allowed here"),
    (408, f"{ERRORS}/request_timeout", "Request Timeout", "the request was not received in time"),
    (413, f"{ERRORS}/too_large", "Content Too Large", "the request body exceeds the limit"),
    (414, f"{ERRORS}/uri_too_long", "URI Too Long", "the request target exceeds the limit"),
    (429, f"{ERRORS}/too_many_requests", "Too Many Requests", "rate limit exceeded at the gateway"),
    (494, f"{ERRORS}/headers_too_large", "Bad Request", "a request header is too large"),
    (500, f"{ERRORS}/internal_error", "Internal Server Error", "the gateway failed"),
    (502, f"{ERRORS}/bad_gateway", "Bad Gateway", "no instance of the service answered"),
    (503, f"{ERRORS}/unavailable", "Service Unavailable", "the gateway cannot serve this now"),
    (504, f"{ERRORS}/gateway_timeout", "Gateway Timeout", "the service did not answer in time"),
)
RETRY_AFTER = (429, 502, 503, 504)


def block(head: str, lines: Iterable[str]) -> list[str]:
    """`head { ... }` with the inner lines indented one level."""
    return [f"{head} {{", *(f"    {line}" if line else "" for line in lines), "}"]


def problem(status: int, title: str, detail: str) -> str:
    """An RFC 9457 body as a single-quoted nginx string."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return "'" + json.dumps(body, separators=(",", ":")) + "'"


def add_headers(headers: Iterable[tuple[str, str]]) -> list[str]:
    return [f"add_header {name} {value} always;" for name, value in headers]


def request_header_maps() -> list[str]:
    """http-level maps: `$shopfleet_request_id` (the caller's id when the services would
    accept it) and the rate-limit counters of a fresh upstream answer (empty when the
    answer came from the micro-cache, whose stored headers nginx would otherwise replay)."""
    lines = block(
        "map $http_x_request_id $shopfleet_request_id",
        ["default $request_id;", '"~^[A-Za-z0-9._:-]{1,128}$" $http_x_request_id;'],
    )
    for name in PER_REQUEST_HEADERS[1:]:
        variable = name.lower().replace("-", "_")
        lines += block(
            f"map $upstream_cache_status $shopfleet_{variable}",
            # Exact values (a hash lookup on every hit), not a regex over the status.
            [f"default $upstream_http_{variable};", 'HIT "";', 'STALE "";', 'UPDATING "";'],
        )
    return lines


def gzip_settings() -> list[str]:
    """http-level compression, and `$shopfleet_no_gzip`: 1 when the client sent
    `x-no-compression` at all (as the instances read it), whatever its value."""
    return [
        *block("map $http_x_no_compression $shopfleet_no_gzip", ["default 1;", '"" 0;']),
        "gzip on;",
        "gzip_min_length 1024;",
        "gzip_comp_level 5;",
        "gzip_proxied any;",
        "gzip_vary on;",
        "gzip_types application/json application/problem+json;",
    ]


def proxy_defaults(proxy_read_timeout: int, *, keepalive_upstreams: bool) -> list[str]:
    """How every gateway proxies: headers, timeouts, retries."""
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
        f"proxy_send_timeout {proxy_read_timeout}s;",
        "# Above the instances' 30 s request timeout, so their own answer reaches the client.",
        f"proxy_read_timeout {proxy_read_timeout}s;",
        "# Another instance takes the request after a connect error or timeout, and a GET",
        "# (idempotent) also after a 502/503 (a draining or failing instance). POST and",
        "# PATCH go to another instance only when the first never received them.",
        "proxy_next_upstream error timeout http_502 http_503;",
        "# Every instance at most once, within the time a client would still wait.",
        "proxy_next_upstream_tries 0;",
        "proxy_next_upstream_timeout 10s;",
    ]


def rate_limit_zones(zones: Iterable[LimitZone]) -> list[str]:
    """The per-address limit_req/limit_conn zones, answering 429."""
    return [
        *(
            f"limit_req_zone $binary_remote_addr zone={zone.name}:10m rate={zone.rate}r/s;"
            for zone in zones
        ),
        "limit_conn_zone $binary_remote_addr zone=per_client:10m;",
        "limit_req_status 429;",
        "limit_conn_status 429;",
    ]


def micro_cache(seconds: int) -> list[str]:
    """The micro-cache directives of a location."""
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
        "# A hit reads its entry's file through descriptors kept open between requests, not",
        "# open/fstat/close each time (nginx checks the entry's inode, so a refreshed entry,",
        "# a new file, is opened anew); and entries are small: a read and one writev send",
        "# headers and body, where sendfile costs a sendfile and two TCP_CORK setsockopts.",
        "open_file_cache max=4096 inactive=10s;",
        "open_file_cache_valid 2s;",
        "sendfile off;",
        "add_header X-Cache-Status $upstream_cache_status always;",
        "# A cached answer must not replay the request id and rate-limit counters of the",
        "# request that filled it: hide them and add this request's own (the counters only",
        "# on a fresh answer: add_header skips an empty value).",
        *(f"proxy_hide_header {name};" for name in PER_REQUEST_HEADERS),
        REQUEST_ID_HEADER,
        *(
            f"add_header {name} $shopfleet_{name.lower().replace('-', '_')} always;"
            for name in PER_REQUEST_HEADERS[1:]
        ),
    ]


def error_pages(headers: Iterable[tuple[str, str]]) -> list[str]:
    """`error_page` for every error nginx makes, each answered by an internal location with
    a problem+json body, this request's X-Request-ID (the one passed to instances) and the
    security headers."""
    added = [*add_headers([*SECURITY_HEADERS, *headers]), REQUEST_ID_HEADER]
    out = [f"error_page {status} = {name};" for status, name, _, _ in GATEWAY_ERRORS]
    for status, name, title, detail in GATEWAY_ERRORS:
        lines = ["internal;", "default_type application/problem+json;", *added]
        if status in RETRY_AFTER:
            lines.append("add_header Retry-After 1 always;")
        # 494 is nginx's internal code for "header too large"; clients see 400 from nginx.
        code = 400 if status == 494 else status
        lines.append(f"return {code} {problem(code, title, detail)};")
        out += block(f"location = {name}", lines)
    return out
