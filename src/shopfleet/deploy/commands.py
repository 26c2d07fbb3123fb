"""The operating commands of `shopfleet`: render, up, down, status, logs, scale, reload."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated

import typer

TopologyOption = Annotated[
    Path, typer.Option("--topology", help="The topology file", envvar="SHOPFLEET_TOPOLOGY")
]


def render(
    check: Annotated[
        bool, typer.Option("--check", help="Only compare; exit 1 listing files that differ")
    ] = False,
    topology_path: TopologyOption = Path("shopfleet.toml"),
    root: Annotated[Path, typer.Option(help="Repository root to write under")] = Path("."),
) -> None:
    """Render every deployment file of the default profile into the repository."""
    from shopfleet.deploy.render import budget
    from shopfleet.deploy.render import registry as registry
    from shopfleet.deploy.topology import TopologyError, load_topology

    try:
        topology = load_topology(topology_path)
        budget.check_topology(topology)
    except (TopologyError, budget.BudgetError) as exc:
        raise _fail(exc) from None
    files = registry.render_all(topology)
    if check:
        differing = registry.check(files, root)
        for path in differing:
            typer.echo(f"differs: {path}")
        if differing:
            typer.echo("run `shopfleet render` and commit the result", err=True)
            raise typer.Exit(1)
        typer.echo(f"{len(files)} rendered files are up to date")
        return
    changed = registry.write(files, root)
    for path in changed:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(files)} files rendered, {len(changed)} changed")


VarOption = Annotated[
    Path,
    typer.Option("--var", help="The run's data directory", envvar="SHOPFLEET_DATA_DIR"),
]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def up(
    detach: Annotated[bool, typer.Option("-d", "--detach", help="Return once it is up")] = False,
    profile: Annotated[str, typer.Option(help="Topology profile, e.g. bench")] = "default",
    monitoring: Annotated[
        bool, typer.Option("--monitoring", help="Also run Prometheus, Alertmanager, exporters")
    ] = False,
    autoscale: Annotated[
        bool,
        typer.Option(
            "--autoscale", help="Scale instances by the HPA policy (also [autoscaling] enabled)"
        ),
    ] = False,
    topology_path: TopologyOption = Path("shopfleet.toml"),
    var: VarOption = Path("var"),
) -> None:
    """Start the whole platform on this machine: every instance, nginx, Redis."""
    import signal

    from shopfleet.deploy.operator import local, operate
    from shopfleet.deploy.operator.runtime import OperateError, RunDir, Supervisor
    from shopfleet.deploy.topology import TopologyError

    run_dir = RunDir(var.resolve())
    try:
        state = local.up(
            run_dir=run_dir,
            topology_path=topology_path,
            profile=profile,
            echo=typer.echo,
            monitoring=monitoring,
            autoscale=autoscale,
        )
        rows = operate.status(run_dir)
    except (OperateError, TopologyError) as exc:
        raise _fail(exc) from None
    gateway = state.topology_now().gateway
    typer.echo(operate.format_status(rows))
    typer.echo(f"\nshopfleet is up: http://127.0.0.1:{gateway.public_port}/v1/ (profile {profile})")
    if gateway.tls:
        typer.echo(f"                 https://127.0.0.1:{gateway.https_port}/v1/")
    typer.echo(
        f"API docs: http://127.0.0.1:{gateway.public_port}/docs/products/ (and each service)"
    )
    if monitoring:
        m = state.topology_now().monitoring
        typer.echo(
            f"Prometheus: http://127.0.0.1:{m.prometheus_port}/  "
            f"Alertmanager: http://127.0.0.1:{m.alertmanager_port}/"
        )
    if detach:
        return

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    typer.echo("Press Ctrl-C to stop (or run `shopfleet down`).")
    supervisor = Supervisor(run_dir)
    try:
        while supervisor.alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    # Stopping must finish whatever happens meanwhile: Ctrl-C also stops a pipe's reader
    # (`scripts/up | tee up.log`), so stdout may be gone, and a second signal must not
    # leave the instances running either.
    local.ignore_stop_signals()
    local.down(run_dir=run_dir, echo=_echo_if_heard)


def _echo_if_heard(message: str) -> None:
    with contextlib.suppress(OSError):  # stdout closed (its pipe's reader went away)
        typer.echo(message)


def down(var: VarOption = Path("var")) -> None:
    """Stop everything gracefully; no process is left behind."""
    from shopfleet.deploy.operator import local
    from shopfleet.deploy.operator.runtime import RunDir

    local.down(run_dir=RunDir(var.resolve()), echo=typer.echo)


def status(var: VarOption = Path("var")) -> None:
    """Every process: state, pid, port, uptime, memory, CPU."""
    from shopfleet.deploy.operator import operate
    from shopfleet.deploy.operator.autoscaler import format_decisions, read_status
    from shopfleet.deploy.operator.runtime import OperateError, RunDir

    run_dir = RunDir(var.resolve())
    try:
        typer.echo(operate.format_status(operate.status(run_dir)))
    except OperateError as exc:
        raise _fail(exc) from None
    decisions = read_status(run_dir)
    if decisions:
        typer.echo("\n" + format_decisions(decisions))


def logs(
    target: Annotated[
        str | None, typer.Argument(help="A service, an instance (products-2), nginx or redis")
    ] = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new lines")] = False,
    lines: Annotated[int, typer.Option("-n", "--lines", help="Lines of history per file")] = 20,
    var: VarOption = Path("var"),
) -> None:
    """Show the logs of the local run."""
    from shopfleet.deploy.operator import operate
    from shopfleet.deploy.operator.runtime import RunDir

    files = operate.log_files(RunDir(var.resolve()), target)
    if not files:
        raise _fail(ValueError(f"no logs for {target or 'anything'} in {var}/log"))
    for line in operate.read_logs(files, lines):
        typer.echo(line)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            for line in operate.follow_logs(files):
                typer.echo(line)


def scale(
    assignment: Annotated[str, typer.Argument(help="SERVICE=N, e.g. products=5")],
    var: VarOption = Path("var"),
) -> None:
    """Change a service's instance count live, without touching the others."""
    from shopfleet.deploy.operator import operate
    from shopfleet.deploy.operator.runtime import OperateError, RunDir

    service, _, count = assignment.partition("=")
    if not count.isdigit():
        raise typer.BadParameter("expected SERVICE=N, e.g. products=5")
    try:
        operate.scale(
            run_dir=RunDir(var.resolve()), service=service, count=int(count), echo=typer.echo
        )
    except OperateError as exc:
        raise _fail(exc) from None


def reload(
    service: Annotated[str | None, typer.Argument(help="Only this service")] = None,
    var: VarOption = Path("var"),
) -> None:
    """Rolling restart, one instance at a time; no request is dropped."""
    from shopfleet.deploy.operator import operate
    from shopfleet.deploy.operator.runtime import OperateError, RunDir

    try:
        operate.reload(run_dir=RunDir(var.resolve()), service=service, echo=typer.echo)
    except OperateError as exc:
        raise _fail(exc) from None


def top(
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between readings", min=0.2)] = 1.0,
    var: VarOption = Path("var"),
) -> None:
    """Live per-instance view: requests/s, latency, errors, CPU, memory, pool, cache."""
    import os

    from rich.console import Console
    from rich.live import Live

    from shopfleet.deploy.operator.runtime import OperateError, RunDir, Supervisor
    from shopfleet.deploy.operator.top import TopView, render_view

    run_dir = RunDir(var.resolve())
    if not Supervisor(run_dir).alive():
        raise _fail(
            OperateError(f"nothing running from {run_dir.var}: start it with `shopfleet up`")
        )
    view = TopView(run_dir, database_url=os.environ.get("SHOPFLEET_DATABASE_URL"))
    first = view.snapshot()
    if once:
        time.sleep(interval)
        Console(width=140).print(render_view(*view.snapshot()))
        return
    with contextlib.suppress(KeyboardInterrupt), Live(render_view(*first)) as live:
        while True:
            time.sleep(interval)
            live.update(render_view(*view.snapshot()))


def autoscaler(var: VarOption = Path("var")) -> None:
    """Run the autoscaling controller (supervised by `up --autoscale`)."""
    from shopfleet.common.logging import configure_logging
    from shopfleet.deploy.operator import autoscaler as controller
    from shopfleet.deploy.operator.runtime import RunDir

    configure_logging(service="autoscaler", instance="autoscaler")
    controller.run(RunDir(var.resolve()))


def add_operate_commands(app: typer.Typer) -> None:
    """Register these commands on the main `shopfleet` app."""
    for command in (render, up, down, status, logs, scale, reload, top):
        app.command()(command)
    app.command(hidden=True)(autoscaler)
