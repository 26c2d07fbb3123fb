"""The monitoring stack for Docker Compose, as an overlay file.

`docker compose -f docker-compose.yml -f docker-compose.monitoring.yml up -d` adds
Prometheus (finding every replica of every service by DNS, so `--scale` needs no change),
Alertmanager, the Redis, PostgreSQL and nginx exporters, and Grafana with the dashboards
provisioned. The exporters and Grafana are their projects' official images.
"""

from __future__ import annotations

from typing import Any

from shopfleet.deploy.render import monitoring
from shopfleet.deploy.render.compose import DATABASE, required
from shopfleet.deploy.render.dashboards import DIRECTORY as DASHBOARDS
from shopfleet.deploy.render.manifests import dump, header
from shopfleet.deploy.topology import Topology

PATH = "docker-compose.monitoring.yml"
PROMETHEUS_CONFIG = "deploy/monitoring/compose/prometheus.yml"
IMAGES = {
    "prometheus": "prom/prometheus:v2.53.2",
    "alertmanager": "prom/alertmanager:v0.27.0",
    "redis-exporter": "oliver006/redis_exporter:v1.62.0",
    "postgres-exporter": "quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
    "nginx-exporter": "nginx/nginx-prometheus-exporter:1.3.0",
    "grafana": "grafana/grafana:11.2.0",
}
EXPORTER_PORTS = {"redis": 9121, "postgres": 9187, "nginx": 9113}


def compose_prometheus(topology: Topology) -> str:
    """Every service's replicas by DNS (Compose resolves a name to all of them)."""
    instances = {
        "dns_sd_configs": [
            {"names": [service.name], "type": "A", "port": service.port, "refresh_interval": "5s"}
            for service in topology.ordered_services()
        ],
        "relabel_configs": [
            {"source_labels": ["__meta_dns_name"], "target_label": "service"},
        ],
    }
    exporters = {job: f"{job}-exporter:{port}" for job, port in EXPORTER_PORTS.items()}
    exporters["alertmanager"] = "alertmanager:9093"
    config = monitoring.prometheus_config(
        topology,
        instances=instances,
        exporters=exporters,
        alertmanager="alertmanager:9093",
        rule_files=["/etc/prometheus/alerts.yml"],
    )
    # Prometheus scrapes itself inside its container.
    config["scrape_configs"][0]["static_configs"] = [{"targets": ["localhost:9090"]}]
    return dump(config)


def _services(topology: Topology) -> dict[str, Any]:
    internal = f"http://gateway:{topology.gateway.internal_port}/nginx/status"
    dsn = f"postgresql://{DATABASE}:{required('POSTGRES_PASSWORD')}@postgres:5432/{DATABASE}"
    local = "127.0.0.1"
    return {
        "prometheus": {
            "image": IMAGES["prometheus"],
            "command": [
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.retention.time=7d",
            ],
            "volumes": [
                f"./{PROMETHEUS_CONFIG}:/etc/prometheus/prometheus.yml:ro",
                f"./{monitoring.RULES}:/etc/prometheus/alerts.yml:ro",
                "prometheus-data:/prometheus",
            ],
            "ports": [f"{local}:9090:9090"],
            "restart": "unless-stopped",
        },
        "alertmanager": {
            "image": IMAGES["alertmanager"],
            "command": ["--config.file=/etc/alertmanager/alertmanager.yml"],
            "volumes": [f"./{monitoring.ALERTMANAGER}:/etc/alertmanager/alertmanager.yml:ro"],
            "ports": [f"{local}:9093:9093"],
            "restart": "unless-stopped",
        },
        "redis-exporter": {
            "image": IMAGES["redis-exporter"],
            "environment": {"REDIS_ADDR": "redis://redis:6379"},
            "depends_on": ["redis"],
            "restart": "unless-stopped",
        },
        "postgres-exporter": {
            "image": IMAGES["postgres-exporter"],
            "environment": {"DATA_SOURCE_NAME": f"{dsn}?sslmode=disable"},
            "depends_on": ["postgres"],
            "restart": "unless-stopped",
        },
        "nginx-exporter": {
            "image": IMAGES["nginx-exporter"],
            "command": [f"--nginx.scrape-uri={internal}"],
            "depends_on": ["gateway"],
            "restart": "unless-stopped",
        },
        "grafana": {
            "image": IMAGES["grafana"],
            "environment": {
                "GF_SECURITY_ADMIN_PASSWORD": required("GRAFANA_ADMIN_PASSWORD"),
            },
            "volumes": [
                "./deploy/monitoring/grafana/datasources.yml:"
                "/etc/grafana/provisioning/datasources/shopfleet.yml:ro",
                "./deploy/monitoring/grafana/dashboards.yml:"
                "/etc/grafana/provisioning/dashboards/shopfleet.yml:ro",
                f"./{DASHBOARDS}:/var/lib/grafana/dashboards/shopfleet:ro",
            ],
            "ports": [f"{local}:3000:3000"],
            "depends_on": ["prometheus"],
            "restart": "unless-stopped",
        },
    }


def render_compose_monitoring(topology: Topology) -> dict[str, str]:
    document = {"services": _services(topology), "volumes": {"prometheus-data": {}}}
    overlay = header(
        topology,
        "The monitoring stack, over the platform (docs/operations.md):",
        f"  docker compose -f docker-compose.yml -f {PATH} up -d",
        "Set GRAFANA_ADMIN_PASSWORD in .env. Prometheus, Alertmanager and Grafana listen",
        "on 127.0.0.1 only.",
    ) + dump(document)
    return {PATH: overlay, PROMETHEUS_CONFIG: compose_prometheus(topology)}
