"""One machine: bring the platform up under supervisord and nginx, and take it down."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from shopfleet.deploy.operator import server_budget
from shopfleet.deploy.operator.runtime import (
    OperateError,
    RunDir,
    RunState,
    Supervisor,
    nginx_binary,
    render_runtime,
)
from shopfleet.deploy.render.budget import BudgetError
from shopfleet.deploy.topology import Topology, instance_name, load_topology

Echo = Callable[[str], None]
READY_TIMEOUT = 180.0


def ensure_nginx(echo: Echo) -> None:
    """Install nginx with apt-get when running as root; otherwise say what to install."""
    if nginx_binary() is not None:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise OperateError(
            "nginx is not installed. Install it with: sudo apt-get install -y nginx "
            "(or run scripts/setup as root)"
        )
    echo("nginx is missing: installing it with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S607
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"],  # noqa: S607
        check=True,
        env=env,
    )
    # Debian starts its packaged nginx; shopfleet runs its own.
    subprocess.run(["service", "nginx", "stop"], check=False, capture_output=True)  # noqa: S607
    if nginx_binary() is None:
        raise OperateError("apt-get finished but nginx is still missing")


def instance_ports(topology: Topology) -> dict[str, int]:
    """Program name -> port of every instance."""
    return {
        instance_name(service.name, index): service.instance_port(index)
        for service in topology.ordered_services()
        for index in range(1, service.instances + 1)
    }


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _check_ports(topology: Topology, state: RunState) -> None:
    gateway = topology.gateway
    wanted = [("127.0.0.1", port) for port in instance_ports(topology).values()]
    wanted += [("0.0.0.0", gateway.public_port), (gateway.internal_host, gateway.internal_port)]  # noqa: S104
    if gateway.tls:
        wanted.append(("0.0.0.0", gateway.https_port))  # noqa: S104
    if state.private_redis_port:
        wanted.append(("127.0.0.1", state.private_redis_port))
    busy = [f"{host}:{port}" for host, port in wanted if not _port_free(host, port)]
    if busy:
        raise OperateError(f"ports already in use: {', '.join(busy)}")


def _choose_redis(topology: Topology, echo: Echo) -> tuple[str | None, int | None]:
    """(redis URL, private redis-server port): an existing Redis, a private one, or none."""
    if os.environ.get("SHOPFLEET_REDIS_URL"):
        return os.environ["SHOPFLEET_REDIS_URL"], None
    if shutil.which("redis-server"):
        port = topology.local.redis_port
        return f"redis://127.0.0.1:{port}/0", port
    echo(
        "warning: redis-server is not installed and SHOPFLEET_REDIS_URL is unset: caches and "
        "rate limits fall back to per-instance memory (apt-get install redis-server)"
    )
    return None, None


def migrate(run_dir: RunDir, services: list[str]) -> None:
    """Apply the services' migrations with the same settings the instances will use."""
    from shopfleet.common.migrations import migrate as run_migrations
    from shopfleet.common.settings import Settings

    async def _run() -> None:
        for name in services:
            await run_migrations(Settings(service=name, data_dir=run_dir.var), name)

    asyncio.run(_run())


def up(
    *,
    run_dir: RunDir,
    topology_path: Path,
    profile: str,
    echo: Echo,
    monitoring: bool = False,
    autoscale: bool = False,
) -> RunState:
    """Render, migrate, start supervisord, and wait until every instance and nginx is ready."""
    ensure_nginx(echo)
    if monitoring:
        _check_monitoring_tools()
    supervisor = Supervisor(run_dir)
    if supervisor.alive():
        raise OperateError(f"already running from {run_dir.var}: see `shopfleet status`")
    topology = load_topology(topology_path, profile)
    try:
        server_budget.check_run(topology)
    except BudgetError as exc:
        raise OperateError(str(exc)) from None
    redis_url, private_port = _choose_redis(topology, echo)
    state = RunState(
        topology=str(topology_path.resolve()),
        profile=profile,
        scale={service.name: service.instances for service in topology.ordered_services()},
        redis_url=redis_url,
        private_redis_port=private_port,
        monitoring=monitoring,
        postgres=os.environ.get("SHOPFLEET_DATABASE_URL", "").startswith("postgresql"),
        autoscale=autoscale or topology.autoscaling.enabled,
    )
    _check_ports(topology, state)
    run_dir.make()
    run_dir.socket.unlink(missing_ok=True)
    state.save(run_dir)
    render_runtime(run_dir, state)
    running = [name for name, count in state.scale.items() if count > 0]
    echo(f"migrating {', '.join(running)}")
    migrate(run_dir, running)
    echo(f"starting {sum(state.scale.values())} instances, nginx and supervisord")
    subprocess.run(  # noqa: S603 (our own interpreter and config)
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(run_dir.supervisor_conf)],
        check=True,
        cwd=run_dir.var.parent,
    )
    try:
        _wait_for(lambda: supervisor.alive(), timeout=15, what="supervisord")
        wait_ready(run_dir, state, list(instance_ports(state.topology_now())))
        if monitoring:
            port = topology.monitoring.prometheus_port
            _wait_for(
                lambda: _answers(f"http://127.0.0.1:{port}/-/ready"), timeout=60, what="prometheus"
            )
    except (OperateError, KeyboardInterrupt):
        down(run_dir=run_dir, echo=echo)
        raise
    return state


def _wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise OperateError(f"{what} not ready after {timeout:.0f}s")


def _check_monitoring_tools() -> None:
    from shopfleet.deploy.render import supervisor

    wanted = [supervisor.PROMETHEUS, supervisor.ALERTMANAGER, supervisor.NGINX_EXPORTER]
    missing = [path for path in wanted if not Path(path).exists()]
    if missing:
        raise OperateError(
            f"--monitoring needs {', '.join(missing)}: run scripts/setup (Debian's prometheus "
            "packages)"
        )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def log_tail(run_dir: RunDir, name: str, lines: int = 20) -> str:
    path = run_dir.log / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def instance_ready(port: int) -> bool:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _gateway_ready(topology: Topology) -> bool:
    gateway = topology.gateway
    url = f"http://{gateway.internal_host}:{gateway.internal_port}/nginx/health"
    try:
        internal = httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
    return internal and not _port_free("127.0.0.1", gateway.public_port)


def wait_ready(
    run_dir: RunDir, state: RunState, programs: list[str], timeout: float = READY_TIMEOUT
) -> None:
    """Wait until each program answers /health/ready and nginx serves; fail fast on FATAL."""
    supervisor = Supervisor(run_dir)
    topology = state.topology_now()
    ports = instance_ports(topology)
    pending = set(programs)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                info = supervisor.info(name)
            except (OSError, xmlrpc.client.Error) as exc:
                # supervisord itself went away (killed, or it could not start a program).
                raise OperateError(
                    f"supervisord stopped while {name} was starting ({exc}); its log ends "
                    f"with:\n{log_tail(run_dir, 'supervisord')}"
                ) from None
            if info["statename"] == "FATAL":
                raise OperateError(
                    f"{name} is {info['statename']}; its log ends with:\n{log_tail(run_dir, name)}"
                )
            if info["statename"] == "RUNNING" and instance_ready(ports[name]):
                pending.discard(name)
        if not pending and _gateway_ready(topology):
            return
        time.sleep(0.3)
    waiting = ", ".join(sorted(pending)) or "nginx"
    raise OperateError(f"not ready after {timeout:.0f}s: {waiting} (see `shopfleet logs`)")


def ignore_stop_signals() -> None:
    """Ignore Ctrl-C, kill and a closed terminal from now on: for a stop that must finish
    (a second signal would leave instances, schemas or keys behind). Main thread only."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)


def down(*, run_dir: RunDir, echo: Echo) -> int:
    """Stop everything gracefully (nginx first, then the instances); return processes stopped."""
    supervisor = Supervisor(run_dir)
    if not supervisor.alive():
        echo(f"nothing running from {run_dir.var}")
        return 0
    daemon_pid = int(supervisor.rpc.getPID())
    children = [info["pid"] for info in supervisor.processes() if info["pid"]]
    pids = [daemon_pid, *children]
    descendants = _descendants(pids)
    supervisor.rpc.shutdown()
    echo(f"stopping {len(children)} processes")
    try:
        _wait_for(lambda: not _any_alive(pids), timeout=90, what="shutdown")
    except OperateError:
        for pid in [*pids, *descendants]:
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()
    # nginx workers and other grandchildren go with their parents; make sure of it.
    _wait_for(lambda: not _any_alive(descendants), timeout=30, what="shutdown of workers")
    run_dir.socket.unlink(missing_ok=True)
    echo("stopped")
    return len(children)


def _descendants(pids: list[int]) -> list[int]:
    found: list[int] = []
    for pid in pids:
        try:
            found += [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    return found


def _any_alive(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            continue
    return False
