"""The Kubernetes manifests: valid against the API schemas (strict), buildable by kustomize,
and carrying the topology's scale, resources and autoscaling behaviour.

No cluster is reachable here, so the manifests are validated offline: kubernetes-validate
ships the OpenAPI schemas of each Kubernetes release, and `kubectl kustomize` is kustomize.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from shopfleet.common.http import ServiceClient
from shopfleet.common.metrics import Metrics
from shopfleet.common.settings import Settings
from shopfleet.deploy.render.kubernetes_platform import BASE, ROOT, SECRET_EXAMPLE
from shopfleet.deploy.topology import load_topology
from tests.support import REPO_ROOT

TOPOLOGY = load_topology(REPO_ROOT / "shopfleet.toml")
# The newest schemas shipped with kubernetes-validate and an older, still common release.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
BUILDS = ("", "/base", "/overlays/dev", "/overlays/prod")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest_files() -> list[Path]:
    return sorted(
        path for path in (REPO_ROOT / BASE).glob("*.yaml") if path.name != "kustomization.yaml"
    )


@functools.cache
def kustomize(directory: str) -> list[dict[str, Any]]:
    """`kustomize build`, from the standalone binary or the one built into kubectl."""
    if shutil.which("kustomize"):
        command = ["kustomize", "build", str(REPO_ROOT / directory)]
    else:
        assert shutil.which("kubectl"), "neither kustomize nor kubectl is installed"
        command = ["kubectl", "kustomize", str(REPO_ROOT / directory)]
    built = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly_against_the_kubernetes_schemas(version: str) -> None:
    files = manifest_files()
    assert {f"{name}-deployment.yaml" for name in TOPOLOGY.services} <= {f.name for f in files}
    checked = 0
    for path in files:
        for doc in documents(path):
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
    assert checked >= 30


def test_the_validator_rejects_an_unknown_field() -> None:
    deployment = documents(REPO_ROOT / BASE / "auth-deployment.yaml")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


@pytest.mark.parametrize("directory", BUILDS)
def test_kustomize_builds_and_the_result_validates(directory: str) -> None:
    docs = kustomize(ROOT + directory)
    for doc in docs:
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)
    kinds = {doc["kind"] for doc in docs}
    expected = {"Namespace", "ConfigMap", "Deployment", "StatefulSet", "Service", "Job"}
    assert expected | {"Ingress", "NetworkPolicy", "PodDisruptionBudget"} <= kinds
    assert "Secret" not in kinds, "the real Secret is the user's; the example is not applied"
    assert all(doc["metadata"].get("namespace", "ecommerce") == "ecommerce" for doc in docs)


def test_deployments_and_autoscalers_carry_the_topology() -> None:
    docs = kustomize(ROOT)
    deployments = by_kind(docs, "Deployment")
    autoscalers = by_kind(docs, "HorizontalPodAutoscaler")
    scaling = TOPOLOGY.autoscaling
    for service in TOPOLOGY.ordered_services():
        deployment = deployments[service.name]
        assert deployment["spec"]["replicas"] == service.instances
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"] == {
            "requests": {
                "cpu": service.resources.cpu_request,
                "memory": service.resources.memory_request,
            },
            "limits": {
                "cpu": service.resources.cpu_limit,
                "memory": service.resources.memory_limit,
            },
        }
        hpa = autoscalers[service.name]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (service.hpa.min, service.hpa.max)
        targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["metrics"]}
        assert targets == {
            "cpu": {"type": "Utilization", "averageUtilization": scaling.cpu_target},
            "memory": {"type": "Utilization", "averageUtilization": scaling.memory_target},
        }
        assert hpa["behavior"] == {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 30},
                    {"type": "Pods", "value": 4, "periodSeconds": 30},
                ],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "selectPolicy": "Min",
                "policies": [
                    {"type": "Percent", "value": 50, "periodSeconds": 60},
                    {"type": "Pods", "value": 2, "periodSeconds": 60},
                ],
            },
        }
    seeds = {
        name: (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
        for name, hpa in autoscalers.items()
    }
    assert seeds == {
        "auth": (3, 10),
        "products": (3, 10),
        "orders": (3, 12),
        "categories": (2, 6),
        "users": (2, 8),
    }
    redis = deployments["redis"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert redis["limits"] == {"cpu": "500m", "memory": "512Mi"}


def test_pods_drain_gracefully_and_run_locked_down() -> None:
    deployments = by_kind(kustomize(ROOT), "Deployment")
    for service in TOPOLOGY.ordered_services():
        pod = deployments[service.name]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep"
        drain = int(pre_stop[1]) + TOPOLOGY.process.shutdown_timeout
        assert pod["terminationGracePeriodSeconds"] > drain
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {"/tmp", "/app/var"}
        assert all("emptyDir" in volume for volume in pod["volumes"])


def test_dev_overlay_runs_one_replica_without_autoscaling_and_prod_pins_the_image() -> None:
    dev = kustomize(f"{ROOT}/overlays/dev")
    assert not by_kind(dev, "HorizontalPodAutoscaler")
    assert {d["spec"]["replicas"] for d in by_kind(dev, "Deployment").values()} == {1}
    prod = kustomize(f"{ROOT}/overlays/prod")
    assert set(by_kind(prod, "HorizontalPodAutoscaler")) == set(TOPOLOGY.services)
    for name in TOPOLOGY.services:
        pod = by_kind(prod, "Deployment")[name]["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] != TOPOLOGY.project.image
        assert len(pod["topologySpreadConstraints"]) == 2


def test_the_secret_is_only_an_example() -> None:
    base = yaml.safe_load((REPO_ROOT / BASE / "kustomization.yaml").read_text())
    assert Path(SECRET_EXAMPLE).name not in base["resources"]
    (secret,) = documents(REPO_ROOT / SECRET_EXAMPLE)
    assert set(secret["stringData"]) == {"internal-token", "jwt-private-key", "postgres-password"}
    assert all(value.startswith("REPLACE") for value in secret["stringData"].values())
    referenced = {
        env["valueFrom"]["secretKeyRef"]["key"]
        for doc in kustomize(ROOT)
        if doc["kind"] in ("Deployment", "StatefulSet", "Job")
        for container in doc["spec"]["template"]["spec"]["containers"]
        for env in container.get("env", [])
        if "valueFrom" in env
    }
    assert referenced == set(secret["stringData"])


def test_ingress_mirrors_the_gateway_zones_and_never_routes_internal_paths() -> None:
    ingresses = by_kind(kustomize(ROOT), "Ingress")
    limits = TOPOLOGY.gateway.rate_limits
    prefix = "nginx.ingress.kubernetes.io/"
    api = ingresses["shopfleet"]["metadata"]["annotations"]
    login = ingresses["shopfleet-auth"]["metadata"]["annotations"]
    # One zone per Ingress: the stricter of its own and `general`, which applies everywhere.
    assert api[prefix + "limit-rps"] == str(min(limits.api.rate, limits.general.rate))
    assert login[prefix + "limit-rps"] == str(min(limits.auth.rate, limits.general.rate))
    for notes in (api, login):
        assert notes[prefix + "proxy-next-upstream"] == "error timeout http_502 http_503"
    assert int(login[prefix + "limit-burst-multiplier"]) * limits.auth.rate == limits.auth.burst
    paths = [
        path["path"]
        for ingress in ingresses.values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert sorted(paths) == sorted(
        [f"/v1/{name}" for name in TOPOLOGY.services] + ["/v1/auth/login", "/v1/auth/register"]
    )


def test_network_policies_fence_the_data_stores() -> None:
    policies = by_kind(kustomize(ROOT), "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
    }
    (redis_rule,) = policies["redis"]["spec"]["ingress"]
    assert redis_rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "service"}}}
    ]
    (postgres_rule,) = policies["postgres"]["spec"]["ingress"]
    (selector,) = postgres_rule["from"]
    # The seed's HPA maximums exceed the connection budget: pods reach PostgreSQL through
    # PgBouncer only; the migration Job connects directly, within the reserve.
    assert selector["podSelector"]["matchExpressions"][0]["values"] == ["pooler", "migration"]
    (pooler_rule,) = policies["pgbouncer"]["spec"]["ingress"]
    assert pooler_rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "service"}}}
    ]
    sources = policies["services"]["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector", "podSelector"} == set(sources[0])
    assert sources[1] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/component": "service"}}
    }


async def test_services_call_each_other_through_their_service_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = by_kind(kustomize(ROOT), "ConfigMap")["shopfleet-config"]["data"]
    monkeypatch.setenv("SHOPFLEET_SERVICE_URLS", config["SHOPFLEET_SERVICE_URLS"])
    settings = Settings(service="orders", internal_url="http://unused:1")
    assert settings.service_urls["products"] == "http://products:3001"
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={})

    client = ServiceClient(
        settings, Metrics(), internal_token="t", transport=httpx.MockTransport(answer)
    )
    try:
        await client.request("products", "GET", "/internal/products/x")
        await client.request("orders", "GET", "/internal/orders/y")
    finally:
        await client.aclose()
    assert seen == [
        "http://products:3001/internal/products/x",
        "http://orders:3004/internal/orders/y",
    ]


def test_instances_trust_only_the_pod_network() -> None:
    config = by_kind(kustomize(ROOT), "ConfigMap")
    (data,) = [doc["data"] for doc in config.values() if "SHOPFLEET_TRUSTED_PROXIES" in doc["data"]]
    trusted = json.loads(data["SHOPFLEET_TRUSTED_PROXIES"])
    assert trusted == [TOPOLOGY.networks.kubernetes_pod_cidr]


def test_monitoring_overlay_scrapes_every_service_and_carries_every_alert(tmp_path: Path) -> None:
    from shopfleet.deploy.render import alerts, kubernetes_monitoring

    directory = REPO_ROOT / kubernetes_monitoring.DIRECTORY
    docs = [doc for path in sorted(directory.glob("*.yaml")) for doc in documents(path)]
    core = [d for d in docs if not d["apiVersion"].startswith("monitoring.coreos.com")]
    core = [d for d in core if d["kind"] != "Kustomization"]
    for doc in core:
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)
    # Each ServiceMonitor selects a Service that has the port it scrapes.
    services = {
        doc["metadata"]["name"]: doc
        for path in [*manifest_files(), *directory.glob("*.yaml")]
        for doc in documents(path)
        if doc["kind"] == "Service"
    }
    monitors = by_kind(docs, "ServiceMonitor")
    assert set(TOPOLOGY.services) | {"redis-exporter", "postgres-exporter"} == set(monitors)
    for name, monitor in monitors.items():
        service = services[name]
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    # The PrometheusRule is the rendered alert rules, and promtool accepts it.
    (rule,) = by_kind(docs, "PrometheusRule").values()
    assert rule["spec"] == alerts.alert_rules(TOPOLOGY)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule["spec"]))
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    checked = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (dashboards,) = by_kind(docs, "ConfigMap").values()
    assert (
        len(dashboards["data"]) == 9
        and dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    )
