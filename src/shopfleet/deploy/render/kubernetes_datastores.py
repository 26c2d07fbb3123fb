"""Redis (a Deployment) and PostgreSQL (a StatefulSet), each behind its cluster Service."""

from __future__ import annotations

from typing import Any

from shopfleet.deploy.render.kubernetes_platform import (
    CONTAINER_SECURITY,
    DATABASE,
    POSTGRES_IMAGE,
    REDIS_IMAGE,
    Document,
    labels,
    metadata,
    pod_security,
    resources,
    secret_env,
)
from shopfleet.deploy.render.manifests import CONTAINER_TMP, REDIS_COMMAND
from shopfleet.deploy.topology import Topology


def redis_documents(topology: Topology) -> list[Document]:
    probe = {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 10, "timeoutSeconds": 2}
    container = {
        "name": "redis",
        "image": REDIS_IMAGE,
        "args": REDIS_COMMAND,
        "ports": [{"name": "redis", "containerPort": 6379}],
        "resources": resources(topology.redis.resources),
        "livenessProbe": probe,
        "readinessProbe": probe,
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(topology, "redis", "cache"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "redis"}},
            "template": {
                "metadata": {"labels": labels("redis", "cache")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(999),
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }
    return [deployment, _cluster_service(topology, "redis", "cache", 6379)]


def _cluster_service(
    topology: Topology, name: str, component: str, port: int, *, headless: bool = False
) -> Document:
    spec: dict[str, Any] = {"type": "ClusterIP"}
    if headless:
        spec["clusterIP"] = "None"
    spec["selector"] = {"app.kubernetes.io/name": name}
    spec["ports"] = [{"name": name, "port": port, "targetPort": name}]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(topology, name, component),
        "spec": spec,
    }


def postgres_documents(topology: Topology) -> list[Document]:
    ready = ["pg_isready", "-U", DATABASE, "-d", DATABASE]
    probe = {"exec": {"command": ready}, "periodSeconds": 10, "timeoutSeconds": 3}
    container = {
        "name": "postgres",
        "image": POSTGRES_IMAGE,
        # The connection budget (shopfleet.toml [database]) assumes this limit.
        "args": ["postgres", "-c", f"max_connections={topology.database.max_connections}"],
        "ports": [{"name": "postgres", "containerPort": 5432}],
        "env": [
            {"name": "POSTGRES_DB", "value": DATABASE},
            {"name": "POSTGRES_USER", "value": DATABASE},
            secret_env("POSTGRES_PASSWORD", "postgres-password"),
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 60},
        "livenessProbe": probe,
        "readinessProbe": probe,
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": CONTAINER_TMP},
        ],
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(topology, "postgres", "database"),
        "spec": {
            "serviceName": "postgres",
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}},
            "template": {
                "metadata": {"labels": labels("postgres", "database")},
                "spec": {
                    "terminationGracePeriodSeconds": 60,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(999),
                    "containers": [container],
                    "volumes": [
                        {"name": "run", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "10Gi"}},
                    },
                }
            ],
        },
    }
    return [statefulset, _cluster_service(topology, "postgres", "database", 5432, headless=True)]
