"""A private platform for one bench run: shifted ports, its own var/, schemas and keys.

A user's own platform (8080, 3000-3099, var/) is never touched: the run's topology is the
repository's with every port moved to a free one, its PostgreSQL schemas and Redis keys
carry a random prefix, and `teardown` removes all of it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis import asyncio as redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shopfleet.common.settings import SERVICES, Settings
from shopfleet.deploy.operator.local import instance_ports
from shopfleet.deploy.operator.runtime import RunDir, RunState
from shopfleet.deploy.topology import Topology

MAX_INSTANCES = 4  # per service: the port block leaves room for scaling up to this
# 13 instances x 4 connections stay well inside PostgreSQL's default max_connections=100.
POOL_SIZE = 4
# Tokens are issued once before the load; they must outlive the longest run.
TOKEN_TTL = 7200


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Single ports (the gateway's, Redis's, the floor app's) come from below the instance
# blocks of free_base_port, which start at 20000.
SINGLE_PORTS = range(10000, 20000)
_handed_out: set[int] = set()


def free_port(ports: range = SINGLE_PORTS) -> int:
    """A port of `ports` free now that this process has not handed out before.

    Not the kernel's choice (bind to port 0): that comes from the ephemeral range, where
    an outgoing connection can take it before its server binds it ("ports already in
    use" failed a test run once), as for free_base_port.
    """
    for _ in range(1000):
        port = random.randrange(ports.start, ports.stop)
        if port not in _handed_out and port_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port between {ports.start} and {ports.stop - 1}")


def ephemeral_port_start() -> int:
    """The first port the kernel hands to outgoing connections (Linux), else 32768."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_base_port(max_instances: int = MAX_INSTANCES) -> int:
    """A base B with B + s + 10 * k free for every service s and instance k.

    Below the ephemeral range: a port that is free when chosen there can be taken by any
    outgoing connection (to PostgreSQL, Redis, another instance) before its instance
    binds it, which failed a whole run once ("address already in use").
    """
    span = len(SERVICES) + 10 * max_instances
    top = max(20000 + 100, ephemeral_port_start() - span)
    for _ in range(200):
        base = random.randrange(20000, top, 100)
        ports = [base + s + 10 * k for s in range(len(SERVICES)) for k in range(max_instances)]
        if all(port_free(port) for port in ports):
            return base
    raise RuntimeError(f"no free block of ports between 20000 and {top + span}")


def toml_value(value: Any) -> str:
    """TOML for plain data: tables inline, strings as JSON strings (valid TOML)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def write_bench_topology(source: Path, directory: Path, *, floor_port: int) -> Path:
    """`source` with every port moved to a free one and the bench references switched on."""
    data = tomllib.loads(source.read_text())
    if "bench" not in data.get("profiles", {}):
        raise ValueError(f"{source} has no [profiles.bench]: the bench needs its raised limits")
    base = free_base_port()
    for offset, name in enumerate(SERVICES):
        data["services"][name]["port"] = base + offset
    data["gateway"].update(
        public_port=free_port(), internal_port=free_port(), https_port=free_port()
    )
    bench_gateway = data["profiles"]["bench"].setdefault("gateway", {})
    bench_gateway["bench"] = {"floor_port": floor_port}
    data["local"] = {"redis_port": free_port()}
    # Pool sizes reach the instances from the topology (the connection budget), not the env.
    data.setdefault("database", {})["pool_size"] = POOL_SIZE
    path = directory / "shopfleet.toml"
    path.write_text("".join(f"{key} = {toml_value(value)}\n" for key, value in data.items()))
    return path


@dataclass
class BenchPlatform:
    """One `shopfleet up --profile bench` in a temporary directory, on PostgreSQL and Redis."""

    root: Path
    topology_path: Path
    database_url: str
    redis_url: str
    floor_port: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    floor: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(
        cls, *, root: Path, source_topology: Path, database_url: str, redis_url: str
    ) -> BenchPlatform:
        floor_port = free_port()
        topology = write_bench_topology(source_topology, root, floor_port=floor_port)
        return cls(root, topology, database_url, redis_url, floor_port)

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def schema_prefix(self) -> str:
        return f"bench{self.token}_"

    @property
    def redis_prefix(self) -> str:
        return f"bench:{self.token}:"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLEET_")}
        env.update(
            SHOPFLEET_DATA_DIR=str(self.var),
            SHOPFLEET_DATABASE_URL=self.database_url,
            SHOPFLEET_DATABASE_SCHEMA_PREFIX=self.schema_prefix,
            SHOPFLEET_REDIS_URL=self.redis_url,
            SHOPFLEET_REDIS_KEY_PREFIX=self.redis_prefix,
            SHOPFLEET_ACCESS_TOKEN_TTL=str(TOKEN_TTL),
        )
        return env

    def settings(self, service: str) -> Settings:
        """The settings the instances of `service` run with (for direct database reads)."""
        return Settings(
            service=service,
            data_dir=self.var,
            database_url=self.database_url,
            database_schema_prefix=self.schema_prefix,
            redis_url=self.redis_url,
            redis_key_prefix=self.redis_prefix,
        )

    def cli(
        self, *args: str, stdin: str | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603 (our own interpreter and command)
            [sys.executable, "-m", "shopfleet", *args],
            cwd=self.root,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"shopfleet {args[0]} exited {result.returncode}:\n{result.stdout}\n"
                f"{result.stderr}\n{self.logs_tail()}"
            )
        return result

    def up(self) -> None:
        self.cli(
            "up", "-d", "--profile", "bench", "--topology", str(self.topology_path),
            "--var", str(self.var),
        )  # fmt: skip

    def scale(self, service: str, count: int) -> None:
        self.cli("scale", f"{service}={count}", "--var", str(self.var))

    def topology(self) -> Topology:
        """The live topology (instance counts as scaled)."""
        return RunState.load(RunDir(self.var)).topology_now()

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.topology().gateway.public_port}"

    def instances(self, service: str | None = None) -> dict[str, int]:
        """Instance name -> port, of one service or of all."""
        ports = instance_ports(self.topology())
        return {
            name: port
            for name, port in ports.items()
            if service is None or name.rsplit("-", 1)[0] == service
        }

    def process_groups(self) -> dict[str, list[int]]:
        """Pids by group: each service's instances, nginx (with workers), the floor app."""
        from shopfleet.bench.cpu import with_children
        from shopfleet.deploy.operator.runtime import Supervisor

        groups: dict[str, list[int]] = {}
        for info in Supervisor(RunDir(self.var)).processes():
            name, pid = info["name"], info["pid"]
            if not pid or name == "memmon":
                continue
            group = name if name == "nginx" else name.rsplit("-", 1)[0]
            groups.setdefault(group, []).extend(with_children([pid]))
        if self.floor is not None:
            groups["floor"] = [self.floor.pid]
        return groups

    def start_floor(self, timeout: float = 30) -> None:
        log = (self.root / "floor.log").open("wb")
        self.floor = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "shopfleet.bench.floor_app", str(self.floor_port)],
            cwd=self.root,
            env={**self.env, "SHOPFLEET_LOG_LEVEL": "WARNING"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{self.floor_port}/health/ready"
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.floor.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"the floor app did not start:\n{self.logs_tail()}")

    def stop_floor(self) -> None:
        if self.floor is not None and self.floor.poll() is None:
            self.floor.terminate()
            try:
                self.floor.wait(20)
            except subprocess.TimeoutExpired:
                self.floor.kill()
                self.floor.wait(10)
        self.floor = None

    def logs_tail(self, lines: int = 12) -> str:
        out = []
        for path in sorted([*self.var.glob("log/*.log"), *self.root.glob("*.log")]):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def down(self) -> None:
        from shopfleet.deploy.operator import local

        local.down(run_dir=RunDir(self.var), echo=lambda _: None)

    async def drop_backends(self) -> None:
        """Drop this run's schemas and delete its Redis keys (SCAN: teardown only)."""
        engine = create_async_engine(self.database_url)
        try:
            async with engine.begin() as connection:
                for service in SERVICES:
                    schema = f"{self.schema_prefix}{service}"
                    await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await engine.dispose()
        client = redis.Redis.from_url(self.redis_url)
        try:
            batch: list[bytes] = []
            async for key in client.scan_iter(match=f"{self.redis_prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await client.delete(*batch)
                    batch.clear()
            if batch:
                await client.delete(*batch)
        finally:
            await client.aclose()

    async def teardown(self) -> None:
        """Stop everything this run started and remove its data; never raises half-way."""
        errors: list[str] = []
        for step in (self.down, self.stop_floor):
            try:
                step()
            except Exception as exc:
                errors.append(f"{step.__name__}: {exc!r}")
        try:
            await self.drop_backends()
        except Exception as exc:
            errors.append(f"drop_backends: {exc!r}")
        if not errors:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            raise RuntimeError("teardown incomplete: " + "; ".join(errors))
