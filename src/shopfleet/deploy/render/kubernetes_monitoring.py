"""Monitoring on Kubernetes: `kubectl apply -k deploy/kubernetes/monitoring` over the base.

For clusters with the Prometheus Operator (kube-prometheus-stack): a ServiceMonitor per
service and exporter, a PrometheusRule with every alert of `deploy/monitoring/alerts.yml`,
the Redis and PostgreSQL exporters as Deployments, and the Grafana dashboards as a
ConfigMap the Grafana sidecar picks up. Without the operator, the pods' `prometheus.io/*`
annotations (in the base) serve annotation-based scraping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shopfleet.deploy.render import alerts
from shopfleet.deploy.render.compose_monitoring import IMAGES
from shopfleet.deploy.render.dashboards import DIRECTORY as DASHBOARDS
from shopfleet.deploy.render.dashboards import render_dashboards
from shopfleet.deploy.render.kubernetes_platform import DATABASE, ROOT, labels, metadata, secret_env
from shopfleet.deploy.render.manifests import dump, dump_all, header
from shopfleet.deploy.topology import Topology

DIRECTORY = f"{ROOT}/monitoring"
KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
OPERATOR_API = "monitoring.coreos.com/v1"
# kube-prometheus-stack selects ServiceMonitors and rules by its release label.
RELEASE = {"release": "kube-prometheus-stack"}
EXPORTERS = {
    "redis-exporter": (9121, [{"name": "REDIS_ADDR", "value": "redis://redis:6379"}]),
    "postgres-exporter": (
        9187,
        [
            secret_env("DATA_SOURCE_PASS", "postgres-password"),
            {"name": "DATA_SOURCE_URI", "value": f"postgres:5432/{DATABASE}?sslmode=disable"},
            {"name": "DATA_SOURCE_USER", "value": DATABASE},
        ],
    ),
}


def _service_monitor(topology: Topology, name: str, component: str, port: str) -> dict[str, Any]:
    meta = metadata(topology, name, component)
    meta["labels"] = {**meta["labels"], **RELEASE}
    return {
        "apiVersion": OPERATOR_API,
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": labels(name, component)},
            "endpoints": [{"port": port, "path": "/metrics", "interval": "15s"}],
        },
    }


def _exporter(topology: Topology, name: str) -> list[dict[str, Any]]:
    port, env = EXPORTERS[name]
    image = IMAGES[name]
    container = {
        "name": name,
        "image": image,
        "env": env,
        "ports": [{"name": "metrics", "containerPort": port}],
        "resources": {
            "requests": {"cpu": "20m", "memory": "32Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(topology, name, "exporter"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels(name, "exporter")},
                "spec": {"automountServiceAccountToken": False, "containers": [container]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(topology, name, "exporter"),
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "metrics", "port": port, "targetPort": "metrics"}],
        },
    }
    return [deployment, service, _service_monitor(topology, name, "exporter", "metrics")]


def _exporter_access(topology: Topology) -> list[dict[str, Any]]:
    """The base fences Redis and PostgreSQL to the services; let their exporters in too."""
    policies = []
    for store, port in (("redis", 6379), ("postgres", 5432)):
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": metadata(topology, f"{store}-from-exporter", "monitoring"),
                "spec": {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": store}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "podSelector": {
                                        "matchLabels": {
                                            "app.kubernetes.io/name": f"{store}-exporter"
                                        }
                                    }
                                }
                            ],
                            "ports": [{"protocol": "TCP", "port": port}],
                        }
                    ],
                },
            }
        )
    return policies


def _rules(topology: Topology) -> dict[str, Any]:
    meta = metadata(topology, "shopfleet", "monitoring")
    meta["labels"] = {**meta["labels"], **RELEASE}
    return {
        "apiVersion": OPERATOR_API,
        "kind": "PrometheusRule",
        "metadata": meta,
        "spec": alerts.alert_rules(topology),
    }


def _dashboards(topology: Topology) -> dict[str, Any]:
    files = render_dashboards(topology)
    meta = metadata(topology, "shopfleet-dashboards", "monitoring")
    meta["labels"] = {**meta["labels"], "grafana_dashboard": "1"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {
            Path(path).name: content
            for path, content in files.items()
            if path.startswith(DASHBOARDS) and path.endswith(".json")
        },
    }


def render_kubernetes_monitoring(topology: Topology) -> dict[str, str]:
    monitors = [
        _service_monitor(topology, service.name, "service", "http")
        for service in topology.ordered_services()
    ]
    exporters = [doc for name in EXPORTERS for doc in _exporter(topology, name)]
    files = {
        "service-monitors.yaml": (
            "ServiceMonitors for the Prometheus Operator: every service's pods, every 15 s.",
            monitors,
        ),
        "exporters.yaml": (
            "The Redis and PostgreSQL exporters, with their ServiceMonitors and the network",
            exporters + _exporter_access(topology),
        ),
        "prometheus-rule.yaml": (
            "Every alert of deploy/monitoring/alerts.yml (runbooks: docs/operations.md).",
            [_rules(topology)],
        ),
        "dashboards.yaml": (
            "The Grafana dashboards, for the Grafana sidecar (label grafana_dashboard).",
            [_dashboards(topology)],
        ),
    }
    out = {
        f"{DIRECTORY}/{name}": header(topology, comment) + dump_all(documents)
        for name, (comment, documents) in files.items()
    }
    kustomization = dump(
        {
            "apiVersion": KUSTOMIZE_API,
            "kind": "Kustomization",
            "resources": sorted(files),
        }
    )
    out[f"{DIRECTORY}/kustomization.yaml"] = (
        header(
            topology,
            "Monitoring over the base, for clusters with the Prometheus Operator:",
            "  kubectl apply -k deploy/kubernetes/monitoring",
        )
        + kustomization
    )
    return out
