"""Test support: databases on both engines, in-process platforms and real processes."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from unittest import mock

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import SecretStr
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shopfleet.bench.platform import SINGLE_PORTS
from shopfleet.bench.platform import free_port as bench_free_port
from shopfleet.common import statements as statements_module
from shopfleet.common.app import Resources
from shopfleet.common.dbmetrics import timer_of
from shopfleet.common.migrations import migrate
from shopfleet.common.settings import SERVICES, Settings
from shopfleet.services import app_factory

POSTGRES_URL = os.environ.get(
    "SHOPFLEET_TEST_POSTGRES_URL", "postgresql+asyncpg://root@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SHOPFLEET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO_ROOT = Path(__file__).resolve().parent.parent

_KEY = Ed25519PrivateKey.generate()
PRIVATE_PEM = _KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
PUBLIC_PEM = (
    _KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
INTERNAL_TOKEN = uuid.uuid4().hex
SCHEMA_PREFIX = f"t{uuid.uuid4().hex[:8]}_"


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float = 10,
    every: float = 0.02,
    explain: Callable[[], str | Awaitable[str]] | None = None,
) -> None:
    """Poll `check` until it holds; fail with its name (and `explain()`) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        if time.monotonic() >= deadline:
            detail = "" if explain is None else explain()
            if not isinstance(detail, str):
                detail = await detail
            name = getattr(check, "__name__", check)
            raise AssertionError(f"{name} not true in {timeout} s. {detail}".rstrip())
        await asyncio.sleep(every)


def free_port() -> int:
    """A free port below the kernel's ephemeral range (shopfleet.bench.platform.free_port),
    from this xdist worker's own slice of it, so two workers never pick the same one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int(worker[2:]) if worker[2:].isdigit() else 0
    width = len(SINGLE_PORTS) // 4
    start = SINGLE_PORTS.start + (number % 4) * width
    return bench_free_port(range(start, start + width))


def base_settings(service: str, backend: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test instance: cheap argon2, shared keys, the chosen database."""
    values: dict[str, Any] = {
        "service": service,
        "instance": f"{service}-1",
        "environment": "test",
        "data_dir": data_dir,
        "argon2_time_cost": 1,
        "argon2_memory_cost": 1024,
        "argon2_parallelism": 1,
        "internal_token": SecretStr(INTERNAL_TOKEN),
        "jwt_public_key": PUBLIC_PEM,
        "access_log": False,
        "internal_url": "http://mesh",
        "sweeper_interval": 3600.0,
    }
    if service == "auth":
        values["jwt_private_key"] = SecretStr(PRIVATE_PEM)
    if backend == "postgres":
        values["database_url"] = POSTGRES_URL
        values["database_schema_prefix"] = SCHEMA_PREFIX
        values["database_pool_size"] = 5
    values.update(overrides)
    return Settings(**values)


def test_env(service: str, backend: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment variables for a `shopfleet serve` process equal to base_settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLEET_")}
    env.update(
        SHOPFLEET_ENVIRONMENT="test",
        SHOPFLEET_DATA_DIR=str(data_dir),
        SHOPFLEET_ARGON2_TIME_COST="1",
        SHOPFLEET_ARGON2_MEMORY_COST="1024",
        SHOPFLEET_ARGON2_PARALLELISM="1",
        SHOPFLEET_INTERNAL_TOKEN=INTERNAL_TOKEN,
        SHOPFLEET_JWT_PUBLIC_KEY=PUBLIC_PEM,
        SHOPFLEET_ACCESS_LOG="false",
    )
    if service == "auth":
        env["SHOPFLEET_JWT_PRIVATE_KEY"] = PRIVATE_PEM
    if backend == "postgres":
        env["SHOPFLEET_DATABASE_URL"] = POSTGRES_URL
        env["SHOPFLEET_DATABASE_SCHEMA_PREFIX"] = SCHEMA_PREFIX
    env.update(extra)
    return env


test_env.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


class Databases:
    """Migrated once per test session; each test starts from empty tables."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sqlite_templates: dict[str, Path] = {}
        self.pg_ready: set[str] = set()
        self.lock = asyncio.Lock()
        # One connection for the whole session empties the tables between tests.
        self.cleaner: AsyncEngine | None = None

    async def prepare(self, service: str, backend: str, data_dir: Path) -> None:
        async with self.lock:
            if backend == "sqlite":
                await self._sqlite(service, data_dir)
            else:
                await self._postgres(service)

    async def _sqlite(self, service: str, data_dir: Path) -> None:
        if service not in self.sqlite_templates:
            template_dir = self.root / "sqlite-templates"
            await migrate(base_settings(service, "sqlite", template_dir), service)
            self.sqlite_templates[service] = template_dir / "data" / f"{service}.db"
        target = data_dir / "data" / f"{service}.db"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.sqlite_templates[service], target)

    async def _postgres(self, service: str) -> None:
        settings = base_settings(service, "postgres", self.root)
        if service not in self.pg_ready:
            await migrate(settings, service)
            self.pg_ready.add(service)
        if self.cleaner is None:
            self.cleaner = create_async_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
        await empty_postgres(self.cleaner, service)

    async def drop_postgres(self) -> None:
        if self.cleaner is not None:
            await self.cleaner.dispose()
        if not self.pg_ready:
            return
        engine = create_async_engine(POSTGRES_URL)
        async with engine.begin() as connection:
            for service in self.pg_ready:
                await connection.execute(
                    text(f'DROP SCHEMA IF EXISTS "{SCHEMA_PREFIX}{service}" CASCADE')
                )
        await engine.dispose()


async def empty_postgres(engine: AsyncEngine, service: str) -> None:
    """Delete every row of a service's tables, children first.

    DELETE, not TRUNCATE: a test leaves a handful of rows, and TRUNCATE's new files and
    exclusive locks cost ~10x more per test (tens of ms against a few on this machine).
    """
    metadata = importlib.import_module(f"shopfleet.{service}.models").Base.metadata
    schema = {None: f"{SCHEMA_PREFIX}{service}"}
    async with engine.begin() as connection:
        in_schema = await connection.execution_options(schema_translate_map=schema)
        for table in reversed(metadata.sorted_tables):
            await in_schema.execute(table.delete())


class MeshTransport(httpx.AsyncBaseTransport):
    """Routes /v1/<service>/... and /internal/<service>/... to in-process apps, like the gateway."""

    def __init__(self) -> None:
        # Each service's app; tests may put a faulty transport in one's place.
        self.apps: dict[str, httpx.AsyncBaseTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")
        service = parts[2] if len(parts) > 2 and parts[1] in ("v1", "internal") else ""
        transport = self.apps.get(service)
        if transport is None:
            return httpx.Response(502, json={"detail": f"no service for {request.url.path}"})
        # A task in a fresh context, like a real network hop: nothing of the caller's context
        # (its SQLite write intent, its current trace span) reaches the callee or comes back;
        # only the headers travel.
        return await asyncio.create_task(
            transport.handle_async_request(request), context=contextvars.Context()
        )


class Hop(httpx.AsyncBaseTransport):
    """One service's own way onto the mesh (tracing instruments a transport per client)."""

    def __init__(self, mesh: MeshTransport) -> None:
        self.mesh = mesh

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.mesh.handle_async_request(request)


@dataclass
class Platform:
    """Several services running in-process, reachable through one client."""

    backend: str
    data_dir: Path
    client: httpx.AsyncClient
    apps: dict[str, FastAPI] = field(default_factory=dict)
    settings: dict[str, Settings] = field(default_factory=dict)
    # The in-process network; tests may wrap a service's transport to inject faults.
    mesh: MeshTransport = field(default_factory=MeshTransport)

    def resources(self, service: str) -> Resources:
        resources: Resources = self.apps[service].state.resources
        return resources

    def instance_client(self, service: str) -> httpx.AsyncClient:
        """A client for one instance's own port (health, metrics, docs)."""
        transport = httpx.ASGITransport(app=self.apps[service])
        return httpx.AsyncClient(transport=transport, base_url=f"http://{service}")


P = TypeVar("P", bound=Platform)


def with_fields(platform: Platform, cls: type[P], **values: Any) -> P:
    """The same running platform as a subclass with a fixture's typed extras (admin, rows)."""
    return cls(**vars(platform), **values)


class MakePlatform(Protocol):
    """The `make_platform` fixture: `async with make_platform("auth", "users") as p:`."""

    def __call__(
        self, *services: str, **overrides: Any
    ) -> contextlib.AbstractAsyncContextManager[Platform]: ...


@contextlib.asynccontextmanager
async def running_platform(
    databases: Databases,
    backend: str,
    data_dir: Path,
    services: Iterable[str],
    app_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Platform]:
    """Start the named services in-process (lifespans included) on fresh tables.

    `overrides` maps a service to its settings' changes; `app_options` goes to every app.
    """
    mesh = MeshTransport()
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=mesh, base_url="http://gateway")
        )
        platform = Platform(backend=backend, data_dir=data_dir, client=client, mesh=mesh)
        for service in services:
            await databases.prepare(service, backend, data_dir)
            settings = base_settings(service, backend, data_dir, **overrides.get(service, {}))
            app = app_factory(service)(settings, http_transport=Hop(mesh), **(app_options or {}))
            await stack.enter_async_context(app.router.lifespan_context(app))
            mesh.apps[service] = httpx.ASGITransport(app=app)
            platform.apps[service] = app
            platform.settings[service] = settings
        yield platform


@dataclass
class ServiceProcess:
    """A real `shopfleet serve` process."""

    service: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 35) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)


def start_service(
    service: str,
    *,
    env: dict[str, str],
    log_dir: Path,
    instance: int = 1,
    port: int | None = None,
    wait: bool = True,
) -> ServiceProcess:
    """Start `shopfleet serve` as a process and wait until it reports ready."""
    port = port or free_port()
    log_path = log_dir / f"{service}-{instance}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shopfleet",
            "serve",
            service,
            "--port",
            str(port),
            "--instance",
            str(instance),
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=str(log_dir),
    )
    log_file.close()
    proc = ServiceProcess(service, port, process, log_path)
    if wait:
        wait_ready(proc)
    return proc


def wait_ready(proc: ServiceProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.service} exited early:\n{proc.log()}")
        try:
            if httpx.get(f"{proc.url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"{proc.service} not ready in {timeout}s:\n{proc.log()}")


# Who calls whom when the five services run as processes without a gateway.
SERVICE_CALLS = {
    "users": "auth",
    "categories": "products",
    "products": "categories",
    "orders": "products",
}


@contextlib.contextmanager
def five_services(
    root: Path,
    env_for: Callable[[str, dict[str, int]], dict[str, str]],
    *,
    admin_email: str,
    admin_password: str,
) -> Iterator[dict[str, ServiceProcess]]:
    """Every service as a real process, each calling the next directly, with an admin.

    `env_for(service, ports)` gives a service's environment; migrations run all at once.
    """
    ports = {service: free_port() for service in SERVICES}

    def env(service: str) -> dict[str, str]:
        values = env_for(service, ports)
        if service in SERVICE_CALLS:
            values["SHOPFLEET_INTERNAL_URL"] = f"http://127.0.0.1:{ports[SERVICE_CALLS[service]]}"
        return values

    running: dict[str, ServiceProcess] = {}
    try:
        migrations = [
            subprocess.Popen(
                [sys.executable, "-m", "shopfleet", "migrate", service],
                env=env(service),
                cwd=root,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for service in SERVICES
        ]
        for migration in migrations:
            _, stderr = migration.communicate(timeout=120)
            assert migration.returncode == 0, stderr.decode()
        for service in SERVICES:
            running[service] = start_service(
                service, env=env(service), log_dir=root, port=ports[service], wait=False
            )
        for proc in running.values():
            wait_ready(proc)
        subprocess.run(
            [sys.executable, "-m", "shopfleet", "create-admin", "--email", admin_email,
             "--password-stdin"],
            env=env("auth"),
            cwd=root,
            input=f"{admin_password}\n".encode(),
            check=True,
            capture_output=True,
        )  # fmt: skip
        yield running
    finally:
        for proc in running.values():
            proc.terminate()


def api_routes(router: Any) -> Iterator[APIRoute]:
    """Every APIRoute of an app's router, however FastAPI wraps included routers."""
    seen: set[int] = set()
    for route in _walk_routes(router):
        if id(route) not in seen:
            seen.add(id(route))
            yield route


def _walk_routes(router: Any) -> Iterator[APIRoute]:
    for route in getattr(router, "routes", []):
        if isinstance(route, APIRoute):
            yield route
        else:  # an included router
            for attribute in ("router", "app", "original_router"):
                inner = getattr(route, attribute, None)
                if inner is not None and inner is not route:
                    yield from _walk_routes(inner)


@contextlib.contextmanager
def sent_statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement `engine` sends, with its parameters, while the block runs.

    Both ways a statement leaves: SQLAlchemy's execution (its before_cursor_execute
    event) and straight on the driver (common/statements.py, which fires no events).
    """
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    original = statements_module._OnDriver.rows
    timer = timer_of(engine)

    async def rows(self: Any, statement: Any, params: Any) -> Any:
        if self.timer is timer:
            compiled = statements_module._compiled(statement, self.dialect)
            sent.append((compiled.sql, compiled.arguments(params)))
        return await original(self, statement, params)

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        with mock.patch.object(statements_module._OnDriver, "rows", rows):
            yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)


def _redis_commands(app: Any) -> dict[str, float]:
    return {
        sample.labels["operation"]: sample.value
        for family in app.state.metrics.registry.collect()
        if family.name == "redis_command_duration_seconds"
        for sample in family.samples
        if sample.name.endswith("_count")
    }


@contextlib.contextmanager
def redis_round_trips(app: Any) -> Iterator[dict[str, float]]:
    """The Redis round trips an instance makes within the block, by operation (its own
    metric): filled in when the block ends."""
    made: dict[str, float] = {}
    before = _redis_commands(app)
    yield made
    after = _redis_commands(app)
    made.update({op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)})
