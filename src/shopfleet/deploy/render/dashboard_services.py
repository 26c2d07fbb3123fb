"""The panels of shopfleet's own services: the overview and one dashboard per service.

A panel whose series only exist once something happened (5xx responses, open breakers)
adds `or ... * 0` so it shows zero instead of "no data".
"""

from __future__ import annotations

from shopfleet.deploy.render.dashboard_panels import (
    JOB,
    PanelSpec,
    latency,
    query,
    zero_when_absent,
)

CACHED = ("products", "categories")
RATE_LIMITED = ("products", "categories", "orders")
# The services each one calls (a breaker per target).
CALLS = {"users": ("auth",), "products": ("categories",), "orders": ("products",)}


def overview_panels() -> list[PanelSpec]:
    requests = f"sum by (service) (rate(http_requests_total{{{JOB}}}[1m]))"
    return [
        PanelSpec("Requests per second", "reqps", (query(requests, "{{service}}"),)),
        PanelSpec("Latency p50 / p95 / p99", "s", latency(JOB, "service")),
        PanelSpec(
            "5xx per second",
            "reqps",
            (
                query(
                    zero_when_absent(
                        f'sum by (service) (rate(http_requests_total{{{JOB},status=~"5.."}}[1m]))',
                        requests,
                    ),
                    "{{service}}",
                ),
            ),
        ),
        PanelSpec(
            "4xx per second",
            "reqps",
            (
                query(
                    zero_when_absent(
                        f'sum by (service) (rate(http_requests_total{{{JOB},status=~"4.."}}[1m]))',
                        requests,
                    ),
                    "{{service}}",
                ),
            ),
        ),
        PanelSpec(
            "Instances up",
            "short",
            (query(f"sum by (service) (up{{{JOB}}})", "{{service}}"),),
        ),
        PanelSpec(
            "CPU (cores)",
            "short",
            (
                query(
                    f"sum by (service) (rate(process_cpu_seconds_total{{{JOB}}}[1m]))",
                    "{{service}}",
                ),
            ),
        ),
        PanelSpec(
            "Resident memory",
            "bytes",
            (query(f"process_resident_memory_bytes{{{JOB}}}", "{{instance}}"),),
        ),
        PanelSpec(
            "Firing alerts",
            "short",
            (
                query(
                    'count by (alertname) (ALERTS{alertstate="firing"}) or vector(0)',
                    "{{alertname}}",
                ),
            ),
        ),
    ]


def service_panels(service: str) -> list[PanelSpec]:
    sel = f'{JOB},service="{service}"'
    by_instance = f"sum by (instance) (rate(http_requests_total{{{sel}}}[1m]))"
    panels = [
        PanelSpec(
            "Requests per second by instance", "reqps", (query(by_instance, "{{instance}}"),)
        ),
        PanelSpec(
            "Requests per second by route",
            "reqps",
            (query(f"sum by (route) (rate(http_requests_total{{{sel}}}[1m]))", "{{route}}"),),
        ),
        PanelSpec(
            "Responses by status",
            "reqps",
            (query(f"sum by (status) (rate(http_requests_total{{{sel}}}[1m]))", "{{status}}"),),
        ),
        PanelSpec("Latency p50 / p95 / p99", "s", latency(sel, "service")),
        PanelSpec("p99 by route", "s", (latency(sel, "route")[2],)),
        PanelSpec(
            "In-flight requests",
            "short",
            (query(f"sum by (instance) (http_requests_in_flight{{{sel}}})", "{{instance}}"),),
        ),
        PanelSpec(
            "CPU (cores)",
            "short",
            (query(f"rate(process_cpu_seconds_total{{{sel}}}[1m])", "{{instance}}"),),
        ),
        PanelSpec(
            "Resident memory",
            "bytes",
            (query(f"process_resident_memory_bytes{{{sel}}}", "{{instance}}"),),
        ),
        PanelSpec(
            "Database pool",
            "short",
            (
                query(f"db_pool_connections_in_use{{{sel}}}", "in use {{instance}}"),
                query(f"db_pool_size{{{sel}}}", "size {{instance}}"),
                query(f"db_pool_checkouts_waiting{{{sel}}}", "waiting {{instance}}"),
            ),
        ),
        PanelSpec(
            "Connection checkout p99",
            "s",
            (
                query(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(db_pool_checkout_seconds_bucket{{{sel}}}[5m])))",
                    "p99",
                ),
            ),
        ),
    ]
    statements = f"sum(rate(db_query_duration_seconds_count{{{sel}}}[5m]))"
    panels += [
        PanelSpec(
            "Database statement p99 by kind",
            "s",
            (
                query(
                    "histogram_quantile(0.99, sum by (kind, le) "
                    f"(rate(db_query_duration_seconds_bucket{{{sel}}}[1m])))",
                    "{{kind}}",
                ),
            ),
        ),
        PanelSpec(
            "Slow statements per second",
            "short",
            (
                query(
                    zero_when_absent(f"sum(rate(db_slow_queries_total{{{sel}}}[5m]))", statements),
                    "slow",
                ),
            ),
        ),
    ]
    if service in CACHED or service in RATE_LIMITED:
        panels.append(
            PanelSpec(
                "Redis round trip p99 by operation",
                "s",
                (
                    query(
                        "histogram_quantile(0.99, sum by (operation, le) "
                        f"(rate(redis_command_duration_seconds_bucket{{{sel}}}[1m])))",
                        "{{operation}}",
                    ),
                ),
            )
        )
    if service in CACHED:
        lookups = f"sum by (prefix) (rate(cache_requests_total{{{sel}}}[5m]))"
        hits = f'sum by (prefix) (rate(cache_requests_total{{{sel},result="hit"}}[5m]))'
        panels.append(
            PanelSpec(
                "Cache hit ratio",
                "percentunit",
                (query(f"{zero_when_absent(hits, lookups)} / {lookups}", "{{prefix}}"),),
            )
        )
    if service in RATE_LIMITED:
        panels.append(
            PanelSpec(
                "Rate limiter decisions per second",
                "reqps",
                (
                    query(
                        f"sum by (decision) (rate(rate_limit_decisions_total{{{sel}}}[1m]))",
                        "{{decision}}",
                    ),
                ),
            )
        )
    if service in CALLS:
        panels += [
            PanelSpec(
                "Circuit breakers (0 closed, 1 half-open, 2 open)",
                "short",
                (query(f"max by (target) (circuit_breaker_state{{{sel}}})", "{{target}}"),),
            ),
            PanelSpec(
                "Calls to other services",
                "reqps",
                (
                    query(
                        f"sum by (target, outcome) (rate(outbound_requests_total{{{sel}}}[1m]))",
                        "{{target}} {{outcome}}",
                    ),
                ),
            ),
        ]
    if service == "orders":
        panels.append(
            PanelSpec(
                "Orders",
                "short",
                (
                    query(f"sum(rate(orders_created_total{{{sel}}}[5m])) * 60", "created / min"),
                    query(
                        f"sum(rate(orders_rejected_stock_total{{{sel}}}[5m])) * 60",
                        "rejected for stock / min",
                    ),
                    query(
                        f"sum(rate(idempotent_replays_total{{{sel}}}[5m])) * 60", "replays / min"
                    ),
                ),
            )
        )
    return panels
