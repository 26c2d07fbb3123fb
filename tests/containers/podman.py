"""Podman and podman-compose, driven from the tests (see ../shared/CONTAINERS.md).

scripts/ci-containers installs Podman, points CONTAINERS_CONF/CONTAINERS_STORAGE_CONF at
a private config and storage, makes the Debian base image and names it in
SHOPFLEET_BASE_IMAGE. Podman 4.3 runs no healthcheck timers without systemd and ignores
Compose's `service_healthy` conditions, so the tests run the healthchecks themselves
(`podman healthcheck run`) and start the stores before the rest, as Compose would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support import REPO_ROOT

HERE = Path(__file__).resolve().parent
BASE_IMAGE = os.environ.get("SHOPFLEET_BASE_IMAGE", "python:3.11-slim")
# A TLS-intercepting proxy's CA, handed to pip inside the build (not baked into the image).
CA_BUNDLE = Path(os.environ.get("SHOPFLEET_BUILD_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))


def podman(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    assert shutil.which("podman"), "podman is not installed: run scripts/ci-containers"
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
    return result


def build(tag: str, *, containerfile: Path, context: Path, target: str | None = None) -> None:
    args = ["build", "--format", "docker", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    if CA_BUNDLE.is_file():
        args += ["--secret", f"id=ca-bundle,src={CA_BUNDLE}"]
    if target:
        args += ["--target", target]
    podman(*args, "-f", str(containerfile), "-t", tag, str(context), timeout=900)


def build_images() -> None:
    """The project's two images, and stand-ins for the official postgres and redis."""
    dockerfile = REPO_ROOT / "Dockerfile"
    build(
        "localhost/shopfleet:latest", containerfile=dockerfile, context=REPO_ROOT, target="runtime"
    )
    build(
        "localhost/shopfleet-gateway:latest",
        containerfile=dockerfile,
        context=REPO_ROOT,
        target="gateway",
    )
    images = HERE / "images"
    for name in ("postgres", "redis"):
        build(
            f"localhost/shopfleet-test-{name}:latest",
            containerfile=images / f"{name}.Containerfile",
            context=images,
        )


@dataclass
class ComposeProject:
    """One podman-compose project: the compose files in `directory` and the test override."""

    name: str
    env: dict[str, str]
    directory: Path = REPO_ROOT
    files: Sequence[str] = (
        "docker-compose.yml",
        "docker-compose.scale.yml",
        str(HERE / "compose.test.yml"),
    )
    log: list[str] = field(default_factory=list)

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "podman_compose", "-p", self.name]
        for path in self.files:
            command += ["-f", path]
        result = subprocess.run(
            [*command, *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        self.log.append(f"$ podman-compose {' '.join(args)} -> {result.returncode}")
        if result.returncode != 0:
            raise AssertionError(
                f"podman-compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def containers(self, service: str | None = None, *, all_states: bool = False) -> list[str]:
        args = [
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            f"label=io.podman.compose.project={self.name}",
        ]
        if service:
            args += ["--filter", f"label=io.podman.compose.service={service}"]
        if all_states:
            args.append("--all")
        return sorted(podman(*args).stdout.split())

    def diagnostics(self) -> str:
        """Container states and the gateway's last log lines, for a failure message."""
        label = f"label=io.podman.compose.project={self.name}"
        states = podman("ps", "--all", "--filter", label, "--format", "{{.Names}} {{.Status}}")
        text = [*self.log, states.stdout]
        for container in self.containers("gateway", all_states=True):
            logs = podman("logs", "--tail", "20", container, check=False)
            text.append(f"{container}:\n{logs.stdout}{logs.stderr}")
        return "\n".join(text)

    def wait_healthy(self, container: str, timeout: float = 120) -> None:
        """Run the container's Compose healthcheck until it passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if podman("healthcheck", "run", container, check=False).returncode == 0:
                return
            time.sleep(1)
        logs = podman("logs", "--tail", "50", container, check=False)
        raise AssertionError(f"{container} not healthy in {timeout}s:\n{logs.stdout}{logs.stderr}")

    def up_in_dependency_order(self) -> None:
        """`up -d`, one stage at a time along the files' depends_on conditions.

        Podman 4.3 ignores `service_healthy`, and its `--requires` graph fails to start a
        service whose one-shot dependency (migrate) has exited. So each stage starts with
        --no-deps the services whose dependencies are met, and the test waits for the
        conditions itself: the healthcheck passes, or the container exited with status 0.
        """
        merged = yaml.safe_load(self.compose("config").stdout)["services"]
        depends = {name: spec.get("depends_on", {}) for name, spec in merged.items()}
        met: set[str] = set()
        while len(met) < len(depends):
            stage = sorted(n for n, deps in depends.items() if n not in met and set(deps) <= met)
            assert stage, f"depends_on has a cycle among {set(depends) - met}"
            self.compose("up", "-d", "--no-deps", *stage)
            for name in stage:
                conditions = {deps[name]["condition"] for deps in depends.values() if name in deps}
                for container in self.containers(name, all_states=True):
                    if "service_healthy" in conditions:
                        self.wait_healthy(container)
                    if "service_completed_successfully" in conditions:
                        code = podman("wait", container, timeout=300).stdout.strip()
                        assert code == "0", f"{container} exited with {code}"
            met.update(stage)

    def remove(self) -> None:
        """Everything the project made: containers, the pod scaled replicas leave, network,
        volumes."""
        label = f"label=io.podman.compose.project={self.name}"
        containers = self.containers(all_states=True)
        if containers:
            podman("rm", "--force", "--depend", "--time", "0", *containers, check=False)
        podman("pod", "rm", "--force", "--time", "0", f"pod_{self.name}", check=False)
        podman("network", "rm", "--force", f"{self.name}_default", check=False)
        volumes = podman("volume", "ls", "--quiet", "--filter", label, check=False).stdout.split()
        if volumes:
            podman("volume", "rm", "--force", *volumes, check=False)
