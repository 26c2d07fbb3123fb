"""Issue 11, finding 1: a PostgreSQL out of connections gives 503s, never 500s, and recovers.

A private server with a low max_connections; real `shopfleet serve` instances whose pools
together want more than it has (as 13 x 10 > 100 did), under concurrent load. A list
query takes well under a millisecond, so load alone may never need a second connection;
the test holds a lock on the products table for a moment, so every request keeps its
connection and each pool must grow to its size, as on a day of slow queries.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.private_postgres import PrivateServer, private_postgres
from tests.support import REPO_ROOT, ServiceProcess, eventually, start_service, test_env

MAX_CONNECTIONS = 20
RESERVED_FOR_SUPERUSER = 3  # the test's own view of the server always gets in
INSTANCES = 3
POOL_SIZE = 8  # 3 x 8 = 24 > the 17 the application role may open
POOL_MIN = 1
IDLE_TIMEOUT = 2
APP_ROLE = "shopfleet_app"


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateServer]:
    with private_postgres(
        max_connections=MAX_CONNECTIONS, superuser_reserved=RESERVED_FOR_SUPERUSER
    ) as pg:

        async def _role() -> None:
            connection = await asyncpg.connect(pg.dsn)
            try:
                await connection.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
                await connection.execute(f"GRANT CREATE ON DATABASE postgres TO {APP_ROLE}")
            finally:
                await connection.close()

        asyncio.run(_role())
        yield pg


def _app_url(server: PrivateServer) -> str:
    return f"postgresql+asyncpg://{APP_ROLE}@127.0.0.1:{server.port}/postgres"


def _env(server: PrivateServer, data_dir: Path) -> dict[str, str]:
    return test_env(
        "products",
        "sqlite",
        data_dir,
        SHOPFLEET_DATABASE_URL=_app_url(server),
        SHOPFLEET_DATABASE_POOL_SIZE=str(POOL_SIZE),
        SHOPFLEET_DATABASE_POOL_MIN=str(POOL_MIN),
        SHOPFLEET_DATABASE_IDLE_TIMEOUT=str(IDLE_TIMEOUT),
        SHOPFLEET_DATABASE_POOL_TIMEOUT="2",
        SHOPFLEET_CACHE_ENABLED="false",
        SHOPFLEET_RATE_LIMIT_ENABLED="false",
    )


def _migrate(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shopfleet", "migrate", "products"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _app_connections(server: PrivateServer) -> int:
    connection = await asyncpg.connect(server.dsn)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", APP_ROLE
        )
        return count
    finally:
        await connection.close()


async def _load(urls: list[str], *, per_instance: int, seconds: float) -> Counter[int]:
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=per_instance * len(urls))
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:

        async def worker(url: str) -> None:
            while time.monotonic() < deadline:
                response = await client.get(f"{url}/v1/products", params={"limit": 50})
                statuses[response.status_code] += 1
                if response.status_code == 503:
                    assert response.headers["content-type"] == "application/problem+json"
                    assert response.headers["retry-after"].isdigit()

        await asyncio.gather(*(worker(url) for url in urls for _ in range(per_instance)))
    return statuses


async def _slow_queries(server: PrivateServer, *, after: float, hold: float) -> None:
    """Block every read of the products table for `hold` seconds, `after` seconds from now."""
    await asyncio.sleep(after)
    connection = await asyncpg.connect(server.dsn)
    try:
        async with connection.transaction():
            schema = await connection.fetchval(
                "SELECT schemaname FROM pg_tables WHERE tablename = 'products'"
            )
            await connection.execute(f'LOCK TABLE "{schema}".products IN ACCESS EXCLUSIVE MODE')
            await asyncio.sleep(hold)
    finally:
        await connection.close()


async def _serve_statuses(url: str, count: int) -> Counter[int]:
    async with httpx.AsyncClient(timeout=10) as client:
        return Counter([(await client.get(f"{url}/v1/products")).status_code for _ in range(count)])


async def _ready_status(url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"{url}/health/ready")).status_code


async def test_a_full_database_gives_503_and_every_pool_gives_back(
    server: PrivateServer, tmp_path: Path
) -> None:
    env = _env(server, tmp_path)
    migrated = _migrate(env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    instances: list[ServiceProcess] = []
    try:
        for index in range(1, INSTANCES + 1):
            instances.append(start_service("products", env=env, log_dir=tmp_path, instance=index))
        urls = [p.url for p in instances]
        statuses, _ = await asyncio.gather(
            _load(urls, per_instance=24, seconds=4), _slow_queries(server, after=0.5, hold=1.5)
        )
        print(f"load: {dict(statuses)}")
        # The pools wanted more than the server has: some requests were refused...
        assert statuses[503] > 0, statuses
        # ...as 503 problems, never as 500s, and the rest were served.
        assert statuses[500] == 0, statuses
        assert statuses[200] > 0, statuses

        # Once idle, every pool shrinks to its floor: the server's slots come back.
        floor = INSTANCES * POOL_MIN
        await eventually(
            lambda: _shrunk(server, floor),
            timeout=IDLE_TIMEOUT * 3 + 5,
            every=0.25,
            explain=lambda: _still_open(server, floor),
        )

        # A new instance serves, and migrations connect.
        fresh = start_service("products", env=env, log_dir=tmp_path, instance=INSTANCES + 1)
        instances.append(fresh)
        served = await _serve_statuses(fresh.url, 20)
        print(f"new instance: {dict(served)}")
        assert served == Counter({200: 20})
        again = _migrate(env, tmp_path)
        assert again.returncode == 0, again.stderr
    finally:
        for process in instances:
            process.terminate()


async def _shrunk(server: PrivateServer, floor: int) -> bool:
    return await _app_connections(server) <= floor


async def _still_open(server: PrivateServer, floor: int) -> str:
    return f"still {await _app_connections(server)} connections, floor {floor}"


async def test_readiness_fails_while_no_connection_can_be_had(
    server: PrivateServer, tmp_path: Path
) -> None:
    env = _env(server, tmp_path)
    assert _migrate(env, tmp_path).returncode == 0
    # Someone else holds every slot the application role may use.
    hogs = [
        await asyncpg.connect(f"postgresql://{APP_ROLE}@127.0.0.1:{server.port}/postgres")
        for _ in range(MAX_CONNECTIONS - RESERVED_FOR_SUPERUSER)
    ]
    instance = start_service("products", env=env, log_dir=tmp_path, wait=False)
    try:
        # It starts (live) but stays out of rotation, and answers 503, not 500.
        await eventually(lambda: _live(instance.url), timeout=30, every=0.25, explain=instance.log)
        assert await _ready_status(instance.url) == 503
        served = await _serve_statuses(instance.url, 3)
        assert served == Counter({503: 3})
        for hog in hogs:
            await hog.close()
        hogs = []
        # Ready again as soon as it can connect (the probe result is cached ~1 s).
        await eventually(lambda: _is_ready(instance.url), timeout=10, every=0.25)
        assert await _serve_statuses(instance.url, 5) == Counter({200: 5})
    finally:
        for hog in hogs:
            await hog.close()
        instance.terminate()


async def _live(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"{url}/health/live")).status_code == 200
    except httpx.HTTPError:
        return False


async def _is_ready(url: str) -> bool:
    return await _ready_status(url) == 200


def test_up_refuses_a_topology_the_server_cannot_hold(
    server: PrivateServer, tmp_path: Path
) -> None:
    # The seed fits its own assumption (78 <= 100 - 10), not this server's 20.
    env = _env(server, tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shopfleet",
            "up",
            "--detach",
            "--topology",
            str(REPO_ROOT / "shopfleet.toml"),
            "--var",
            str(tmp_path / "var"),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: connection budget exceeded: 13 instances may open 78"), line
    assert f"the server's max_connections {MAX_CONNECTIONS} - 10 reserved" in line
    assert not (tmp_path / "var" / "run").exists()  # nothing rendered, nothing started
