"""PM2: the committed ecosystem as Node.js reads it, and PM2 for real: the rendered
ecosystem starts every instance, the gateway answers, and a rolling `pm2 reload` under load
drops no request.

The real run is in the deployment CI step (scripts/ci-containers) because it installs PM2
from npm. Its ecosystem is rendered from the `bench` profile (no rate limits in the way of
the load) with every port moved to a free range, into a temporary repository layout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopfleet.bench.platform import port_free
from shopfleet.deploy.render import pm2
from shopfleet.deploy.topology import Topology, load_topology
from tests.conftest import unique_email
from tests.e2e.load import steady_reads
from tests.support import INTERNAL_TOKEN, PRIVATE_PEM, REPO_ROOT

PM2_PACKAGE = "pm2@7"


def shifted_topology() -> Topology:
    """The bench profile with every instance, gateway and Redis port in a free range."""
    topology = load_topology(REPO_ROOT / "shopfleet.toml", "bench")
    services = topology.ordered_services()
    span = 10 * max(s.instances for s in services) + len(services) + 3
    for _ in range(50):
        base = random.randrange(20000, 40000, 100)
        if all(port_free(port) for port in range(base, base + span)):
            break
    else:
        raise RuntimeError("no free port range")
    extra = base + span - 3
    return topology.model_copy(
        update={
            "services": {
                s.name: s.model_copy(update={"port": base + i}) for i, s in enumerate(services)
            },
            "gateway": topology.gateway.model_copy(
                update={"public_port": extra, "internal_port": extra + 1}
            ),
            "local": topology.local.model_copy(update={"redis_port": extra + 2}),
        }
    )


@dataclass
class Pm2:
    binary: Path
    root: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"pm2 {' '.join(args)}: {result.stdout}\n{result.stderr}")
        return result

    def apps(self) -> dict[str, dict[str, Any]]:
        listed = json.loads(self.run("jlist").stdout)
        return {app["name"]: app for app in listed}


@pytest.fixture(scope="module")
def pm2_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("pm2-package")
    subprocess.run(
        ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", PM2_PACKAGE],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return prefix / "node_modules" / ".bin" / "pm2"


@pytest.fixture
def deployment(pm2_binary: Path, tmp_path: Path) -> Iterator[tuple[Pm2, Topology]]:
    """A repository-shaped folder with the rendered ecosystem and gateway config, migrated."""
    topology = shifted_topology()
    root = tmp_path / "repo"
    (root / "deploy" / "pm2").mkdir(parents=True)
    (root / ".venv").symlink_to(REPO_ROOT / ".venv")
    (root / pm2.COMMITTED_PATH).write_text(pm2.render_ecosystem(topology))
    # A root master would run nginx's workers as `nobody`, who cannot write under tmp_path.
    worker_user = "root" if os.geteuid() == 0 else None
    (root / pm2.GATEWAY_CONF).write_text(pm2.render_gateway(topology, worker_user=worker_user))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPFLEET_", "PM2_"))}
    env.update(
        PM2_HOME=str(tmp_path / "pm2-home"),
        SHOPFLEET_INTERNAL_TOKEN=INTERNAL_TOKEN,
        SHOPFLEET_JWT_PRIVATE_KEY=PRIVATE_PEM,
        SHOPFLEET_ARGON2_TIME_COST="1",
        SHOPFLEET_ARGON2_MEMORY_COST="1024",
        SHOPFLEET_ARGON2_PARALLELISM="1",
        SHOPFLEET_ACCESS_LOG="false",
    )
    subprocess.run(
        [str(root / ".venv" / "bin" / "shopfleet"), "migrate", "all"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    manager = Pm2(pm2_binary, root, env)
    try:
        yield manager, topology
    finally:
        manager.run("delete", "all", check=False)
        manager.run("kill", check=False)
        shutil.rmtree(tmp_path / "pm2-home", ignore_errors=True)


def wait_for_gateway(base_url: str, timeout: float = 120) -> None:
    """Every service answers through the gateway (each has at least one ready instance)."""
    deadline = time.monotonic() + timeout
    pending = {"auth", "users", "categories", "products", "orders"}
    paths = {name: f"/docs/{name}/openapi.json" for name in pending}
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                if httpx.get(base_url + paths[name], timeout=2).status_code == 200:
                    pending.discard(name)
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    assert not pending, f"no answer through the gateway from {sorted(pending)}"


def sign_up(base_url: str) -> dict[str, str]:
    email = unique_email("pm2")
    with httpx.Client(base_url=base_url, timeout=10) as client:
        body = {"email": email, "password": "correct-horse-1", "name": "PM2 Test"}
        assert client.post("/v1/auth/register", json=body).status_code == 201
        login = client.post("/v1/auth/login", json={"email": email, "password": body["password"]})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['accessToken']}"}


def node_apps(root: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The apps of root/ecosystem.config.js, as PM2 (Node.js) evaluates the file."""
    script = "console.log(JSON.stringify(require(process.argv[1]).apps))"
    result = subprocess.run(
        ["node", "-e", script, str(root / pm2.COMMITTED_PATH)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    apps: list[dict[str, Any]] = json.loads(result.stdout)
    return apps


def test_committed_ecosystem_runs_one_fork_app_per_instance(tmp_path: Path) -> None:
    topology = load_topology(REPO_ROOT / "shopfleet.toml")
    shutil.copy(REPO_ROOT / pm2.COMMITTED_PATH, tmp_path / pm2.COMMITTED_PATH)
    env = {k: v for k, v in os.environ.items() if k != "SHOPFLEET_REDIS_URL"}
    apps = node_apps(tmp_path, env)
    names = [app["name"] for app in apps]
    instances = [app for app in apps if app["namespace"] == pm2.SERVICES_NAMESPACE]
    assert names[0] == "redis" and names[-1] == "gateway"
    assert len(instances) == sum(s.instances for s in topology.ordered_services()) == 13
    for app in instances:
        service, index = app["name"].rsplit("-", 1)
        port = topology.services[service].instance_port(int(index))
        serve = ["serve", service, "--host", "127.0.0.1", "--port", str(port), "--instance", index]
        assert app["args"] == ["-m", "shopfleet", *serve]
        assert app["script"] == str(tmp_path / ".venv" / "bin" / "python")
        assert (app["cwd"], app["interpreter"]) == (str(tmp_path), "none")
        assert (app["instances"], app["exec_mode"]) == (1, "fork")
        assert app["max_memory_restart"] == "500M"
        assert app["kill_timeout"] == topology.process.shutdown_timeout * 1000 + 5000
        assert app["autorestart"] and app["wait_ready"] and app["time"]
        # Only the local gateway (loopback) may say who the client is.
        assert json.loads(app["env"]["SHOPFLEET_TRUSTED_PROXIES"]) == ["127.0.0.1/32"]
        assert app["out_file"] == str(tmp_path / "var/log/pm2" / f"{app['name']}.out.log")
        assert app["error_file"] == str(tmp_path / "var/log/pm2" / f"{app['name']}.error.log")
        assert app["env_production"]["SHOPFLEET_ENVIRONMENT"] == "production"
        assert app["env_production"]["SHOPFLEET_REDIS_URL"] == "redis://127.0.0.1:6390/0"
    # Two instances of one service are never neighbours: PM2 reloads two apps at a time.
    services = [app["name"].rsplit("-", 1)[0] for app in instances]
    assert all(a != b for a, b in itertools.pairwise(services))
    gateway = apps[-1]
    assert gateway["args"][-3:] == [str(tmp_path / pm2.GATEWAY_CONF), "-e", "stderr"]
    assert (tmp_path / "var" / "log" / "pm2").is_dir()
    with_redis = node_apps(tmp_path, {**env, "SHOPFLEET_REDIS_URL": "redis://elsewhere:6379/0"})
    assert "redis" not in [app["name"] for app in with_redis]


@pytest.mark.deploy_live
async def test_ecosystem_runs_every_instance_and_reloads_without_dropping_requests(
    deployment: tuple[Pm2, Topology],
) -> None:
    manager, topology = deployment
    manager.run("start", pm2.COMMITTED_PATH, "--env", "production")
    base_url = f"http://127.0.0.1:{topology.gateway.public_port}"
    wait_for_gateway(base_url)

    apps = manager.apps()
    instances = [
        f"{s.name}-{i}" for s in topology.ordered_services() for i in range(1, s.instances + 1)
    ]
    assert set(apps) == {*instances, "redis", "gateway"}
    assert all(apps[name]["pm2_env"]["status"] == "online" for name in apps), apps.keys()
    assert all(apps[name]["pm2_env"]["SHOPFLEET_ENVIRONMENT"] == "production" for name in instances)

    headers = sign_up(base_url)
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for path in ("/v1/auth/me", "/v1/users/me", "/v1/categories", "/v1/products", "/v1/orders"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
        seen = {client.get("/v1/auth/me").headers["x-instance"] for _ in range(30)}
    assert seen == {"auth-1", "auth-2", "auth-3"}

    restarts_before = {name: apps[name]["pm2_env"]["restart_time"] for name in instances}
    # Signed-in reads skip the gateway's micro-cache, so every one reaches an instance.
    async with steady_reads(f"{base_url}/v1/products", headers=headers, concurrency=6) as load:
        await asyncio.to_thread(manager.run, "reload", pm2.SERVICES_NAMESPACE)
        await asyncio.to_thread(manager.run, "sendSignal", "SIGHUP", "gateway")
    assert load.failures == 0, str(load)
    assert load.sent > 100, str(load)

    apps = manager.apps()
    for name in instances:
        assert apps[name]["pm2_env"]["restart_time"] == restarts_before[name] + 1, name
        assert apps[name]["pm2_env"]["status"] == "online", name
    # nginx and Redis were not restarted by the services' reload.
    assert apps["gateway"]["pm2_env"]["restart_time"] == 0
    assert apps["redis"]["pm2_env"]["restart_time"] == 0

    manager.run("delete", "all")
    with pytest.raises(httpx.ConnectError):
        httpx.get(base_url + "/v1/products", timeout=2)
