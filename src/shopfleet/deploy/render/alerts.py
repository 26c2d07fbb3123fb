"""The alert rules and Alertmanager's configuration, rendered from the topology.

The rules read the metrics every instance exposes on `/metrics` (see
`shopfleet.common.metrics`) and those of the standard Redis, PostgreSQL and nginx
exporters. Thresholds live in the topology's `[monitoring]` table; per-service limits
(CPU, memory ceiling) become recording rules, so one alert expression covers every service.
"""

from __future__ import annotations

from typing import Any

from shopfleet.deploy.render.quantities import cpu_cores, memory_ceiling
from shopfleet.deploy.topology import Topology

# The Prometheus job of the service instances, as the rules select it.
INSTANCES_JOB = "shopfleet"


def _limits(topology: Topology) -> list[dict[str, Any]]:
    """Per-service constants as series, so alerts divide by them with one expression."""
    rules: list[dict[str, Any]] = []
    for service in topology.ordered_services():
        labels = {"service": service.name}
        rules += [
            {
                "record": "shopfleet:cpu_limit_cores",
                "expr": f"vector({cpu_cores(service.resources.cpu_limit):g})",
                "labels": labels,
            },
            {
                "record": "shopfleet:memory_ceiling_bytes",
                "expr": f"vector({memory_ceiling(topology, service)})",
                "labels": labels,
            },
        ]
    return rules


def _alert(
    name: str, expr: str, *, wait: str, severity: str, summary: str, runbook: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "runbook": f"docs/operations.md#{runbook}",
        },
    }


def _rate(selector: str, window: str = "5m") -> str:
    return f"rate({selector}[{window}])"


def alert_rules(topology: Topology) -> dict[str, Any]:
    """Every alert of the troubleshooting guide, each pointing at its runbook section."""
    m = topology.monitoring
    job = f'job="{INSTANCES_JOB}"'
    all_requests = "http_requests_total{" + job + "}"
    server_errors = "http_requests_total{" + job + ',status=~"5.."}'
    requests = f"sum by (service) ({_rate(all_requests)})"
    errors = f"sum by (service) ({_rate(server_errors)})"
    per_instance = f"sum by (service, instance) ({_rate(all_requests)})"
    cache_all = f"sum by (service, prefix) ({_rate('cache_requests_total', '10m')})"
    hits = 'cache_requests_total{result="hit"}'
    cache_hits = f"sum by (service, prefix) ({_rate(hits, '10m')})"
    created = "sum(rate(orders_created_total[5m]))"
    rejected = "sum(rate(orders_rejected_stock_total[5m]))"
    alerts = [
        _alert(
            "InstanceDown",
            f"up{{{job}}} == 0",
            wait="1m",
            severity="critical",
            summary="{{ $labels.instance }} does not answer /metrics",
            runbook="instancedown",
        ),
        _alert(
            "ExporterDown",
            'up{job=~"redis|postgres|nginx|alertmanager|autoscaler"} == 0',
            wait="2m",
            severity="warning",
            summary="the {{ $labels.job }} exporter does not answer",
            runbook="exporterdown",
        ),
        _alert(
            "InstanceCPUHigh",
            f"rate(process_cpu_seconds_total{{{job}}}[1m])"
            f" / on (service) group_left shopfleet:cpu_limit_cores > {m.cpu_ratio:g}",
            wait="5m",
            severity="warning",
            summary="{{ $labels.instance }} uses over "
            f"{m.cpu_ratio:.0%} of its CPU limit for 5 minutes",
            runbook="instancecpuhigh",
        ),
        _alert(
            "InstanceMemoryNearCeiling",
            f"process_resident_memory_bytes{{{job}}}"
            f" / on (service) group_left shopfleet:memory_ceiling_bytes > {m.memory_ratio:g}",
            wait="5m",
            severity="warning",
            summary="{{ $labels.instance }} is near the memory ceiling that restarts it",
            runbook="instancememorynearceiling",
        ),
        _alert(
            "InstanceMemoryGrowing",
            f"predict_linear(process_resident_memory_bytes{{{job}}}[30m], 3600)"
            " / on (service) group_left shopfleet:memory_ceiling_bytes > 1",
            wait="15m",
            severity="warning",
            summary="{{ $labels.instance }} will reach its memory ceiling within an hour",
            runbook="instancememorygrowing",
        ),
        _alert(
            "ServiceErrorRateHigh",
            f"{errors} / {requests} > {m.error_ratio:g}",
            wait="5m",
            severity="critical",
            summary=f"over {m.error_ratio:.0%} of {{{{ $labels.service }}}} responses are 5xx",
            runbook="serviceerrorratehigh",
        ),
        _alert(
            "ServiceLatencyP99High",
            "histogram_quantile(0.99, sum by (service, le) ("
            + _rate("http_request_duration_seconds_bucket{" + job + "}")
            + f")) > {m.p99_seconds:g}",
            wait="10m",
            severity="warning",
            summary=f"{{{{ $labels.service }}}} p99 latency is above {m.p99_seconds:g} s",
            runbook="servicelatencyp99high",
        ),
        _alert(
            "CacheHitRateLow",
            f"({cache_hits} / {cache_all}) < {m.cache_hit_ratio:g} and {cache_all} > 1",
            wait="15m",
            severity="warning",
            summary="the {{ $labels.prefix }} cache answers under "
            f"{m.cache_hit_ratio:.0%} of lookups",
            runbook="cachehitratelow",
        ),
        _alert(
            "RedisEvictingKeys",
            "increase(redis_evicted_keys_total[5m]) > 0",
            wait="10m",
            severity="warning",
            summary="Redis is evicting keys: it is out of memory for the caches",
            runbook="redisevictingkeys",
        ),
        _alert(
            "DatabasePoolSaturated",
            f"db_pool_connections_in_use{{{job}}} / db_pool_size{{{job}}} >= {m.pool_ratio:g}",
            wait="5m",
            severity="warning",
            summary="{{ $labels.instance }} has used almost all of its database connections",
            runbook="databasepoolsaturated",
        ),
        _alert(
            "DatabasePoolWaiting",
            "histogram_quantile(0.99, sum by (service, le) "
            f"(rate(db_pool_checkout_seconds_bucket{{{job}}}[5m]))) > {m.pool_wait_seconds:g}",
            wait="5m",
            severity="warning",
            summary="{{ $labels.service }} requests wait for a database connection "
            f"(p99 over {m.pool_wait_seconds:g} s)",
            runbook="databasepoolwaiting",
        ),
        _alert(
            "LoadUneven",
            f"(max by (service) ({per_instance}) / min by (service) ({per_instance}))"
            f" > {m.uneven_ratio:g} and {requests} > 5",
            wait="15m",
            severity="warning",
            summary="{{ $labels.service }} instances get very different shares of requests",
            runbook="loaduneven",
        ),
        _alert(
            "CircuitBreakerOpen",
            f"max by (service, target) (circuit_breaker_state{{{job}}}) == 2",
            wait="1m",
            severity="warning",
            summary="{{ $labels.service }} stopped calling {{ $labels.target }}",
            runbook="circuitbreakeropen",
        ),
        _alert(
            "ServiceAtMaxReplicas",
            "max by (service) (shopfleet_autoscaler_current_replicas)"
            " >= max by (service) (shopfleet_autoscaler_max_replicas)",
            wait="15m",
            severity="warning",
            summary="{{ $labels.service }} has run at its hpa.max for 15 minutes",
            runbook="serviceatmaxreplicas",
        ),
        _alert(
            "OrderStockRejectionsSpiking",
            f"{rejected} / ({created} + {rejected}) > {m.stock_rejection_ratio:g}"
            f" and {rejected} > 0.1",
            wait="5m",
            severity="warning",
            summary="many orders are rejected for short stock",
            runbook="orderstockrejectionsspiking",
        ),
    ]
    return {
        "groups": [
            {"name": "shopfleet-limits", "rules": _limits(topology)},
            {"name": "shopfleet-alerts", "rules": alerts},
        ]
    }


ALERTMANAGER_CONFIG: dict[str, Any] = {
    "route": {
        "receiver": "log",
        "group_by": ["alertname", "service"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
    },
    # Point this at your pager or chat (email_configs, webhook_configs, ...).
    "receivers": [{"name": "log"}],
}
