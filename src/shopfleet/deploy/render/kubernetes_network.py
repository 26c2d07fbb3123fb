"""The Kubernetes Ingress (ingress-nginx) and the NetworkPolicies around the services."""

from __future__ import annotations

from typing import Any

from shopfleet.deploy.render.budget import uses_pgbouncer
from shopfleet.deploy.render.kubernetes_platform import (
    INGRESS_CONTROLLER,
    INGRESS_NAMESPACE,
    Document,
    metadata,
)
from shopfleet.deploy.topology import Topology, Zone

AUTH_LIMITED = ("/v1/auth/login", "/v1/auth/register")
ANNOTATION = "nginx.ingress.kubernetes.io/"
# Prometheus in this namespace may scrape /metrics (docs/deployment.md).
MONITORING_NAMESPACE = "monitoring"


def _zone(zone: Zone, general: Zone, connections: int) -> dict[str, str]:
    """ingress-nginx's per-client limits for one gateway zone (burst = rps * multiplier).

    ingress-nginx gives an Ingress one limit_req zone, and the `general` zone applies on
    every route (as at the local gateway), so the stricter of the two is rendered."""
    zone = min(zone, general, key=lambda z: (z.rate, z.burst))
    return {
        f"{ANNOTATION}limit-rps": str(zone.rate),
        f"{ANNOTATION}limit-burst-multiplier": str(max(1, zone.burst // zone.rate)),
        f"{ANNOTATION}limit-connections": str(connections),
    }


def _ingress(
    topology: Topology, name: str, annotations: dict[str, str], paths: list[tuple[str, str, str]]
) -> Document:
    """`paths`: (path, pathType, service) triples."""
    gateway = topology.gateway
    ports = {service.name: service.port for service in topology.ordered_services()}
    common = {
        f"{ANNOTATION}proxy-body-size": gateway.client_max_body_size,
        f"{ANNOTATION}proxy-read-timeout": str(gateway.proxy_read_timeout),
        f"{ANNOTATION}proxy-send-timeout": str(gateway.proxy_read_timeout),
        # As at the local gateway: another pod after a connect error or timeout, and for
        # idempotent requests after a 502/503 (ingress-nginx never retries a POST/PATCH
        # that was sent); a pod that does not accept within a second is skipped.
        f"{ANNOTATION}proxy-connect-timeout": "1",
        f"{ANNOTATION}proxy-next-upstream": "error timeout http_502 http_503",
        f"{ANNOTATION}proxy-next-upstream-tries": "3",
        f"{ANNOTATION}proxy-next-upstream-timeout": "10",
    }
    rules = [
        {
            "path": path,
            "pathType": path_type,
            "backend": {"service": {"name": service, "port": {"number": ports[service]}}},
        }
        for path, path_type, service in paths
    ]
    document: Document = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(topology, name, "ingress"),
        "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": rules}}]},
    }
    document["metadata"]["annotations"] = dict(sorted({**common, **annotations}.items()))
    return document


def ingresses(topology: Topology) -> list[Document]:
    """The API (zone `api`) and, stricter, sign-in and sign-up (zone `auth`)."""
    limits = topology.gateway.rate_limits
    api = [(f"/v1/{s.name}", "Prefix", s.name) for s in topology.ordered_services()]
    auth = [(path, "Exact", "auth") for path in AUTH_LIMITED]
    return [
        _ingress(
            topology,
            "shopfleet",
            _zone(limits.api, limits.general, limits.connections_per_client),
            api,
        ),
        _ingress(
            topology,
            "shopfleet-auth",
            _zone(limits.auth, limits.general, limits.connections_per_client),
            auth,
        ),
    ]


def _policy(topology: Topology, name: str, pods: dict[str, Any], ingress: list[Any]) -> Document:
    document: Document = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(topology, name, "network-policy"),
        "spec": {"podSelector": pods, "policyTypes": ["Ingress"]},
    }
    if ingress:
        document["spec"]["ingress"] = ingress
    return document


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def network_policies(topology: Topology) -> list[Document]:
    services = {"matchLabels": {"app.kubernetes.io/component": "service"}}
    ports = _tcp(*(service.port for service in topology.ordered_services()))
    ingress_controller = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": INGRESS_NAMESPACE}},
        "podSelector": {"matchLabels": INGRESS_CONTROLLER},
    }
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}}
    }
    # Behind PgBouncer, only it and the migration Job (within the reserve) reach PostgreSQL.
    pooled = uses_pgbouncer(topology)
    clients = {
        "matchExpressions": [
            {
                "key": "app.kubernetes.io/component",
                "operator": "In",
                "values": ["pooler" if pooled else "service", "migration"],
            }
        ]
    }
    return [
        # Nothing reaches a pod of the namespace unless a policy below lets it.
        _policy(topology, "default-deny-ingress", {}, []),
        _policy(
            topology,
            "services",
            services,
            [
                {"from": [ingress_controller, {"podSelector": services}], "ports": ports},
                {"from": [monitoring], "ports": ports},
            ],
        ),
        _policy(
            topology,
            "redis",
            {"matchLabels": {"app.kubernetes.io/name": "redis"}},
            [{"from": [{"podSelector": services}], "ports": _tcp(6379)}],
        ),
        _policy(
            topology,
            "postgres",
            {"matchLabels": {"app.kubernetes.io/name": "postgres"}},
            [{"from": [{"podSelector": clients}], "ports": _tcp(5432)}],
        ),
    ] + (
        [
            _policy(
                topology,
                "pgbouncer",
                {"matchLabels": {"app.kubernetes.io/name": "pgbouncer"}},
                [{"from": [{"podSelector": services}], "ports": _tcp(6432)}],
            )
        ]
        if pooled
        else []
    )
