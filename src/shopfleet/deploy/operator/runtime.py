"""A local run's files under var/: its state, runtime configs, and handles on its processes."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shutil
import subprocess
import sys
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from shopfleet.deploy.render import monitoring, supervisor
from shopfleet.deploy.render.gateway import files as gateway_files
from shopfleet.deploy.topology import Topology, load_topology


class OperateError(Exception):
    """A local operation failed; the message says what to do."""


@dataclass(frozen=True)
class RunDir:
    """The var/ directory of a local run: data, secrets, logs, sockets, runtime configs."""

    var: Path

    @property
    def run(self) -> Path:
        return self.var / "run"

    @property
    def log(self) -> Path:
        return self.var / "log"

    @property
    def state_file(self) -> Path:
        return self.run / "shopfleet.json"

    @property
    def supervisor_conf(self) -> Path:
        return self.run / "supervisord.conf"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.run / "supervisord.pid"

    @property
    def socket(self) -> Path:
        return self.run / "supervisor.sock"

    @property
    def nginx_prefix(self) -> Path:
        return self.run / "nginx"

    @property
    def nginx_conf(self) -> Path:
        return self.nginx_prefix / "nginx.conf"

    def make(self) -> None:
        for path in (self.run, self.log, self.nginx_prefix, self.var / "data"):
            path.mkdir(parents=True, exist_ok=True)


@dataclass
class RunState:
    """What `up` decided, so later commands render the same way."""

    topology: str
    profile: str
    scale: dict[str, int]
    redis_url: str | None = None
    private_redis_port: int | None = None
    # Instances kept out of the gateway while they restart (program names).
    drained: list[str] = field(default_factory=list)
    monitoring: bool = False  # `up --monitoring`: Prometheus, Alertmanager, exporters
    postgres: bool = False  # the instances use PostgreSQL (SHOPFLEET_DATABASE_URL)
    autoscale: bool = False  # `up --autoscale` or [autoscaling] enabled

    def save(self, run_dir: RunDir) -> None:
        _write_atomic(run_dir.state_file, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: RunDir) -> RunState:
        if not run_dir.state_file.exists():
            raise OperateError(f"no local run in {run_dir.var}: start one with `shopfleet up`")
        return cls(**json.loads(run_dir.state_file.read_text()))

    def topology_now(self) -> Topology:
        """The topology file with the live instance counts."""
        return with_scale(load_topology(Path(self.topology), self.profile), self.scale)


def local_run_redis(var: Path) -> str | None:
    """The Redis of the local run kept in `var` (`shopfleet up`), if there is one: its
    private redis-server is on a port of its own that other commands are not told of."""
    try:
        return RunState.load(RunDir(var.resolve())).redis_url
    except (OperateError, OSError, ValueError, TypeError):
        return None


@contextlib.contextmanager
def operation_lock(run_dir: RunDir) -> Iterator[None]:
    """One scale or reload at a time: each rewrites the run's state and configs."""
    run_dir.run.mkdir(parents=True, exist_ok=True)
    with (run_dir.run / "operate.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OperateError("another scale or reload is in progress") from None
        yield


def with_scale(topology: Topology, scale: dict[str, int]) -> Topology:
    services = {
        name: service.model_copy(update={"instances": scale.get(name, service.instances)})
        for name, service in topology.services.items()
    }
    return topology.model_copy(update={"services": services})


def _write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    tmp.replace(path)


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return gateway_files.NGINX if Path(gateway_files.NGINX).exists() else None


def _worker_user() -> str | None:
    if os.geteuid() != 0:
        return None
    return pwd.getpwuid(os.geteuid()).pw_name


def render_runtime(run_dir: RunDir, state: RunState) -> Topology:
    """Write var/run/supervisord.conf and var/run/nginx/nginx.conf for the live scale."""
    topology = state.topology_now()
    run_dir.make()
    layout = supervisor.Layout(
        root=str(run_dir.var.parent),
        var=str(run_dir.var),
        python=sys.executable,
        nginx_conf=str(run_dir.nginx_conf),
        redis_url=state.redis_url if state.private_redis_port else None,
        private_redis_port=state.private_redis_port,
        monitoring=state.monitoring,
        postgres_exporter=state.monitoring and state.postgres,
        redis_exporter=state.monitoring and state.redis_url is not None,
        autoscale=state.autoscale,
    )
    _write_atomic(run_dir.supervisor_conf, supervisor.render_supervisor(topology, layout))
    write_nginx(run_dir, state)
    if state.monitoring:
        # Prometheus rereads its file-based targets by itself: scaling needs no restart.
        directory = run_dir.run / "monitoring"
        (directory / "targets").mkdir(parents=True, exist_ok=True)
        files = monitoring.runtime_files(
            topology,
            postgres=state.postgres,
            redis=state.redis_url is not None,
            autoscaler=state.autoscale,
        )
        for name, content in files.items():
            _write_atomic(directory / name, content)
    return topology


def write_nginx(run_dir: RunDir, state: RunState) -> None:
    """Render the gateway config (drained instances left out) and check it with `nginx -t`."""
    topology = state.topology_now()
    content = gateway_files.render_local(
        topology, worker_user=_worker_user(), excluded=frozenset(state.drained)
    )
    candidate = run_dir.nginx_prefix / "nginx.conf.new"
    candidate.write_text(content)
    check_nginx_config(run_dir, candidate)
    candidate.replace(run_dir.nginx_conf)


def check_nginx_config(run_dir: RunDir, conf: Path) -> None:
    """`nginx -t` a config under the run's prefix; refuse it with nginx's own words."""
    binary = nginx_binary()
    if binary is None:
        raise OperateError("nginx is not installed")
    result = subprocess.run(  # noqa: S603 (the nginx binary, our config)
        [binary, "-t", "-q", "-p", f"{run_dir.nginx_prefix}/", "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise OperateError(f"nginx rejected {conf}:\n{result.stderr}")


class Supervisor:
    """supervisord's XML-RPC interface over its unix socket."""

    def __init__(self, run_dir: RunDir) -> None:
        self.run_dir = run_dir
        transport = SupervisorTransport(serverurl=f"unix://{run_dir.socket}")
        self._proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    @property
    def rpc(self) -> Any:
        return self._proxy.supervisor

    def alive(self) -> bool:
        if not self.run_dir.socket.exists():
            return False
        try:
            return cast(str, self.rpc.getState()["statename"]) == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def processes(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.rpc.getAllProcessInfo())

    def info(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.rpc.getProcessInfo(name))
