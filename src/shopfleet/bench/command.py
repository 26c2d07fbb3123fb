"""The `shopfleet bench` command (registered on the main CLI)."""

from __future__ import annotations

import asyncio
import shlex
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_POSTGRES = "postgresql+asyncpg://root@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="Every scenario for a few seconds (a CI smoke test)")
    ] = False,
    seconds: Annotated[
        int | None, typer.Option(min=1, max=300, help="Seconds per scenario (20; quick 3)")
    ] = None,
    connections: Annotated[
        int, typer.Option(min=1, max=1024, help="wrk connections per scenario")
    ] = 64,
    products: Annotated[
        int | None, typer.Option(min=1000, help="Catalog size (100000; quick 5000)")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Report directory (default bench/results/<date>-<git sha>/)"),
    ] = None,
    topology: Annotated[
        Path, typer.Option(help="Topology with a bench profile", envvar="SHOPFLEET_TOPOLOGY")
    ] = Path("shopfleet.toml"),
    database_url: Annotated[
        str, typer.Option(help="PostgreSQL to run on", envvar="SHOPFLEET_BENCH_DATABASE_URL")
    ] = DEFAULT_POSTGRES,
    redis_url: Annotated[
        str, typer.Option(help="Redis to run on", envvar="SHOPFLEET_BENCH_REDIS_URL")
    ] = DEFAULT_REDIS,
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated scenarios to run (e.g. floor,product-db); "
            "'scale-out' adds the scaling curve. Default: all"
        ),
    ] = None,
) -> None:
    """Load-test a private platform through the gateway with wrk and write a report."""
    from shopfleet.bench.runner import options_for, run_bench
    from shopfleet.bench.scenarios import MAIN

    chosen = None
    if only is not None:
        chosen = frozenset(name.strip() for name in only.split(",") if name.strip())
        unknown = chosen - {scenario.name for scenario in MAIN} - {"scale-out"}
        if unknown:
            raise typer.BadParameter(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    if not topology.exists():
        raise typer.BadParameter(f"{topology} not found: run from the repository root")
    options = options_for(
        quick=quick,
        seconds=seconds,
        connections=connections,
        products=products,
        out=out.resolve() if out else None,
        topology=topology.resolve(),
        database_url=database_url,
        redis_url=redis_url,
        command="shopfleet " + shlex.join(sys.argv[1:]),
        only=chosen,
    )
    # `kill` or a closed terminal tears the private platform down as Ctrl-C does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    try:
        directory = asyncio.run(run_bench(options, typer.echo))
    except RuntimeError as exc:
        typer.echo(f"bench: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"report: {directory / 'report.md'}")
