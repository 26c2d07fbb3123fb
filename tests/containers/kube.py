"""The rendered Kubernetes pods under `podman kube play` (Podman 4.3, no cluster here).

A local run changes only what it must in a Deployment: the image (the one the Compose test
builds, never pulled), one replica, run-unique object names (without the namespace, which
Podman has not). Everything else is played as rendered. What Podman 4.3 does not do the kubelet's way, the harness does explicitly:

- Secret objects: `kube play` of a Secret stores it as YAML, which its own secretKeyRef
  lookup cannot read (it wants a JSON map of base64 values). So the Secret is made as a
  Podman secret in that format, with the keys of secret.example.yaml.
- `$(VAR)` references in env values (SHOPFLEET_DATABASE_URL uses `$(POSTGRES_PASSWORD)`):
  Podman passes them literally; `expand_env` resolves them as Kubernetes does.
- Probes: Podman runs none without systemd, so the test polls each probe's httpGet path and
  port (a named port resolved through the container's ports) at the pod's IP.
- preStop hooks: ignored by Podman; the test runs the hook's command in the container.
- Services: ignored; the stores join the pods' network under the Service names.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.containers.podman import podman
from tests.support import REPO_ROOT

BASE = REPO_ROOT / "deploy" / "kubernetes" / "base"
IMAGE = "localhost/shopfleet:latest"
RENDERED_SECRET = "shopfleet-secrets"
_REFERENCE = re.compile(r"\$\((\w+)\)|\$\$")

Manifest = dict[str, Any]


def documents(filename: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all((BASE / filename).read_text()) if doc]


def one(filename: str, kind: str) -> Manifest:
    (found,) = [doc for doc in documents(filename) if doc["kind"] == kind]
    return found


def secret_keys() -> list[str]:
    """The keys of the documented Secret (secret.example.yaml)."""
    secret = one("secret.example.yaml", "Secret")
    assert secret["metadata"]["name"] == RENDERED_SECRET
    return sorted(secret["stringData"])


def podman_secret(name: str, values: dict[str, str], directory: Path) -> None:
    """A Podman secret in the format Podman 4.3's secretKeyRef reads."""
    path = directory / f"{name}.json"
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    path.write_text(json.dumps(encoded))
    path.chmod(0o600)
    podman("secret", "create", name, str(path))
    path.unlink()


def expand_env(env: list[Manifest], secrets: dict[str, str]) -> list[Manifest]:
    """Resolve `$(VAR)` in env values from the entries before it, as the kubelet does: `$$`
    escapes, an undefined reference stays as written."""
    known: dict[str, str] = {}
    expanded = []
    for entry in env:
        entry = dict(entry)
        if "value" in entry:

            def resolve(match: re.Match[str]) -> str:
                name = match.group(1)
                return "$" if name is None else known.get(name, match.group(0))

            entry["value"] = _REFERENCE.sub(resolve, entry["value"])
            known[entry["name"]] = entry["value"]
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            known[entry["name"]] = secrets.get(entry["valueFrom"]["secretKeyRef"]["key"], "")
        expanded.append(entry)
    return expanded


def for_local_run(
    template: Manifest, *, name: str, secret: str, secrets: dict[str, str]
) -> Manifest:
    """A Deployment, or the Job's pod template as a Pod, as a local run must change it."""
    doc = copy.deepcopy(template)
    doc["metadata"]["name"] = name
    doc["metadata"].pop("namespace", None)
    if doc["kind"] == "Deployment":
        doc["spec"]["replicas"] = 1
        pod = doc["spec"]["template"]["spec"]
    else:
        pod = doc["spec"]
    for container in pod["containers"]:
        container["image"] = IMAGE
        container["imagePullPolicy"] = "Never"
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == RENDERED_SECRET, ref
                ref["name"] = secret
        container["env"] = expand_env(without_pgbouncer(container.get("env", [])), secrets)
    return doc


PGBOUNCER_URL = re.compile(r"@pgbouncer:6432/shopfleet_\w+$")


def without_pgbouncer(env: list[Manifest]) -> list[Manifest]:
    """Straight to PostgreSQL, as the migration Job connects, where the manifests go through
    PgBouncer (the topology's Kubernetes maximums exceed the connection budget). The
    PgBouncer pod needs its own image and is not played here: see docs/deployment.md."""
    out = []
    for entry in env:
        if entry["name"] == "SHOPFLEET_DATABASE_PGBOUNCER":
            continue
        value = entry.get("value")
        if entry["name"] == "SHOPFLEET_DATABASE_URL" and value and PGBOUNCER_URL.search(value):
            entry = {**entry, "value": PGBOUNCER_URL.sub("@postgres:5432/shopfleet", value)}
        out.append(entry)
    return out


def job_as_pod(job: Manifest) -> Manifest:
    """The Job's pod, run once: the Job controller's retries need a cluster, and the test
    starts it only when the database is ready."""
    template = job["spec"]["template"]
    spec = {**template["spec"], "restartPolicy": "Never"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**job["metadata"], "labels": template["metadata"]["labels"]},
        "spec": spec,
    }


def pod_spec(doc: Manifest) -> Manifest:
    spec: Manifest = doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else doc["spec"]
    return spec


def container_name(doc: Manifest, container: Manifest) -> str:
    """Podman 4.3 names a Deployment's pod `<name>-pod-0` and a container `<pod>-<name>`."""
    pod = (
        f"{doc['metadata']['name']}-pod-0"
        if doc["kind"] == "Deployment"
        else doc["metadata"]["name"]
    )
    return f"{pod}-{container['name']}"


def pod_ip(container: str) -> str:
    pod = podman("inspect", "--format", "{{.Pod}}", container).stdout.strip()
    infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod).stdout.strip()
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    address = podman("inspect", "--format", fmt, infra).stdout.strip()
    assert address, f"{container}: no pod IP"
    return address


def probe_url(address: str, container: Manifest, probe: str) -> str:
    """The URL a probe's httpGet asks, its port resolved by name as the kubelet does."""
    action = container[probe]["httpGet"]
    port = action["port"]
    if isinstance(port, str) and not port.isdigit():
        (port,) = [p["containerPort"] for p in container.get("ports", []) if p["name"] == port]
    return f"http://{address}:{port}{action['path']}"


def wait_probe(name: str, url: str, *, timeout: float) -> None:
    """Poll a probe's URL until it answers 200; fail early if the container stopped."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as error:
            last = repr(error)
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state != "running":
            break
        time.sleep(0.5)
    logs = podman("logs", "--tail", "30", name, check=False)
    raise AssertionError(f"{name}: {url} not ready ({last}):\n{logs.stdout}{logs.stderr}")
