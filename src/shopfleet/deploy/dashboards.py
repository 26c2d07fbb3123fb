"""Grafana dashboards as code (grafana-foundation-sdk), committed as JSON.

Each panel is a title, a unit and PromQL queries over the metrics the instances and the
standard exporters expose. A panel whose series only exist once something happened (5xx
responses, open breakers) adds `or ... * 0` so it shows zero instead of "no data".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from shopfleet.deploy.topology import Topology

DIRECTORY = "deploy/monitoring/dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
JOB = 'job="shopfleet"'
CACHED = ("products", "categories")
RATE_LIMITED = ("products", "categories", "orders")
# The services each one calls (a breaker per target).
CALLS = {"users": ("auth",), "products": ("categories",), "orders": ("products",)}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[Query, ...]


def _q(expr: str, legend: str) -> Query:
    return Query(expr, legend)


def _zero_when_absent(expr: str, baseline: str) -> str:
    """`expr`, or zero for every series of `baseline` where `expr` has none yet."""
    return f"({expr}) or ({baseline}) * 0"


def _latency(selector: str, by: str, window: str = "1m") -> tuple[Query, ...]:
    return tuple(
        _q(
            f"histogram_quantile({q}, sum by ({by}, le) "
            f"(rate(http_request_duration_seconds_bucket{{{selector}}}[{window}])))",
            f"p{round(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    )


def overview_panels() -> list[PanelSpec]:
    requests = f"sum by (service) (rate(http_requests_total{{{JOB}}}[1m]))"
    return [
        PanelSpec("Requests per second", "reqps", (_q(requests, "{{service}}"),)),
        PanelSpec("Latency p50 / p95 / p99", "s", _latency(JOB, "service")),
        PanelSpec(
            "5xx per second",
            "reqps",
            (
                _q(
                    _zero_when_absent(
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
                _q(
                    _zero_when_absent(
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
            (_q(f"sum by (service) (up{{{JOB}}})", "{{service}}"),),
        ),
        PanelSpec(
            "CPU (cores)",
            "short",
            (
                _q(
                    f"sum by (service) (rate(process_cpu_seconds_total{{{JOB}}}[1m]))",
                    "{{service}}",
                ),
            ),
        ),
        PanelSpec(
            "Resident memory",
            "bytes",
            (_q(f"process_resident_memory_bytes{{{JOB}}}", "{{instance}}"),),
        ),
        PanelSpec(
            "Firing alerts",
            "short",
            (
                _q(
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
        PanelSpec("Requests per second by instance", "reqps", (_q(by_instance, "{{instance}}"),)),
        PanelSpec(
            "Requests per second by route",
            "reqps",
            (_q(f"sum by (route) (rate(http_requests_total{{{sel}}}[1m]))", "{{route}}"),),
        ),
        PanelSpec(
            "Responses by status",
            "reqps",
            (_q(f"sum by (status) (rate(http_requests_total{{{sel}}}[1m]))", "{{status}}"),),
        ),
        PanelSpec("Latency p50 / p95 / p99", "s", _latency(sel, "service")),
        PanelSpec("p99 by route", "s", (_latency(sel, "route")[2],)),
        PanelSpec(
            "In-flight requests",
            "short",
            (_q(f"sum by (instance) (http_requests_in_flight{{{sel}}})", "{{instance}}"),),
        ),
        PanelSpec(
            "CPU (cores)",
            "short",
            (_q(f"rate(process_cpu_seconds_total{{{sel}}}[1m])", "{{instance}}"),),
        ),
        PanelSpec(
            "Resident memory",
            "bytes",
            (_q(f"process_resident_memory_bytes{{{sel}}}", "{{instance}}"),),
        ),
        PanelSpec(
            "Database pool",
            "short",
            (
                _q(f"db_pool_connections_in_use{{{sel}}}", "in use {{instance}}"),
                _q(f"db_pool_size{{{sel}}}", "size {{instance}}"),
                _q(f"db_pool_checkouts_waiting{{{sel}}}", "waiting {{instance}}"),
            ),
        ),
        PanelSpec(
            "Connection checkout p99",
            "s",
            (
                _q(
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
                _q(
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
                _q(
                    _zero_when_absent(f"sum(rate(db_slow_queries_total{{{sel}}}[5m]))", statements),
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
                    _q(
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
                (_q(f"{_zero_when_absent(hits, lookups)} / {lookups}", "{{prefix}}"),),
            )
        )
    if service in RATE_LIMITED:
        panels.append(
            PanelSpec(
                "Rate limiter decisions per second",
                "reqps",
                (
                    _q(
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
                (_q(f"max by (target) (circuit_breaker_state{{{sel}}})", "{{target}}"),),
            ),
            PanelSpec(
                "Calls to other services",
                "reqps",
                (
                    _q(
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
                    _q(f"sum(rate(orders_created_total{{{sel}}}[5m])) * 60", "created / min"),
                    _q(
                        f"sum(rate(orders_rejected_stock_total{{{sel}}}[5m])) * 60",
                        "rejected for stock / min",
                    ),
                    _q(f"sum(rate(idempotent_replays_total{{{sel}}}[5m])) * 60", "replays / min"),
                ),
            )
        )
    return panels


def redis_panels() -> list[PanelSpec]:
    hits = "rate(redis_keyspace_hits_total[5m])"
    misses = "rate(redis_keyspace_misses_total[5m])"
    return [
        PanelSpec(
            "Commands per second",
            "ops",
            (_q("rate(redis_commands_processed_total[1m])", "commands"),),
        ),
        PanelSpec("Hit ratio", "percentunit", (_q(f"{hits} / ({hits} + {misses})", "hits"),)),
        PanelSpec(
            "Memory",
            "bytes",
            (
                _q("redis_memory_used_bytes", "used"),
                _q("redis_memory_max_bytes", "maxmemory"),
            ),
        ),
        PanelSpec(
            "Evicted keys per second",
            "short",
            (_q("rate(redis_evicted_keys_total[5m])", "evicted"),),
        ),
        PanelSpec("Connected clients", "short", (_q("redis_connected_clients", "clients"),)),
        PanelSpec("Keys", "short", (_q("sum(redis_db_keys)", "keys"),)),
    ]


def postgres_panels() -> list[PanelSpec]:
    return [
        PanelSpec(
            "Connections by state",
            "short",
            (_q("sum by (state) (pg_stat_activity_count)", "{{state}}"),),
        ),
        PanelSpec(
            "Connections of max_connections",
            "short",
            (
                _q("sum(pg_stat_database_numbackends)", "open"),
                _q("max(pg_settings_max_connections)", "max_connections"),
            ),
        ),
        PanelSpec(
            "Transactions per second",
            "ops",
            (
                _q("sum(rate(pg_stat_database_xact_commit[1m]))", "commits"),
                _q("sum(rate(pg_stat_database_xact_rollback[1m]))", "rollbacks"),
            ),
        ),
        PanelSpec(
            "Longest running transaction",
            "s",
            (_q("max(pg_stat_activity_max_tx_duration)", "longest"),),
        ),
        PanelSpec(
            "Buffer cache hit ratio",
            "percentunit",
            (
                _q(
                    "sum(rate(pg_stat_database_blks_hit[5m])) / (sum(rate(pg_stat_database_blks_hit"
                    "[5m])) + sum(rate(pg_stat_database_blks_read[5m])))",
                    "hit",
                ),
            ),
        ),
        PanelSpec(
            "Deadlocks per second",
            "short",
            (_q("sum(rate(pg_stat_database_deadlocks[5m]))", "deadlocks"),),
        ),
        PanelSpec("Database size", "bytes", (_q("sum(pg_database_size_bytes)", "size"),)),
    ]


def gateway_panels() -> list[PanelSpec]:
    return [
        PanelSpec("Gateway up", "short", (_q("nginx_up", "nginx"),)),
        PanelSpec(
            "Requests per second", "reqps", (_q("rate(nginx_http_requests_total[1m])", "requests"),)
        ),
        PanelSpec(
            "Client connections",
            "short",
            tuple(
                _q(f"nginx_connections_{state}", state)
                for state in ("active", "reading", "writing", "waiting")
            ),
        ),
        PanelSpec(
            "Upstream distribution (requests per instance)",
            "reqps",
            (
                _q(
                    f"sum by (service, instance) (rate(http_requests_total{{{JOB}}}[1m]))",
                    "{{instance}}",
                ),
            ),
        ),
    ]


def build_dashboard(uid: str, title: str, panels: list[PanelSpec]) -> str:
    builder = (
        gd.Dashboard(title)
        .uid(f"shopfleet-{uid}")
        .tags(["shopfleet"])
        .refresh("10s")
        .time("now-1h", "now")
        .timezone("browser")
    )
    for panel in panels:
        chart = timeseries.Panel().title(panel.title).unit(panel.unit).datasource(DATASOURCE)
        chart = chart.height(8).span(12)
        for ref, query in zip("ABCDEFGH", panel.queries, strict=False):
            chart = chart.with_target(
                prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref)
            )
        builder = builder.with_panel(chart)
    return json.dumps(builder.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def dashboards(topology: Topology) -> dict[str, tuple[str, list[PanelSpec]]]:
    """uid -> (title, panels) for every dashboard."""
    boards: dict[str, tuple[str, list[PanelSpec]]] = {
        "overview": ("shopfleet overview", overview_panels())
    }
    for service in topology.ordered_services():
        boards[service.name] = (f"shopfleet {service.name}", service_panels(service.name))
    boards["redis"] = ("shopfleet Redis", redis_panels())
    boards["postgres"] = ("shopfleet PostgreSQL", postgres_panels())
    boards["gateway"] = ("shopfleet gateway (nginx)", gateway_panels())
    return boards


PROVISIONING_DATASOURCE = """\
# Grafana provisioning: the Prometheus that scrapes shopfleet, under the uid the dashboards use.
apiVersion: 1
datasources:
  - name: Prometheus
    uid: prometheus
    type: prometheus
    access: proxy
    url: http://prometheus:9090
    isDefault: true
"""

PROVISIONING_DASHBOARDS = """\
# Grafana provisioning: load every dashboard JSON in this folder.
apiVersion: 1
providers:
  - name: shopfleet
    folder: shopfleet
    type: file
    options:
      path: /var/lib/grafana/dashboards/shopfleet
"""


def render_dashboards(topology: Topology) -> dict[str, str]:
    files = {
        f"{DIRECTORY}/{uid}.json": build_dashboard(uid, title, panels)
        for uid, (title, panels) in dashboards(topology).items()
    }
    files["deploy/monitoring/grafana/datasources.yml"] = PROVISIONING_DATASOURCE
    files["deploy/monitoring/grafana/dashboards.yml"] = PROVISIONING_DASHBOARDS
    return files
