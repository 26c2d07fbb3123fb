"""`shopfleet top`: the live per-instance view of a local run, read from `/metrics`.

No Prometheus needed: every refresh reads each instance's `/metrics`, Redis' INFO,
PostgreSQL's activity and nginx's stub_status, and turns two readings into rates.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.table import Table

from shopfleet.deploy.operator.local import instance_ports
from shopfleet.deploy.operator.runtime import RunDir, RunState, Supervisor

# The operator's own probes are not traffic.
_NOT_TRAFFIC = ("/metrics", "/health", "/health/live", "/health/ready")


@dataclass
class InstanceReading:
    """One instance's counters at one moment (cumulative, as /metrics reports them)."""

    requests: float = 0.0
    server_errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)
    cpu_seconds: float | None = None
    rss_bytes: float | None = None
    pool_in_use: float | None = None
    cache_hits: float = 0.0
    cache_misses: float = 0.0


def parse_metrics(text: str) -> InstanceReading:
    """Sum an instance's request counters and latency buckets over routes (not probes)."""
    reading = InstanceReading()
    buckets: dict[float, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("route") in _NOT_TRAFFIC:
                continue
            if sample.name == "http_requests_total":
                reading.requests += sample.value
                if labels.get("status", "").startswith("5"):
                    reading.server_errors += sample.value
            elif sample.name == "http_request_duration_seconds_bucket":
                buckets[float(labels["le"])] += sample.value
            elif sample.name == "process_cpu_seconds_total":
                reading.cpu_seconds = sample.value
            elif sample.name == "process_resident_memory_bytes":
                reading.rss_bytes = sample.value
            elif sample.name == "db_pool_connections_in_use":
                reading.pool_in_use = sample.value
            elif sample.name == "cache_requests_total":
                if labels.get("result") == "hit":
                    reading.cache_hits += sample.value
                else:
                    reading.cache_misses += sample.value
    reading.buckets = dict(sorted(buckets.items()))
    return reading


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets (linear within a bucket)."""
    if not buckets:
        return None
    total = buckets.get(math.inf, max(buckets.values()))
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets.items():
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass(frozen=True)
class InstanceRow:
    name: str
    state: str
    requests_per_second: float | None
    p50: float | None
    p99: float | None
    errors_per_second: float | None
    cpu_percent: float | None
    rss_mb: float | None
    pool_in_use: float | None
    cache_hit_ratio: float | None


def instance_row(
    name: str, state: str, before: InstanceReading | None, after: InstanceReading | None, dt: float
) -> InstanceRow:
    """Rates between two readings; totals since start when only one exists."""
    if after is None:
        return InstanceRow(name, state, None, None, None, None, None, None, None, None)
    base = before or InstanceReading(
        buckets=dict.fromkeys(after.buckets, 0.0), cpu_seconds=after.cpu_seconds
    )
    seconds = dt if before is not None else 0.0
    window = {le: count - base.buckets.get(le, 0.0) for le, count in after.buckets.items()}
    hits = after.cache_hits - base.cache_hits
    lookups = hits + after.cache_misses - base.cache_misses
    cpu = None
    if after.cpu_seconds is not None and base.cpu_seconds is not None and seconds > 0:
        cpu = 100 * (after.cpu_seconds - base.cpu_seconds) / seconds
    return InstanceRow(
        name=name,
        state=state,
        requests_per_second=(after.requests - base.requests) / seconds if seconds else None,
        p50=quantile(0.5, window),
        p99=quantile(0.99, window),
        errors_per_second=(after.server_errors - base.server_errors) / seconds if seconds else None,
        cpu_percent=cpu,
        rss_mb=after.rss_bytes / 2**20 if after.rss_bytes is not None else None,
        pool_in_use=after.pool_in_use,
        cache_hit_ratio=hits / lookups if lookups > 0 else None,
    )


async def _read_instance(client: httpx.AsyncClient, port: int) -> InstanceReading | None:
    try:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return parse_metrics(response.text)


async def read_instances(ports: dict[str, int]) -> dict[str, InstanceReading | None]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        readings = await asyncio.gather(*(_read_instance(client, p) for p in ports.values()))
    return dict(zip(ports, readings, strict=True))


@dataclass(frozen=True)
class DependencyRow:
    name: str
    state: str
    detail: str


def _redis_row(
    url: str | None, before: dict[str, float] | None
) -> tuple[DependencyRow, dict[str, float]]:
    import redis

    if url is None:
        return DependencyRow("redis", "-", "not configured (in-process fallbacks)"), {}
    try:
        client = redis.Redis.from_url(url, socket_timeout=1)
        info = client.info()
        client.close()
    except redis.RedisError as exc:
        return DependencyRow("redis", "DOWN", type(exc).__name__), {}
    counters = {k: float(info.get(k, 0)) for k in ("keyspace_hits", "keyspace_misses")}
    hits = counters["keyspace_hits"] - (before or {}).get("keyspace_hits", 0.0)
    lookups = hits + counters["keyspace_misses"] - (before or {}).get("keyspace_misses", 0.0)
    hit_rate = f"{hits / lookups:.0%}" if lookups > 0 else "-"
    detail = (
        f"{info.get('instantaneous_ops_per_sec', 0)} cmd/s  "
        f"mem {info.get('used_memory_human', '?')}  hit {hit_rate}  "
        f"evicted {info.get('evicted_keys', 0)}  clients {info.get('connected_clients', 0)}"
    )
    return DependencyRow("redis", "up", detail), counters


async def _postgres_row(database_url: str | None) -> DependencyRow:
    if not database_url or not database_url.startswith("postgresql"):
        return DependencyRow("database", "-", "SQLite files (one per service)")
    import asyncpg

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    try:
        connection = await asyncio.wait_for(asyncpg.connect(dsn), timeout=2)
        try:
            active = await connection.fetchval("SELECT count(*) FROM pg_stat_activity")
            busy = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
            )
            limit = await connection.fetchval("SHOW max_connections")
        finally:
            await connection.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return DependencyRow("postgresql", "DOWN", type(exc).__name__)
    return DependencyRow("postgresql", "up", f"connections {active}/{limit}  active {busy}")


def _nginx_row(state: RunState, supervisor: Supervisor) -> DependencyRow:
    gateway = state.topology_now().gateway
    detail = ""
    try:
        status = httpx.get(
            f"http://{gateway.internal_host}:{gateway.internal_port}/nginx/status", timeout=1
        ).text.split()
        # "Active connections: N server accepts handled requests A H R Reading ..."
        detail = f"connections {status[2]}  requests {status[9]}  "
    except (httpx.HTTPError, IndexError):
        detail = "stub_status unavailable  "
    rss, cpu = 0.0, 0.0
    try:
        master = psutil.Process(supervisor.info("nginx")["pid"])
        for process in [master, *master.children()]:
            rss += process.memory_info().rss
            cpu += sum(process.cpu_times()[:2])
    except (psutil.Error, OSError):
        return DependencyRow("nginx", "DOWN", detail.strip())
    return DependencyRow("nginx", "up", f"{detail}rss {rss / 2**20:.0f} MB  cpu {cpu:.1f} s")


@dataclass
class TopView:
    """Keeps the previous readings between refreshes."""

    run_dir: RunDir
    database_url: str | None
    previous: dict[str, InstanceReading | None] = field(default_factory=dict)
    previous_at: float = 0.0
    previous_redis: dict[str, float] | None = None

    def snapshot(self) -> tuple[list[InstanceRow], list[DependencyRow]]:
        supervisor = Supervisor(self.run_dir)
        state = RunState.load(self.run_dir)
        ports = instance_ports(state.topology_now())
        states = {info["name"]: info["statename"] for info in supervisor.processes()}
        now = time.monotonic()
        readings = asyncio.run(read_instances(ports))
        dt = now - self.previous_at
        rows = [
            instance_row(name, states.get(name, "?"), self.previous.get(name), readings[name], dt)
            for name in ports
        ]
        redis_row, self.previous_redis = _redis_row(state.redis_url, self.previous_redis)
        dependencies = [
            redis_row,
            asyncio.run(_postgres_row(self.database_url)),
            _nginx_row(state, supervisor),
        ]
        self.previous, self.previous_at = readings, now
        return rows, dependencies


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def render_view(rows: Iterable[InstanceRow], dependencies: Iterable[DependencyRow]) -> Group:
    """The instance table, then one line per dependency."""
    table = Table(title="shopfleet top", header_style="bold")
    for column in ("INSTANCE", "STATE"):
        table.add_column(column)
    for column in ("REQ/S", "P50 ms", "P99 ms", "5XX/S", "CPU %", "RSS MB", "POOL", "CACHE HIT"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.name,
            row.state,
            _fmt(row.requests_per_second, "{:.1f}"),
            _fmt(None if row.p50 is None else row.p50 * 1000, "{:.1f}"),
            _fmt(None if row.p99 is None else row.p99 * 1000, "{:.1f}"),
            _fmt(row.errors_per_second, "{:.1f}"),
            _fmt(row.cpu_percent, "{:.0f}"),
            _fmt(row.rss_mb, "{:.0f}"),
            _fmt(row.pool_in_use, "{:.0f}"),
            _fmt(row.cache_hit_ratio, "{:.0%}"),
        )
    deps = Table(header_style="bold", show_edge=False)
    for column in ("DEPENDENCY", "STATE", "DETAIL"):
        deps.add_column(column)
    for dependency in dependencies:
        deps.add_row(dependency.name, dependency.state, dependency.detail)
    return Group(table, deps)
