"""`shopfleet bench`: bring a private platform up, load it scenario by scenario, report.

Bounded everywhere: every wrk run has a fixed duration, every target is 127.0.0.1, and
the platform, the floor app, the schemas and the Redis keys go away in `finally`.
"""

from __future__ import annotations

import os
import platform as host
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopfleet.bench import report
from shopfleet.bench.cpu import per_request, sample, shared_servers
from shopfleet.bench.fixtures import BenchData, Sizes, prepare, seed, stock_products
from shopfleet.bench.platform import BenchPlatform
from shopfleet.bench.preflight import check_backends, check_tools
from shopfleet.bench.report import Outcome, Run
from shopfleet.bench.scenarios import MAIN, SCALE_COUNTS, SCALED, Scenario, scaled
from shopfleet.bench.serverside import difference, instance_memory, scrape
from shopfleet.bench.stock_check import check_stock
from shopfleet.bench.targets import evaluate
from shopfleet.bench.wrk import Load, run_wrk, write_requests
from shopfleet.deploy.operator import local

Echo = Callable[[str], None]
REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Options:
    quick: bool
    seconds: int
    warmup_seconds: int
    connections: int
    sizes: Sizes
    out: Path | None
    topology: Path
    database_url: str
    redis_url: str
    command: str
    # Scenario names to run (None: all); the scale-out curve runs only when asked for.
    only: frozenset[str] | None = None


def options_for(
    *,
    quick: bool,
    seconds: int | None,
    connections: int,
    products: int | None,
    out: Path | None,
    topology: Path,
    database_url: str,
    redis_url: str,
    command: str,
    only: frozenset[str] | None = None,
) -> Options:
    """Full run: the issue's catalog; quick: every scenario for a few seconds, a small one."""
    if quick:
        sizes = Sizes(
            products=products or 5_000, users=200, signed_in=30, hot_products=200,
            ample_stock_products=50, scarce_products=3, scarce_stock=10,
        )  # fmt: skip
    else:
        sizes = Sizes(products=products or 100_000, users=3_000)
    return Options(
        quick=quick,
        seconds=seconds or (3 if quick else 20),
        warmup_seconds=1 if quick else 3,
        connections=connections,
        sizes=sizes,
        out=out,
        topology=topology,
        database_url=database_url,
        redis_url=redis_url,
        command=command,
        only=only,
    )


def _git(*args: str) -> str:
    try:
        result = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


def _meta(options: Options) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)  # noqa: S607
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_sha": _git("rev-parse", "--short", "HEAD") or "unknown",
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "command": options.command,
        "machine": f"{os.cpu_count()} CPUs ({cpu}), shared with other work",
        "python": sys.version.split()[0],
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "",
        "quick": options.quick,
        "seconds": options.seconds,
        "warmup_seconds": options.warmup_seconds,
        "connections": options.connections,
        "products": options.sizes.products,
        "users": options.sizes.users,
        "signed_in_customers": options.sizes.signed_in,
        "hot_products": options.sizes.hot_products,
        "loadavg_at_start": round(os.getloadavg()[0], 2),
    }


def default_out(meta: dict[str, Any]) -> Path:
    day = meta["date"].split()[0]
    suffix = "-quick" if meta["quick"] else ""
    return REPO_ROOT / "bench" / "results" / f"{day}-{meta['git_sha']}{suffix}"


class Bench:
    """One run: its platform, its data, and the scenarios measured against them."""

    def __init__(self, options: Options, platform: BenchPlatform, echo: Echo) -> None:
        self.options = options
        self.platform = platform
        self.echo = echo
        self.rng = random.Random(7)
        self.data: BenchData | None = None

    async def setup(self) -> None:
        sizes = self.options.sizes
        self.echo(f"seeding {sizes.products} products, {sizes.users} customers (PostgreSQL)")
        seed(self.platform, sizes)
        self.echo("starting the platform (bench profile) and the floor app")
        self.platform.up()
        self.platform.start_floor()
        self.echo(f"signing in {sizes.signed_in} customers, warming popular products")
        self.data = await prepare(self.platform, sizes)
        await stock_products(self.platform, self.data, sizes)

    async def measure(self, scenario: Scenario) -> Outcome:
        assert self.data is not None
        options, platform = self.options, self.platform
        work = platform.root / "requests"
        work.mkdir(exist_ok=True)
        requests = write_requests(
            work / f"{scenario.name}.tsv", scenario.build(self.data, self.rng)
        )
        connections = scenario.connections(options.connections)

        def load(seconds: int) -> Load:
            return run_wrk(
                platform.gateway,
                requests,
                seconds=seconds,
                connections=connections,
                header=scenario.header,
                count_header=scenario.count_header,
            )

        if scenario.warmup and options.warmup_seconds:
            load(options.warmup_seconds)
        ports = {
            name: port
            for service in scenario.services
            for name, port in platform.instances(service).items()
        }
        groups = {**platform.process_groups(), **shared_servers()}
        before, load_before = await scrape(ports), os.getloadavg()[0]
        cpu_before = sample(groups)
        figures = load(max(options.seconds, scenario.min_seconds))
        cpu_after = sample(groups)
        after, load_after = await scrape(ports), os.getloadavg()[0]
        extra: dict[str, Any] = {
            "connections": connections,
            "loadavg": [round(load_before, 2), round(load_after, 2)],
            **per_request(cpu_before, cpu_after, figures.requests),
        }
        if ports:
            extra["server"] = difference(before, after)
        if scenario.stock_check:
            ids = self.data.ample_ids if scenario.stock_check == "ample" else self.data.scarce_ids
            extra["stock"] = await check_stock(
                platform, {i: self.data.stock_before[i] for i in ids}
            )
        outcome = Outcome(
            scenario.name, scenario.description, figures, scenario.expected, [], extra
        )
        self.echo(
            f"  {scenario.name:<22} {figures.rps:>9.0f} req/s  p50 {figures.p50_ms:7.2f} ms  "
            f"p99 {figures.p99_ms:8.2f} ms  errors {figures.socket_errors}  "
            f"unexpected {outcome.unexpected}"
        )
        return outcome

    async def scenarios(self) -> tuple[list[Outcome], dict[str, dict[int, float]]]:
        only = self.options.only
        outcomes = [
            await self.measure(scenario)
            for scenario in MAIN
            if only is None or scenario.name in only
        ]
        scaling: dict[str, dict[int, float]] = {}
        for count in SCALE_COUNTS if only is None or "scale-out" in only else ():
            self.echo(f"scaling products to {count}")
            self.platform.scale("products", count)
            for scenario in SCALED:
                outcome = await self.measure(scaled(scenario, count))
                outcomes.append(outcome)
                scaling.setdefault(scenario.name, {})[count] = outcome.load.rps
        return outcomes, scaling

    def memory(self) -> dict[str, float]:
        from shopfleet.deploy.operator import operate
        from shopfleet.deploy.operator.runtime import RunDir

        return instance_memory(operate.status(RunDir(self.platform.var)))


async def run_bench(options: Options, echo: Echo) -> Path:
    """Run every scenario on a private platform; write the report; return its directory."""
    check_tools()
    await check_backends(options.database_url, options.redis_url)
    meta = _meta(options)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="shopfleet-bench-"))
    platform = BenchPlatform.create(
        root=root,
        source_topology=options.topology,
        database_url=options.database_url,
        redis_url=options.redis_url,
    )
    bench = Bench(options, platform, echo)
    failed = True
    try:
        await bench.setup()
        outcomes, scaling = await bench.scenarios()
        memory = bench.memory()
        failed = False
    except BaseException:
        echo(f"the bench failed; the platform's logs end with:\n{platform.logs_tail()}")
        raise
    finally:
        local.ignore_stop_signals()  # a second Ctrl-C or kill must not cut the teardown short
        echo("tearing down")
        try:
            await platform.teardown()
        except RuntimeError as exc:
            if not failed:
                raise
            echo(f"bench: {exc}")  # the failure that stopped the run is the one to report
    meta["loadavg_at_end"] = round(os.getloadavg()[0], 2)
    meta["total_seconds"] = round(time.monotonic() - started)
    run = Run(meta, outcomes, scaling, server={"memory_mb": memory})
    run.targets = evaluate(run)
    directory = options.out or default_out(meta)
    report.write(run, directory)
    return directory
