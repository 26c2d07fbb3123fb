"""The rendered Kubernetes pods for real, under `podman kube play` (tests/containers/kube.py
says what a local run changes and what the harness does in the kubelet's place).

The migration Job's pod migrates a fresh PostgreSQL; then the five service Deployments from
deploy/kubernetes/base, with the committed ConfigMap and a Secret of the documented keys,
each become ready on their own probes' ports and paths, reach the database and Redis with
the addresses and credentials the manifests give them, run as the non-root user with a
read-only root filesystem and no capabilities, run their preStop hook and stop within their
grace period. Run by scripts/ci-containers (SHOPFLEET_CONTAINER_TESTS=1).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.containers import kube
from tests.containers.podman import build_images, podman
from tests.support import PRIVATE_PEM

pytestmark = pytest.mark.deploy_live

SERVICES = ("auth", "users", "categories", "products", "orders")
# What a pod may write: its emptyDir mounts. Everything else is the read-only image.
CHECK_SECURITY = """
import os, sys, pathlib
denied = []
for path in sys.argv[1:]:
    try:
        pathlib.Path(path, ".probe").write_text("x")
        os.remove(os.path.join(path, ".probe"))
    except OSError as error:
        denied.append(f"{path}:{error.errno}")
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")]
print(os.getuid(), os.getgid(), caps[0], " ".join(denied) or "-")
"""


@dataclass
class Run:
    name: str
    directory: Path
    secret: str
    secrets: dict[str, str]
    deployments: dict[str, kube.Manifest]


def play(run: Run, docs: list[kube.Manifest], filename: str, *extra: str) -> Path:
    path = run.directory / filename
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    configmap = str(kube.BASE / "configmap.yaml")
    podman("kube", "play", "--network", run.name, "--configmap", configmap, *extra, str(path))
    return path


def start_stores(run: Run) -> None:
    """The stores under the Services' names on the pods' network (kube play ignores
    Services; the StatefulSet is not a kind Podman 4.3 plays)."""
    podman("network", "create", run.name)
    password = run.secrets["postgres-password"]
    podman(
        "run", "-d", "--name", f"{run.name}-postgres", "--network", run.name,
        "--network-alias", "postgres", "-e", "POSTGRES_USER=shopfleet",
        "-e", "POSTGRES_DB=shopfleet", "-e", f"POSTGRES_PASSWORD={password}",
        "localhost/shopfleet-test-postgres:latest",
    )  # fmt: skip
    podman(
        "run", "-d", "--name", f"{run.name}-redis", "--network", run.name,
        "--network-alias", "redis", "localhost/shopfleet-test-redis:latest",
    )  # fmt: skip
    deadline = time.monotonic() + 60
    ready = ["pg_isready", "-h", "127.0.0.1", "-U", "shopfleet", "-d", "shopfleet"]
    while podman("exec", f"{run.name}-postgres", *ready, check=False).returncode != 0:
        assert time.monotonic() < deadline, "the stand-in PostgreSQL did not start"
        time.sleep(0.5)


def remove(run: Run) -> None:
    for path in run.directory.glob("*.yaml"):
        podman("kube", "down", str(path), check=False)
    stores = [f"{run.name}-postgres", f"{run.name}-redis"]
    podman("rm", "--force", "--time", "0", *stores, check=False)
    podman("network", "rm", "--force", run.name, check=False)
    podman("secret", "rm", run.secret, check=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    build_images()
    name = f"sfkube{uuid.uuid4().hex[:8]}"
    values = {
        "internal-token": uuid.uuid4().hex,
        "jwt-private-key": PRIVATE_PEM,
        "postgres-password": uuid.uuid4().hex,
    }
    assert sorted(values) == kube.secret_keys(), "the test's Secret has the documented keys"
    current = Run(name, tmp_path_factory.mktemp("kube"), f"{name}-secrets", values, {})
    try:
        kube.podman_secret(current.secret, values, current.directory)
        start_stores(current)
        migrate = kube.job_as_pod(kube.one("migration-job.yaml", "Job"))
        pod = kube.for_local_run(
            migrate, name=f"{name}-migrate", secret=current.secret, secrets=values
        )
        play(current, [pod], "migrate.yaml")
        (container,) = kube.pod_spec(pod)["containers"]
        job = kube.container_name(pod, container)
        code = podman("wait", job, timeout=300).stdout.strip()
        logs = podman("logs", job, check=False)
        assert code == "0", f"migration pod exited {code}:\n{logs.stdout}{logs.stderr}"
        for service in SERVICES:
            current.deployments[service] = kube.for_local_run(
                kube.one(f"{service}-deployment.yaml", "Deployment"),
                name=f"{name}-{service}",
                secret=current.secret,
                secrets=values,
            )
        play(current, list(current.deployments.values()), "services.yaml")
        yield current
    finally:
        remove(current)


def test_a_wrong_probe_port_or_a_missing_secret_key_fails(run: Run) -> None:
    """The checks above can fail: a probe on a port nothing listens on never passes, and
    a pod whose Secret lacks a key the manifest asks for does not start."""
    doc = copy.deepcopy(run.deployments["categories"])
    (container,) = kube.pod_spec(doc)["containers"]
    container["readinessProbe"]["httpGet"]["port"] = container["ports"][0]["containerPort"] + 1
    name = kube.container_name(run.deployments["categories"], container)
    address = kube.pod_ip(name)
    # The pod as rendered is ready on its probe's port; the variant's probe never passes.
    (rendered,) = kube.pod_spec(run.deployments["categories"])["containers"]
    kube.wait_probe(name, kube.probe_url(address, rendered, "readinessProbe"), timeout=120)
    with pytest.raises(AssertionError, match="not ready"):
        kube.wait_probe(name, kube.probe_url(address, container, "readinessProbe"), timeout=3)

    broken = kube.for_local_run(
        kube.one("users-deployment.yaml", "Deployment"),
        name=f"{run.name}-missing",
        secret=run.secret,
        secrets=run.secrets,
    )
    (container,) = kube.pod_spec(broken)["containers"]
    container["env"][0]["valueFrom"]["secretKeyRef"]["key"] = "no-such-key"
    with pytest.raises(AssertionError, match="no-such-key"):
        play(run, [broken], "missing.yaml")


def test_rendered_pods_become_ready_run_locked_down_and_stop_gracefully(run: Run) -> None:
    targets = {}
    for service, doc in run.deployments.items():
        (container,) = kube.pod_spec(doc)["containers"]
        targets[service] = (kube.container_name(doc, container), container)
        name = targets[service][0]
        address = kube.pod_ip(name)
        # Startup, then readiness and liveness, at the manifest's own paths and ports.
        startup = container["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        kube.wait_probe(name, kube.probe_url(address, container, "startupProbe"), timeout=budget)
        for probe in ("readinessProbe", "livenessProbe"):
            kube.wait_probe(name, kube.probe_url(address, container, probe), timeout=30)
        ready = httpx.get(kube.probe_url(address, container, "readinessProbe"), timeout=5)
        assert ready.json() == {"status": "ready"}, (service, ready.text)
        # The database and Redis reached with the manifests' addresses and the Secret.
        health = httpx.get(f"http://{address}:{container['ports'][0]['containerPort']}/health")
        assert health.status_code == 200, (service, health.text)
        assert health.json()["checks"] == {"database": "ok", "redis": "ok"}, service
        assert health.json()["service"] == service

        # The security context, enforced: the user, no capabilities, and a read-only image
        # with writable emptyDir mounts only.
        pod = kube.pod_spec(doc)
        mounts = [mount["mountPath"] for mount in container["volumeMounts"]]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        result = podman("exec", name, "python3", "-c", CHECK_SECURITY, *mounts, "/app", "/")
        uid, gid, caps, denied = result.stdout.split(maxsplit=3)
        user = pod["securityContext"]
        assert (int(uid), int(gid)) == (user["runAsUser"], user["runAsGroup"]), service
        assert uid != "0" and caps == "0000000000000000", (service, uid, caps)
        assert denied.split() == ["/app:30", "/:30"], (service, denied)  # 30: EROFS
        options = podman("inspect", "--format", "{{.HostConfig.SecurityOpt}}", name).stdout
        assert "no-new-privileges" in options, (service, options)

    # preStop, as the kubelet runs it, then SIGTERM: each pod stops by itself (exit 0)
    # within its terminationGracePeriodSeconds.
    def stop(service: str) -> tuple[str, float, str]:
        name, container = targets[service]
        grace = kube.pod_spec(run.deployments[service])["terminationGracePeriodSeconds"]
        started = time.monotonic()
        podman("exec", name, *container["lifecycle"]["preStop"]["exec"]["command"])
        podman("stop", "--time", str(grace), name)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        return code, time.monotonic() - started, str(grace)

    with ThreadPoolExecutor(len(SERVICES)) as pool:
        stopped = dict(zip(SERVICES, pool.map(stop, SERVICES), strict=True))
    for service, (code, seconds, grace) in stopped.items():
        assert code == "0", (service, code)
        assert seconds < float(grace), (service, seconds)
    print({service: f"stopped in {seconds:.1f}s" for service, (_, seconds, _) in stopped.items()})
