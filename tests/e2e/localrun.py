"""A private local run for end-to-end tests: shifted ports, its own var/, real processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from redis import asyncio as redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shopfleet.bench.platform import free_base_port, toml_value
from shopfleet.common.settings import SERVICES
from shopfleet.deploy.operator.runtime import RunDir, Supervisor
from shopfleet.deploy.topology import Topology, load_topology
from tests.support import POSTGRES_URL, REDIS_URL, REPO_ROOT, free_port

MONITORING_PORTS = (
    "prometheus",
    "alertmanager",
    "redis_exporter",
    "postgres_exporter",
    "nginx_exporter",
)
MAX_INSTANCES = 6  # per service: the base ports leave room for scaling up to this


def _toml_tables(data: dict[str, Any], path: str) -> Iterator[str]:
    """Dicts of scalars become inline tables; dicts holding dicts become [tables]."""

    def nested(value: Any) -> bool:
        return isinstance(value, dict) and any(isinstance(v, dict) for v in value.values())

    scalars = {k: v for k, v in data.items() if not nested(v)}
    if path and scalars:
        yield f"[{path}]"
    for key, value in scalars.items():
        yield f"{key} = {toml_value(value)}"
    for key, value in data.items():
        if nested(value):
            yield from _toml_tables(value, f"{path}.{key}" if path else key)


def write_topology(
    directory: Path,
    *,
    instances: dict[str, int] | None = None,
    gateway: dict[str, Any] | None = None,
    process: dict[str, Any] | None = None,
    services: dict[str, dict[str, Any]] | None = None,
    autoscaling: dict[str, Any] | None = None,
    database: dict[str, Any] | None = None,
) -> Path:
    """The repository's topology with every port moved to a free one, plus overrides."""
    data = tomllib.loads((REPO_ROOT / "shopfleet.toml").read_text())
    base = free_base_port(MAX_INSTANCES)
    for offset, name in enumerate(SERVICES):
        data["services"][name]["port"] = base + offset
        if instances is not None:
            data["services"][name]["instances"] = instances.get(name, 0)
    data["gateway"].update(
        public_port=free_port(), internal_port=free_port(), https_port=free_port()
    )
    data["gateway"].update(gateway or {})
    data["process"].update(process or {})
    for name, changes in (services or {}).items():
        data["services"][name].update(changes)
    data["autoscaling"].update(autoscaling or {})
    data["local"] = {"redis_port": free_port()}
    data.setdefault("monitoring", {}).update(
        {f"{name}_port": free_port() for name in MONITORING_PORTS}
    )
    # Small pools: e2e runs share the test PostgreSQL (pool sizes come from the topology).
    data["database"]["pool_size"] = 2
    data["database"].update(database or {})
    path = directory / "shopfleet.toml"
    path.write_text("\n".join(_toml_tables(data, "")) + "\n")
    return path


def base_env(var: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLEET_")}
    env.update(
        SHOPFLEET_DATA_DIR=str(var),
        SHOPFLEET_ARGON2_TIME_COST="1",
        SHOPFLEET_ARGON2_MEMORY_COST="1024",
        SHOPFLEET_ARGON2_PARALLELISM="1",
    )
    env.update(extra)
    return env


@dataclass
class LocalRun:
    """One `shopfleet up` in a temporary directory."""

    root: Path
    topology_path: Path
    env: dict[str, str]
    profile: str = "default"

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def topology(self) -> Topology:
        return load_topology(self.topology_path, self.profile)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.topology.gateway.public_port}"

    @property
    def internal(self) -> str:
        gateway = self.topology.gateway
        return f"http://{gateway.internal_host}:{gateway.internal_port}"

    @property
    def supervisor(self) -> Supervisor:
        return Supervisor(RunDir(self.var))

    def cli(
        self, *args: str, timeout: float = 300, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "shopfleet", *args],
            cwd=self.root,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"shopfleet {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}\n{self.logs_tail()}"
            )
        return result

    def up(self, *options: str) -> subprocess.CompletedProcess[str]:
        return self.cli(
            "up", "-d", "--profile", self.profile, "--topology", str(self.topology_path), *options
        )

    @contextlib.contextmanager
    def running(self, *options: str) -> Iterator[subprocess.CompletedProcess[str]]:
        """`up` for the block (with `options`), then `down`, which must leave no process."""
        try:
            yield self.up(*options)
        finally:
            pids = self.pids()
            self.down()
            assert alive(pids) == [], "processes survived `shopfleet down`"

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.cli("down", timeout=120)

    def pids(self) -> list[int]:
        """supervisord, every process it runs, and their children (nginx workers)."""
        if not self.supervisor.alive():
            return []
        roots = [int(self.supervisor.rpc.getPID())]
        roots += [info["pid"] for info in self.supervisor.processes() if info["pid"]]
        found = list(roots)
        for pid in roots:
            try:
                found += [p.pid for p in psutil.Process(pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return found

    def pid_of(self, program: str) -> int:
        return int(self.supervisor.info(program)["pid"])

    def logs_tail(self, lines: int = 15) -> str:
        out = []
        for path in sorted((self.var / "log").glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)


def alive(pids: list[int]) -> list[int]:
    survivors = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                survivors.append(pid)
        except psutil.NoSuchProcess:
            continue
    return survivors


class Backends:
    """PostgreSQL schemas and Redis keys private to one run, removed afterwards."""

    def __init__(self) -> None:
        token = uuid.uuid4().hex[:8]
        self.schema_prefix = f"e2e{token}_"
        self.redis_prefix = f"e2e:{token}:"

    def env(self) -> dict[str, str]:
        return {
            "SHOPFLEET_DATABASE_URL": POSTGRES_URL,
            "SHOPFLEET_DATABASE_SCHEMA_PREFIX": self.schema_prefix,
            "SHOPFLEET_REDIS_URL": REDIS_URL,
            "SHOPFLEET_REDIS_KEY_PREFIX": self.redis_prefix,
        }

    async def drop(self) -> None:
        engine = create_async_engine(POSTGRES_URL)
        async with engine.begin() as connection:
            for service in SERVICES:
                await connection.execute(
                    text(f'DROP SCHEMA IF EXISTS "{self.schema_prefix}{service}" CASCADE')
                )
        await engine.dispose()
        client = redis.Redis.from_url(REDIS_URL)
        async for key in client.scan_iter(match=f"{self.redis_prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()
