"""Kubernetes manifests: a kustomize base with the seed's file names, dev and prod overlays.

Per service: a Deployment (probes, preStop drain, non-root read-only pods), a Service, an
HPA (autoscaling/v2 with the topology's behaviour) and a PodDisruptionBudget. Services call
each other through Service DNS names (SHOPFLEET_SERVICE_URLS), not through a gateway.
"""

from __future__ import annotations

from typing import Any

from shopfleet.deploy.render import kubernetes_pgbouncer as pgbouncer
from shopfleet.deploy.render import kubernetes_platform as platform
from shopfleet.deploy.render.budget import uses_pgbouncer
from shopfleet.deploy.render.kubernetes_autoscaling import disruption_budget, horizontal_autoscaler
from shopfleet.deploy.render.kubernetes_base import platform_files
from shopfleet.deploy.render.kubernetes_network import ingresses, network_policies
from shopfleet.deploy.render.kubernetes_overlays import kustomization, overlays
from shopfleet.deploy.render.kubernetes_platform import (
    BASE,
    CONFIG_NAME,
    ROOT,
    SECRET_NAME,
    database_env,
    labels,
    metadata,
    pod_security,
    secret_env,
)
from shopfleet.deploy.render.manifests import CONTAINER_TMP, dump_all, header, serve_command
from shopfleet.deploy.topology import Service, Topology

# preStop: the pod keeps serving while endpoints and the ingress controller drop it.
PRE_STOP_SECONDS = 5


def _database_env(topology: Topology, service: Service) -> list[dict[str, Any]]:
    if not uses_pgbouncer(topology):
        return database_env()
    (password, _direct) = database_env()
    return [
        password,
        {"name": "SHOPFLEET_DATABASE_URL", "value": pgbouncer.database_url(service.name)},
        {"name": "SHOPFLEET_DATABASE_PGBOUNCER", "value": "true"},
    ]


def _container(topology: Topology, service: Service) -> dict[str, Any]:
    env = [
        *_database_env(topology, service),
        secret_env("SHOPFLEET_INTERNAL_TOKEN", "internal-token"),
    ]
    if service.name == "auth":
        # Every auth pod signs with the one key from the Secret.
        env.append(secret_env("SHOPFLEET_JWT_PRIVATE_KEY", "jwt-private-key"))
    env += [{"name": key, "value": value} for key, value in sorted(service.environment().items())]

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        }

    return {
        "name": service.name,
        "image": topology.project.image,
        "imagePullPolicy": "IfNotPresent",
        "args": serve_command(service),
        "ports": [{"name": "http", "containerPort": service.port}],
        "envFrom": [{"configMapRef": {"name": CONFIG_NAME}}],
        "env": env,
        "resources": platform.resources(service.resources),
        "startupProbe": probe("/health/live", 2, 60),
        "livenessProbe": probe("/health/live", 10, 3),
        "readinessProbe": probe("/health/ready", 5, 2),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}},
        "securityContext": platform.CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "tmp", "mountPath": CONTAINER_TMP},
            {"name": "var", "mountPath": "/app/var"},
        ],
    }


def _deployment(topology: Topology, service: Service) -> dict[str, Any]:
    selector = {"app.kubernetes.io/name": service.name}
    grace = PRE_STOP_SECONDS + topology.process.shutdown_timeout + 10
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(topology, service.name, "service"),
        "spec": {
            "replicas": service.instances,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            # A new pod is ready before an old one goes: capacity never drops in a rollout.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": labels(service.name, "service"),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(service.port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    # Longer than preStop plus the drain, so the kubelet never kills mid-request.
                    "terminationGracePeriodSeconds": grace,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(10001),
                    "containers": [_container(topology, service)],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        {"name": "var", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def _service(topology: Topology, service: Service) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(topology, service.name, "service"),
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": service.name},
            "ports": [{"name": "http", "port": service.port, "targetPort": "http"}],
        },
    }


def service_documents(topology: Topology, service: Service) -> list[dict[str, Any]]:
    return [
        _deployment(topology, service),
        _service(topology, service),
        horizontal_autoscaler(topology, service),
        disruption_budget(topology, service),
    ]


def render_kubernetes(topology: Topology) -> dict[str, str]:
    sources = platform_files(topology)
    sources.update(pgbouncer.pgbouncer_files(topology))
    sources["ingress.yaml"] = (
        ("ingress-nginx routes /v1/<service>; its rate limits mirror the gateway's zones.",),
        ingresses(topology),
    )
    sources["network-policies.yaml"] = (
        (
            "Only the ingress controller and the services reach the services; only the",
            "services (and the migration Job) reach Redis and PostgreSQL.",
        ),
        network_policies(topology),
    )
    files = {
        f"{BASE}/{name}": header(topology, *comment) + dump_all(documents)
        for name, (comment, documents) in sources.items()
    }
    for service in topology.ordered_services():
        comment = (f"The {service.name} service: Deployment, Service, HPA, PodDisruptionBudget.",)
        files[f"{BASE}/{service.name}-deployment.yaml"] = header(topology, *comment) + dump_all(
            service_documents(topology, service)
        )
    resources = sorted(
        path.removeprefix(f"{BASE}/") for path in files if path != platform.SECRET_EXAMPLE
    )
    files[f"{BASE}/kustomization.yaml"] = header(
        topology,
        "Everything but the Secret, which you create (see secret.example.yaml).",
        f"  kubectl create secret generic {SECRET_NAME} -n {topology.project.namespace} ...",
    ) + kustomization(resources=resources)
    files[f"{ROOT}/kustomization.yaml"] = header(
        topology,
        "The base, as rendered from the topology: kubectl apply -k deploy/kubernetes/",
    ) + kustomization(resources=["base"])
    files.update(overlays(topology))
    if uses_pgbouncer(topology):
        files[pgbouncer.CONTAINERFILE] = pgbouncer.render_containerfile()
    return files
