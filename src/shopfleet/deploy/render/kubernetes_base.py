"""The shared part of the Kubernetes base: namespace, config, the Secret's example, Redis,
PostgreSQL and the migration Job."""

from __future__ import annotations

import json

from shopfleet.deploy.render.kubernetes_datastores import postgres_documents, redis_documents
from shopfleet.deploy.render.kubernetes_platform import (
    CONFIG_NAME,
    CONTAINER_SECURITY,
    SECRET_NAME,
    Document,
    database_env,
    labels,
    metadata,
    pod_security,
)
from shopfleet.deploy.render.manifests import CONTAINER_TMP
from shopfleet.deploy.topology import Topology


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
        "redis-deployment.yaml": (
            ("Redis: cache and rate limiter store.",),
            redis_documents(topology),
        ),
        "postgres-statefulset.yaml": (
            ("PostgreSQL: one schema per service.",),
            postgres_documents(topology),
        ),
        "migration-job.yaml": (
            ("Applies every service's migrations (idempotent) before the pods become ready.",),
            [_migration_job(topology)],
        ),
    }
