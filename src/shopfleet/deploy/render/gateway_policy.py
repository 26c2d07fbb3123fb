"""What every nginx gateway (local, PM2, Compose) applies the same way: response headers,
limits on every public location, compression and the gateway's own error answers.

nginx inherits `limit_req`, `add_header` and `proxy_hide_header` from the enclosing level
only when a location has none of its own, so these lines are repeated in every location
that sets any, rather than trusted to the server level.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from shopfleet.deploy.topology import Gateway

# Headers every answer of the gateway carries (proxied, cached or made by nginx).
SECURITY_HEADERS = ("add_header X-Content-Type-Options nosniff always;",)
# The instances' cache key is a debugging aid for operators, not for the public.
# X-Cache-Key is internal; nosniff the gateway adds itself (SECURITY_HEADERS), once.
PUBLIC_HIDDEN_HEADERS = ("X-Cache-Key", "X-Content-Type-Options")

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


def problem(status: int, title: str, detail: str) -> str:
    """An RFC 9457 body as a single-quoted nginx string."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return "'" + json.dumps(body, separators=(",", ":")) + "'"


def block(head: str, lines: Iterable[str]) -> list[str]:
    """`head { ... }` with the inner lines indented one level."""
    return [f"{head} {{", *(f"    {line}" if line else "" for line in lines), "}"]


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


def response_headers(extra: Mapping[str, str] = {}) -> list[str]:
    """The `add_header` lines of a public location (security headers + `extra`)."""
    return [*SECURITY_HEADERS, *(f"add_header {k} {v} always;" for k, v in extra.items())]


def public_location(gateway: Gateway, *, api: bool, auth: bool = False) -> list[str]:
    """What every proxying location of a public listener starts with: the `general` zone
    (plus `api` for /v1/ and `auth` for sign-in), the client's `x-no-compression` wish,
    and the internal headers kept from the public."""
    limits = gateway.rate_limits
    lines = [f"limit_req zone=general burst={limits.general.burst} nodelay;"]
    if api:
        lines.append(f"limit_req zone=api burst={limits.api.burst} nodelay;")
    if auth:
        lines.append(f"limit_req zone=auth burst={limits.auth.burst} nodelay;")
    # `gzip` is not variable-driven; "if in location" is its documented context. The if
    # block only switches gzip off and inherits everything else of the location.
    lines += block("if ($shopfleet_no_gzip)", ["gzip off;"])
    lines += [f"proxy_hide_header {name};" for name in PUBLIC_HIDDEN_HEADERS]
    return lines


def error_pages(extra_headers: Mapping[str, str] = {}) -> list[str]:
    """`error_page` for every error nginx makes, each answered by a named location with a
    problem+json body, this request's X-Request-ID (the one passed to instances) and the
    security headers."""
    headers = [
        *response_headers(extra_headers),
        "add_header X-Request-ID $shopfleet_request_id always;",
    ]
    out = [f"error_page {status} = {name};" for status, name, _, _ in GATEWAY_ERRORS]
    for status, name, title, detail in GATEWAY_ERRORS:
        lines = ["internal;", "default_type application/problem+json;", *headers]
        if status in RETRY_AFTER:
            lines.append("add_header Retry-After 1 always;")
        # 494 is nginx's internal code for "header too large"; clients see 400 from nginx.
        code = 400 if status == 494 else status
        lines.append(f"return {code} {problem(code, title, detail)};")
        out += block(f"location = {name}", lines)
    return out


def not_found(extra_headers: Mapping[str, str] = {}) -> list[str]:
    """The body of a location that exists only to say 404 (problem+json, request id)."""
    return [
        "default_type application/problem+json;",
        *response_headers(extra_headers),
        "add_header X-Request-ID $shopfleet_request_id always;",
        f"return 404 {problem(404, 'Not Found', 'no such route')};",
    ]
