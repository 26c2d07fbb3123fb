"""Docker Compose for real, under Podman: docker-compose.yml and docker-compose.scale.yml
(rendered with the bench profile's rate limits, otherwise the committed files) run the
whole platform from the images the Dockerfile builds.

Migrations run once, the API answers through the gateway container, `--scale products=5`
reaches all five replicas through the gateway, and killing a replica under load costs no
idempotent request. Run by scripts/ci-containers (SHOPFLEET_CONTAINER_TESTS=1).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shopfleet.deploy.render import compose
from shopfleet.deploy.topology import load_topology
from tests.containers.podman import ComposeProject, build_images, podman
from tests.e2e.load import steady_reads
from tests.support import INTERNAL_TOKEN, PRIVATE_PEM, REPO_ROOT, free_port

pytestmark = pytest.mark.deploy_live

SERVICES = ("auth", "users", "categories", "products", "orders")
REPLICAS = {"auth": 3, "users": 2, "categories": 2, "products": 3, "orders": 3}
RATE_LIMITS = re.compile(r"SHOPFLEET_RATE_LIMIT_|limit_req|limit_conn|profile (default|bench)")


def bench_project(directory: Path) -> None:
    """The compose files of the `bench` profile: the committed ones with the rate limits
    raised, so the load below is not throttled (checked: nothing else differs)."""
    committed = compose.render_compose(load_topology(REPO_ROOT / "shopfleet.toml"))
    bench = compose.render_compose(load_topology(REPO_ROOT / "shopfleet.toml", "bench"))
    for path, content in bench.items():
        changed = set(content.splitlines()) ^ set(committed[path].splitlines())
        assert all(RATE_LIMITS.search(line) for line in changed), (path, changed)
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(content)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ComposeProject, str]]:
    build_images()
    directory = tmp_path_factory.mktemp("compose")
    bench_project(directory)
    port = free_port()
    # The secrets as a user provides them: a .env beside the compose files (the PEM key
    # spans lines), nothing of them in the environment.
    (directory / ".env").write_text(
        f"POSTGRES_PASSWORD={uuid.uuid4().hex}\n"
        f"SHOPFLEET_INTERNAL_TOKEN={INTERNAL_TOKEN}\n"
        f'SHOPFLEET_JWT_PRIVATE_KEY="{PRIVATE_PEM}"\n'
        f"SHOPFLEET_GATEWAY_PORT=127.0.0.1:{port}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLEET_")}
    env.pop("POSTGRES_PASSWORD", None)
    project = ComposeProject(name=f"sftest{uuid.uuid4().hex[:8]}", env=env, directory=directory)
    try:
        project.up_in_dependency_order()
        yield project, f"http://127.0.0.1:{port}"
    finally:
        project.remove()


def wait_for_every_service(deployment: ComposeProject, base_url: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    pending = set(SERVICES)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                response = httpx.get(f"{base_url}/docs/{name}/openapi.json", timeout=3)
                if response.status_code == 200:
                    pending.discard(name)
            except httpx.HTTPError:
                pass
        time.sleep(1)
    assert not pending, f"no answer from {sorted(pending)}\n{deployment.diagnostics()}"


def sign_in(base_url: str) -> dict[str, str]:
    email = f"compose-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": "correct-horse-1", "name": "Compose Test"}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        registered = client.post("/v1/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        login = client.post("/v1/auth/login", json={"email": email, "password": body["password"]})
        assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['accessToken']}"}


def instances_seen(base_url: str, path: str, headers: dict[str, str], want: int) -> set[str]:
    """X-Instance values of the replicas answering `path`, polled until `want` differ (the
    gateway re-resolves service names every 5 s)."""
    seen: set[str] = set()
    deadline = time.monotonic() + 90
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        while len(seen) < want and time.monotonic() < deadline:
            response = client.get(path)
            assert response.status_code == 200, response.text
            seen.add(response.headers["x-instance"])
    return seen


def test_compose_runs_the_platform_scales_and_survives_a_killed_replica(
    project: tuple[ComposeProject, str],
) -> None:
    deployment, base_url = project
    wait_for_every_service(deployment, base_url)

    # One migration container, run once, successfully; every service's schema is at head.
    (migrate,) = deployment.containers("migrate", all_states=True)
    state = podman(
        "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", migrate
    )
    assert state.stdout.split() == ["exited", "0", "0"]
    (postgres,) = deployment.containers("postgres")
    for service in SERVICES:
        query = f"SELECT count(*) FROM {service}.alembic_version"  # noqa: S608 (our names)
        rows = podman("exec", postgres, "psql", "-U", "shopfleet", "-d", "shopfleet", "-tAc", query)
        assert rows.stdout.strip() == "1", service

    # Every replica of the scale file runs and passes its Compose healthcheck.
    for service, count in REPLICAS.items():
        containers = deployment.containers(service)
        assert len(containers) == count, (service, containers)
        for container in containers:
            deployment.wait_healthy(container)
    deployment.wait_healthy(deployment.containers("gateway")[0])

    # The API through the gateway; a token signed by one auth replica is valid at all.
    headers = sign_in(base_url)
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for path in ("/v1/auth/me", "/v1/users/me", "/v1/categories", "/v1/products", "/v1/orders"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
        internal = client.get("/internal/auth/accounts")
        assert internal.status_code == 404, "the public listener never routes internal paths"
    assert len(instances_seen(base_url, "/v1/auth/me", headers, want=3)) == 3

    # Scale products to five: the gateway finds the new replicas by name.
    deployment.compose("up", "-d", "--no-deps", "--scale", "products=5", "products")
    products = deployment.containers("products")
    assert len(products) == 5
    for container in products:
        deployment.wait_healthy(container)
    # Signed-in reads bypass the gateway's micro-cache, so every one reaches a replica.
    seen = instances_seen(base_url, "/v1/products", headers, want=5)
    assert len(seen) == 5, seen

    # Kill one replica (SIGKILL, no drain) under a steady load of idempotent reads.
    async def kill_under_load() -> tuple[int, int, Counter[str]]:
        url = f"{base_url}/v1/products"
        async with steady_reads(url, headers=headers, concurrency=4, timeout=120) as load:
            await asyncio.sleep(2)
            await asyncio.to_thread(podman, "kill", "--signal", "KILL", products[1])
            await asyncio.sleep(8)
        return load.sent, load.failures, load.errors

    sent, failures, errors = asyncio.run(kill_under_load())
    assert failures == 0, f"{failures} of {sent} reads failed: {dict(errors)}"
    assert sent > 50
    print(f"killed {products[1]} under load: {sent} reads, none failed")
