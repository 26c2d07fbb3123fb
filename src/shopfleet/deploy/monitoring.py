"""Prometheus, Alertmanager and the alert rules, rendered from the topology.

The rules read the metrics every instance exposes on `/metrics` (see
`shopfleet.common.metrics`) and those of the standard Redis, PostgreSQL and nginx
exporters. Thresholds live in the topology's `[monitoring]` table; per-service limits
(CPU, memory ceiling) become recording rules, so one alert expression covers every service.
"""

from __future__ import annotations

import json
from typing import Any

from shopfleet.deploy.manifests import dump
from shopfleet.deploy.nginx import instance_name
from shopfleet.deploy.topology import Service, Topology

DIRECTORY = "deploy/monitoring"
PROMETHEUS = f"{DIRECTORY}/prometheus.yml"
RULES = f"{DIRECTORY}/alerts.yml"
ALERTMANAGER = f"{DIRECTORY}/alertmanager.yml"
# File-based discovery: `up` and `scale` rewrite this file; Prometheus rereads it, no restart.
INSTANCE_TARGETS = "targets/instances.json"
INSTANCES_JOB = "shopfleet"


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("250m", "1") in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "1Gi") in bytes."""
    for power, suffix in enumerate(("Ki", "Mi", "Gi"), start=1):
        if quantity.endswith(suffix):
            return int(quantity[:-2]) * (1 << (10 * power))
    raise ValueError(f"use Ki, Mi or Gi for memory quantities, not {quantity!r}")


def memory_ceiling(topology: Topology, service: Service) -> int:
    """Where an instance is restarted: the process ceiling or the container limit, lower."""
    return min(
        topology.process.memory_ceiling_mb * 2**20, memory_bytes(service.resources.memory_limit)
    )


def instance_targets(topology: Topology, host: str = "127.0.0.1") -> list[dict[str, Any]]:
    """Prometheus file_sd groups: one per running instance, labelled with its service."""
    return [
        {
            "targets": [f"{host}:{service.instance_port(index)}"],
            "labels": {"service": service.name, "instance": instance_name(service.name, index)},
        }
        for service in topology.ordered_services()
        for index in range(1, service.instances + 1)
    ]


def render_instance_targets(topology: Topology) -> str:
    return json.dumps(instance_targets(topology), indent=2) + "\n"


def scrape_configs(
    topology: Topology,
    *,
    instances: dict[str, Any],
    exporters: dict[str, str],
) -> list[dict[str, Any]]:
    """Prometheus itself, every instance, and each exporter by job name."""
    monitoring = topology.monitoring
    configs: list[dict[str, Any]] = [
        {
            "job_name": "prometheus",
            "static_configs": [{"targets": [f"127.0.0.1:{monitoring.prometheus_port}"]}],
        },
        {"job_name": INSTANCES_JOB, "metrics_path": "/metrics", **instances},
    ]
    for job, address in exporters.items():
        configs.append({"job_name": job, "static_configs": [{"targets": [address]}]})
    return configs


def prometheus_config(
    topology: Topology,
    *,
    instances: dict[str, Any],
    exporters: dict[str, str],
    alertmanager: str,
    rule_files: list[str],
) -> dict[str, Any]:
    monitoring = topology.monitoring
    return {
        "global": {
            "scrape_interval": f"{monitoring.scrape_interval}s",
            "evaluation_interval": f"{monitoring.scrape_interval}s",
            "external_labels": {"platform": topology.project.name},
        },
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": scrape_configs(topology, instances=instances, exporters=exporters),
    }


def local_exporters(
    topology: Topology, *, postgres: bool = True, redis: bool = True, autoscaler: bool = True
) -> dict[str, str]:
    monitoring = topology.monitoring
    exporters = {
        "redis": f"127.0.0.1:{monitoring.redis_exporter_port}",
        "postgres": f"127.0.0.1:{monitoring.postgres_exporter_port}",
        "nginx": f"127.0.0.1:{monitoring.nginx_exporter_port}",
        "alertmanager": f"127.0.0.1:{monitoring.alertmanager_port}",
        "autoscaler": f"127.0.0.1:{topology.autoscaling.metrics_port}",
    }
    if not autoscaler:
        del exporters["autoscaler"]  # the controller runs with --autoscale only
    if not postgres:
        del exporters["postgres"]  # SQLite files: nothing to export
    if not redis:
        del exporters["redis"]  # in-process fallbacks
    return exporters


def local_prometheus(
    topology: Topology, *, postgres: bool = True, redis: bool = True, autoscaler: bool = True
) -> str:
    """The one-machine Prometheus: instances from the file `up` and `scale` keep current."""
    config = prometheus_config(
        topology,
        instances={"file_sd_configs": [{"files": [INSTANCE_TARGETS], "refresh_interval": "5s"}]},
        exporters=local_exporters(topology, postgres=postgres, redis=redis, autoscaler=autoscaler),
        alertmanager=f"127.0.0.1:{topology.monitoring.alertmanager_port}",
        rule_files=["alerts.yml"],
    )
    return dump(config)


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


def runtime_files(
    topology: Topology, *, postgres: bool, redis: bool, autoscaler: bool
) -> dict[str, str]:
    """var/run/monitoring/ of a local run, for its live scale."""
    return {
        "prometheus.yml": local_prometheus(
            topology, postgres=postgres, redis=redis, autoscaler=autoscaler
        ),
        "alerts.yml": dump(alert_rules(topology)),
        "alertmanager.yml": dump(ALERTMANAGER_CONFIG),
        INSTANCE_TARGETS: render_instance_targets(topology),
    }


def render_monitoring(topology: Topology) -> dict[str, str]:
    """The committed monitoring files of the one-machine run (PM2 runs use them as they are:
    `prometheus --config.file=deploy/monitoring/prometheus.yml`)."""
    return {
        PROMETHEUS: local_prometheus(topology),
        f"{DIRECTORY}/{INSTANCE_TARGETS}": render_instance_targets(topology),
        RULES: dump(alert_rules(topology)),
        ALERTMANAGER: dump(ALERTMANAGER_CONFIG),
    }
