"""Operating a running local platform: status, logs, scale and rolling reload."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from shopfleet.deploy.operator import server_budget
from shopfleet.deploy.operator.local import Echo, instance_ports, migrate, wait_ready
from shopfleet.deploy.operator.runtime import (
    OperateError,
    RunDir,
    RunState,
    Supervisor,
    operation_lock,
    render_runtime,
    with_scale,
    write_nginx,
)
from shopfleet.deploy.render.budget import BudgetError
from shopfleet.deploy.topology import instance_name


def _running(run_dir: RunDir) -> tuple[Supervisor, RunState]:
    supervisor = Supervisor(run_dir)
    state = RunState.load(run_dir)
    if not supervisor.alive():
        raise OperateError(f"nothing running from {run_dir.var}: start it with `shopfleet up`")
    return supervisor, state


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    state: str
    pid: int
    port: int | None
    uptime: float
    rss_mb: float
    cpu_percent: float


def status(run_dir: RunDir, sample_seconds: float = 0.5) -> list[ProcessStatus]:
    """One row per supervised process, with memory and CPU sampled from /proc."""
    supervisor, state = _running(run_dir)
    topology = state.topology_now()
    ports: dict[str, int] = instance_ports(topology)
    ports["nginx"] = topology.gateway.public_port
    if state.private_redis_port:
        ports["redis"] = state.private_redis_port
    order = ["redis", *ports, "memmon"]
    infos = sorted(
        supervisor.processes(),
        key=lambda info: order.index(info["name"]) if info["name"] in order else len(order),
    )
    handles: dict[int, psutil.Process] = {}
    for info in infos:
        if info["pid"]:
            try:
                handles[info["pid"]] = psutil.Process(info["pid"])
                handles[info["pid"]].cpu_percent(None)
            except psutil.NoSuchProcess:
                continue
    time.sleep(sample_seconds)
    rows = []
    for info in infos:
        rss, cpu = 0.0, 0.0
        handle = handles.get(info["pid"])
        if handle is not None:
            try:
                cpu = handle.cpu_percent(None)
                rss = handle.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                pass
        running = info["statename"] == "RUNNING"
        rows.append(
            ProcessStatus(
                name=info["name"],
                state=info["statename"],
                pid=info["pid"],
                port=ports.get(info["name"]),
                uptime=float(info["now"] - info["start"]) if running else 0.0,
                rss_mb=rss,
                cpu_percent=cpu,
            )
        )
    return rows


def format_status(rows: list[ProcessStatus]) -> str:
    header = f"{'NAME':<18} {'STATE':<9} {'PID':>7} {'PORT':>6} {'UPTIME':>9} {'RSS':>9} {'CPU':>6}"
    lines = [header]
    for row in rows:
        port = str(row.port) if row.port else "-"
        pid = str(row.pid) if row.pid else "-"
        lines.append(
            f"{row.name:<18} {row.state:<9} {pid:>7} {port:>6} {_duration(row.uptime):>9} "
            f"{row.rss_mb:>6.1f} MB {row.cpu_percent:>5.1f}%"
        )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def log_files(run_dir: RunDir, target: str | None) -> list[Path]:
    """The log files of a service (all its instances), one program, nginx, or everything."""
    logs = sorted(run_dir.log.glob("*.log"))
    if target is None:
        return logs
    if target == "nginx":
        return [path for path in logs if path.stem.startswith("nginx")]
    exact = [path for path in logs if path.stem == target]
    return exact or [path for path in logs if path.stem.rsplit("-", 1)[0] == target]


def read_logs(files: list[Path], lines: int) -> Iterator[str]:
    for path in files:
        for line in path.read_text(errors="replace").splitlines()[-lines:]:
            yield f"{path.stem} | {line}"


def follow_logs(files: list[Path], poll: float = 0.5) -> Iterator[str]:
    """New lines of the files as they are written (survives rotation); stop with Ctrl-C."""
    offsets = {path: path.stat().st_size for path in files}
    while True:
        for path in files:
            size = path.stat().st_size if path.exists() else 0
            if size < offsets[path]:
                offsets[path] = 0  # rotated
            if size > offsets[path]:
                with path.open("rb") as handle:
                    handle.seek(offsets[path])
                    chunk = handle.read(size - offsets[path])
                complete = chunk.rsplit(b"\n", 1)[0] if b"\n" in chunk else b""
                if complete:
                    offsets[path] += len(complete) + 1
                    for line in complete.decode(errors="replace").splitlines():
                        yield f"{path.stem} | {line}"
        time.sleep(poll)


def reload_gateway(run_dir: RunDir, state: RunState, timeout: float = 60) -> None:
    """Render nginx.conf, `nginx -t` it, HUP the master, and wait for the old workers to go.

    Once the old workers are gone, no request can reach an instance left out of the config.
    """
    supervisor = Supervisor(run_dir)
    write_nginx(run_dir, state)
    master = psutil.Process(supervisor.info("nginx")["pid"])
    old = {child.pid for child in master.children()}
    supervisor.rpc.signalProcess("nginx", "HUP")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = {child.pid for child in master.children()}
        if not current & old and current:
            return
        time.sleep(0.1)
    raise OperateError(f"nginx did not finish reloading in {timeout:.0f}s: see var/log/nginx*.log")


def _stop(supervisor: Supervisor, names: list[str], timeout: float) -> None:
    for name in names:
        supervisor.rpc.stopProcess(name, False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {supervisor.info(name)["statename"] for name in names}
        if states <= {"STOPPED", "EXITED", "FATAL"}:
            return
        time.sleep(0.2)
    raise OperateError(f"{', '.join(names)} did not stop in {timeout:.0f}s")


def scale(*, run_dir: RunDir, service: str, count: int, echo: Echo) -> None:
    """Add or remove only the difference; removed instances leave nginx before they stop."""
    with operation_lock(run_dir):
        _scale(run_dir=run_dir, service=service, count=count, echo=echo)


def _scale(*, run_dir: RunDir, service: str, count: int, echo: Echo) -> None:
    supervisor, state = _running(run_dir)
    if service not in state.scale:
        raise OperateError(f"unknown service {service!r}")
    old = state.scale[service]
    if count == old:
        echo(f"{service} already has {count} instances")
        return
    stop_timeout = state.topology_now().process.shutdown_timeout + 10
    if count > old:
        try:
            server_budget.check_run(
                with_scale(state.topology_now(), {**state.scale, service: count})
            )
        except BudgetError as exc:
            raise OperateError(str(exc)) from None
        added = [instance_name(service, index) for index in range(old + 1, count + 1)]
        if old == 0:
            migrate(run_dir, [service])
        state.scale[service] = count
        state.drained = sorted({*state.drained, *added})  # in nginx only once ready
        state.save(run_dir)
        render_runtime(run_dir, state)
        supervisor.rpc.reloadConfig()
        for name in added:
            supervisor.rpc.addProcessGroup(name)
        echo(f"started {', '.join(added)}; waiting for readiness")
        wait_ready(run_dir, state, added)
        state.drained = [name for name in state.drained if name not in added]
        state.save(run_dir)
        reload_gateway(run_dir, state)
    else:
        removed = [instance_name(service, index) for index in range(count + 1, old + 1)]
        state.drained = sorted({*state.drained, *removed})
        state.save(run_dir)
        reload_gateway(run_dir, state)
        echo(f"{', '.join(removed)} out of the gateway; draining")
        _stop(supervisor, removed, stop_timeout)
        for name in removed:
            supervisor.rpc.removeProcessGroup(name)
        state.scale[service] = count
        state.drained = [name for name in state.drained if name not in removed]
        state.save(run_dir)
        render_runtime(run_dir, state)
        supervisor.rpc.reloadConfig()
    echo(f"{service}: {old} -> {count} instances")


def reload(*, run_dir: RunDir, service: str | None, echo: Echo) -> None:
    """Rolling restart: one instance at a time, out of nginx, restarted, ready, back in."""
    with operation_lock(run_dir):
        _reload(run_dir=run_dir, service=service, echo=echo)


def _reload(*, run_dir: RunDir, service: str | None, echo: Echo) -> None:
    supervisor, state = _running(run_dir)
    topology = state.topology_now()
    names = [
        name
        for name in instance_ports(topology)
        if service is None or name.rsplit("-", 1)[0] == service
    ]
    if service is not None and service not in state.scale:
        raise OperateError(f"unknown service {service!r}")
    stop_timeout = topology.process.shutdown_timeout + 10
    for name in names:
        state.drained = [name]
        state.save(run_dir)
        reload_gateway(run_dir, state)
        _stop(supervisor, [name], stop_timeout)
        supervisor.rpc.startProcess(name, False)
        wait_ready(run_dir, state, [name])
        echo(f"restarted {name}")
    state.drained = []
    state.save(run_dir)
    reload_gateway(run_dir, state)
