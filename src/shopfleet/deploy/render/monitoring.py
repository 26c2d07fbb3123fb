"""Prometheus's configuration (what it scrapes, where it alerts) and the monitoring files
of a one-machine run, rendered from the topology (the rules: render/alerts.py)."""

from __future__ import annotations

import json
from typing import Any

from shopfleet.deploy.render.alerts import ALERTMANAGER_CONFIG, INSTANCES_JOB, alert_rules
from shopfleet.deploy.render.manifests import dump
from shopfleet.deploy.topology import Topology, instance_name

DIRECTORY = "deploy/monitoring"
PROMETHEUS = f"{DIRECTORY}/prometheus.yml"
RULES = f"{DIRECTORY}/alerts.yml"
ALERTMANAGER = f"{DIRECTORY}/alertmanager.yml"
# File-based discovery: `up` and `scale` rewrite this file; Prometheus rereads it, no restart.
INSTANCE_TARGETS = "targets/instances.json"


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
