"""The shared part of the Kubernetes base: namespace, config, Redis, PostgreSQL and the
migration Job, plus the helpers every manifest uses."""

from __future__ import annotations

import json
from typing import Any

from shopfleet.deploy.render.manifests import CONTAINER_TMP, REDIS_COMMAND
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


def _config(topology: Topology) -> Document:
    urls = {s.name: f"http://{s.name}:{s.port}" for s in topology.ordered_services()}
    data = {
        "SHOPFLEET_ENVIRONMENT": "production",
        "SHOPFLEET_REDIS_URL": "redis://redis:6379/0",
        # Service DNS names: kube-proxy spreads each service's calls over its ready pods.
        "SHOPFLEET_SERVICE_URLS": json.dumps(urls, sort_keys=True),
        "SHOPFLEET_JWKS_URL": f"{urls['auth']}/v1/auth/.well-known/jwks.json",
        # The pod network: the ingress controller's pods (NetworkPolicies let only them
        # and the services reach the service ports).
        "SHOPFLEET_TRUSTED_PROXIES": json.dumps([topology.networks.kubernetes_pod_cidr]),
        "SHOPFLEET_SHUTDOWN_TIMEOUT": str(topology.process.shutdown_timeout),
        "SHOPFLEET_CURRENCY": topology.project.currency,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(topology, CONFIG_NAME, "config"),
        "data": dict(sorted(data.items())),
    }


def _secret_example(topology: Topology) -> Document:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(topology, SECRET_NAME, "config"),
        "type": "Opaque",
        "stringData": {
            "internal-token": "REPLACE: openssl rand -hex 32",
            "jwt-private-key": "REPLACE: openssl genpkey -algorithm ed25519\n",
            "postgres-password": "REPLACE: openssl rand -hex 24 (URL-safe characters only)",
        },
    }


def _redis(topology: Topology) -> list[Document]:
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


def _postgres(topology: Topology) -> list[Document]:
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


def _migration_job(topology: Topology) -> Document:
    name = "shopfleet-migrate"
    container = {
        "name": "migrate",
        "image": topology.project.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["migrate", "all"],
        "envFrom": [{"configMapRef": {"name": CONFIG_NAME}}],
        "env": database_env(),
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": CONTAINER_TMP}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(topology, name, "migration"),
        "spec": {
            # Retried while PostgreSQL starts; removed after a while so the next
            # `kubectl apply -k` (a new image) runs the migrations again.
            "backoffLimit": 10,
            "ttlSecondsAfterFinished": 300,
            "template": {
                "metadata": {"labels": labels(name, "migration")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(10001),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def platform_files(topology: Topology) -> dict[str, tuple[tuple[str, ...], list[Document]]]:
    """File name -> (header comment lines, documents)."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": topology.project.namespace,
            "labels": {"app.kubernetes.io/part-of": "shopfleet"},
        },
    }
    return {
        "namespace.yaml": ((), [namespace]),
        "configmap.yaml": (
            ("Settings every pod shares; secrets are in the Secret.",),
            [_config(topology)],
        ),
        "secret.example.yaml": (
            (
                "An example only: not in kustomization.yaml and holding no real secret.",
                "Create the real one (docs/deployment.md):",
                f"  kubectl create secret generic {SECRET_NAME} -n {topology.project.namespace} \\",
                "    --from-literal=internal-token=$(openssl rand -hex 32) \\",
                "    --from-literal=postgres-password=$(openssl rand -hex 24) \\",
                "    --from-file=jwt-private-key=<(openssl genpkey -algorithm ed25519)",
            ),
            [_secret_example(topology)],
        ),
        "redis-deployment.yaml": (("Redis: cache and rate limiter store.",), _redis(topology)),
        "postgres-statefulset.yaml": (
            ("PostgreSQL: one schema per service.",),
            _postgres(topology),
        ),
        "migration-job.yaml": (
            ("Applies every service's migrations (idempotent) before the pods become ready.",),
            [_migration_job(topology)],
        ),
    }
