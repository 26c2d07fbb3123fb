"""What every Kubernetes manifest shares: names, images, labels, security contexts,
resources and the environment that reaches the Secret."""

from __future__ import annotations

from typing import Any

from shopfleet.deploy.topology import Resources, Topology

ROOT = "deploy/kubernetes"
BASE = f"{ROOT}/base"
SECRET_EXAMPLE = f"{BASE}/secret.example.yaml"
CONFIG_NAME = "shopfleet-config"
SECRET_NAME = "shopfleet-secrets"  # noqa: S105 (the Secret's name, not a secret)
DATABASE = "shopfleet"
POSTGRES_IMAGE = "postgres:16-bookworm"
REDIS_IMAGE = "redis:7-bookworm"
# The ingress-nginx controller's namespace and pod label, as its Helm chart installs it.
INGRESS_NAMESPACE = "ingress-nginx"
INGRESS_CONTROLLER = {"app.kubernetes.io/name": "ingress-nginx"}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}

Document = dict[str, Any]


def labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "shopfleet",
    }


def metadata(topology: Topology, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": topology.project.namespace,
        "labels": labels(name, component),
    }


def pod_security(user: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(values: Resources) -> dict[str, Any]:
    return {
        "requests": {"cpu": values.cpu_request, "memory": values.memory_request},
        "limits": {"cpu": values.cpu_limit, "memory": values.memory_limit},
    }


def secret_env(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": key}}}


def database_env() -> list[dict[str, Any]]:
    """The password from the Secret, expanded by the kubelet into the database URL."""
    url = f"postgresql+asyncpg://{DATABASE}:$(POSTGRES_PASSWORD)@postgres:5432/{DATABASE}"
    return [
        secret_env("POSTGRES_PASSWORD", "postgres-password"),
        {"name": "SHOPFLEET_DATABASE_URL", "value": url},
    ]
