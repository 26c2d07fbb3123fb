"""The supervisord config: every instance, nginx, a private Redis and the memory watchdog."""

from __future__ import annotations

import json
from dataclasses import dataclass

from shopfleet.deploy.render.gateway.build import local_gateway
from shopfleet.deploy.render.gateway.files import NGINX
from shopfleet.deploy.topology import Service, Topology, instance_name

COMMITTED_PATH = "deploy/local/supervisord.conf"
REDIS_SERVER = "redis-server"
# Debian's packages (scripts/setup installs them).
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
NGINX_EXPORTER = "/usr/bin/prometheus-nginx-exporter"


@dataclass(frozen=True)
class Layout:
    """Where things are, as supervisor will read them (absolute, or from %(here)s)."""

    root: str  # working directory of the instances (the repository)
    var: str  # data, logs, sockets and nginx's prefix
    python: str  # the venv's interpreter
    nginx_conf: str
    internal_url: str = ""
    redis_url: str | None = None  # set: each instance uses it
    private_redis_port: int | None = None  # set: run redis-server on this port
    monitoring: bool = False  # run Prometheus, Alertmanager and the exporters too
    postgres_exporter: bool = False  # the instances use PostgreSQL: export it
    redis_exporter: bool = False  # the instances use a Redis: export it
    autoscale: bool = False  # run the HPA controller (`up --autoscale`)

    @property
    def socket(self) -> str:
        return f"{self.var}/run/supervisor.sock"

    @property
    def memmon(self) -> str:
        return self.python.rsplit("/", 1)[0] + "/memmon"

    @property
    def nginx_prefix(self) -> str:
        return f"{self.var}/run/nginx/"


def committed_layout(topology: Topology) -> Layout:
    """Paths relative to deploy/local/, the committed file's folder."""
    here = "%(here)s/../.."
    port = topology.local.redis_port
    return Layout(
        root=here,
        var=f"{here}/var",
        python=f"{here}/.venv/bin/python",
        nginx_conf="%(here)s/nginx.conf",
        redis_url=f"redis://127.0.0.1:{port}/0",
        private_redis_port=port,
    )


def instance_programs(topology: Topology) -> list[tuple[Service, int]]:
    """(service, instance index) for every instance of the topology, in canonical order."""
    return [
        (service, index)
        for service in topology.ordered_services()
        for index in range(1, service.instances + 1)
    ]


def _literal(value: str) -> str:
    """Escape supervisor's %-expansion, keeping only %(here)s."""
    return value.replace("%", "%%").replace("%%(here)s", "%(here)s")


def _quote(value: str) -> str:
    # supervisor's environment= parser takes no escaped quotes: JSON goes in single quotes.
    if '"' in value and "'" not in value and "\\" not in value:
        return "'" + value + "'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _section(name: str, values: dict[str, str | int]) -> list[str]:
    body = (f"{key}={_literal(str(value))}" for key, value in values.items())
    return [f"[{name}]", *body, ""]


def _instance(topology: Topology, layout: Layout, service: Service, index: int) -> list[str]:
    name = instance_name(service.name, index)
    port = service.instance_port(index)
    gateway = topology.gateway
    env = {
        **service.environment(),
        "SHOPFLEET_INSTANCE": name,
        "SHOPFLEET_DATA_DIR": layout.var,
        "SHOPFLEET_INTERNAL_URL": layout.internal_url
        or f"http://{gateway.internal_host}:{gateway.internal_port}",
        "SHOPFLEET_SHUTDOWN_TIMEOUT": str(topology.process.shutdown_timeout),
        "SHOPFLEET_TRUSTED_PROXIES": json.dumps(list(local_gateway(topology).trusted_proxies)),
    }
    if layout.redis_url:
        env["SHOPFLEET_REDIS_URL"] = layout.redis_url
    environment = ",".join(f"{key}={_quote(value)}" for key, value in env.items())
    return _section(
        f"program:{name}",
        {
            "command": f"{layout.python} -m shopfleet serve {service.name} --host 127.0.0.1 "
            f"--port {port} --instance {index}",
            "directory": layout.root,
            "environment": environment,
            "priority": 100,
            "autostart": "true",
            "autorestart": "true",
            "startsecs": 3,
            "startretries": 3,
            "stopsignal": "TERM",
            # Longer than the drain, so supervisor never SIGKILLs a draining instance.
            "stopwaitsecs": topology.process.shutdown_timeout + 5,
            "killasgroup": "true",
            "redirect_stderr": "true",
            "stdout_logfile": f"{layout.var}/log/{name}.log",
            "stdout_logfile_maxbytes": "50MB",
            "stdout_logfile_backups": 3,
        },
    )


def render_supervisor(topology: Topology, layout: Layout) -> str:
    """supervisord.conf for a topology's current instance counts."""
    var = layout.var
    lines = [
        f"; Rendered by `shopfleet render` from shopfleet.toml (profile {topology.profile}).",
        "; Do not edit: change the topology and render again. `shopfleet up` renders its own",
        "; copy into var/run/ with the live scale; this one runs from a clone as",
        "; .venv/bin/supervisord -c deploy/local/supervisord.conf",
        "",
        *_section("unix_http_server", {"file": layout.socket, "chmod": "0700"}),
        *_section(
            "supervisord",
            {
                "logfile": f"{var}/log/supervisord.log",
                "logfile_maxbytes": "50MB",
                "pidfile": f"{var}/run/supervisord.pid",
                "childlogdir": f"{var}/log",
                "identifier": topology.project.name,
            },
        ),
        *_section(
            "rpcinterface:supervisor",
            {"supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"},
        ),
        *_section("supervisorctl", {"serverurl": f"unix://{layout.socket}"}),
    ]
    if layout.private_redis_port is not None:
        # A cache and limiter store: nothing to persist, memory bounded.
        lines += _section(
            "program:redis",
            {
                "command": f"{REDIS_SERVER} --bind 127.0.0.1 --port {layout.private_redis_port} "
                "--save '' --appendonly no --maxmemory 256mb --maxmemory-policy allkeys-lru",
                "directory": f"{var}/run",
                "priority": 10,
                "autorestart": "true",
                "stopsignal": "TERM",
                "redirect_stderr": "true",
                "stdout_logfile": f"{var}/log/redis.log",
                "stdout_logfile_maxbytes": "10MB",
            },
        )
    for service, index in instance_programs(topology):
        lines += _instance(topology, layout, service, index)
    lines += _section(
        "program:nginx",
        {
            "command": f"{NGINX} -p {layout.nginx_prefix} -c {layout.nginx_conf} -e stderr",
            "directory": f"{var}/run",
            "priority": 900,
            "autorestart": "true",
            # QUIT: finish in-flight requests, then exit.
            "stopsignal": "QUIT",
            "stopwaitsecs": topology.gateway.proxy_read_timeout + 5,
            "redirect_stderr": "true",
            "stdout_logfile": f"{var}/log/nginx.log",
            "stdout_logfile_maxbytes": "10MB",
        },
    )
    if layout.monitoring:
        lines += _monitoring_programs(topology, layout)
    if layout.autoscale:
        lines += _helper(var, "autoscaler", f"{layout.python} -m shopfleet autoscaler --var {var}")
    # superlance's memmon restarts (stop + start: a graceful drain) any child past the ceiling.
    lines += _section(
        "eventlistener:memmon",
        {
            "command": f"{layout.memmon} -a {topology.process.memory_ceiling_mb}MB",
            "events": f"TICK_{topology.process.memory_check_seconds}",
            "autorestart": "true",
            "stderr_logfile": f"{var}/log/memmon.log",
            "stderr_logfile_maxbytes": "10MB",
        },
    )
    return "\n".join(lines).rstrip("\n") + "\n"


def _helper(var: str, name: str, command: str, env: dict[str, str] | None = None) -> list[str]:
    values: dict[str, str | int] = {
        "command": command,
        "directory": f"{var}/run",
        "priority": 950,
        "autorestart": "true",
        "stopsignal": "TERM",
        "stopwaitsecs": 10,
        "redirect_stderr": "true",
        "stdout_logfile": f"{var}/log/{name}.log",
        "stdout_logfile_maxbytes": "10MB",
    }
    if env:
        values["environment"] = ",".join(f"{key}={_quote(value)}" for key, value in env.items())
    return _section(f"program:{name}", values)


def _monitoring_programs(topology: Topology, layout: Layout) -> list[str]:
    """Prometheus, Alertmanager and the standard exporters, all on loopback."""
    m = topology.monitoring
    var, gateway = layout.var, topology.gateway
    config = f"{var}/run/monitoring"
    exporters = f"{layout.python} -m shopfleet.deploy.exporters"
    lines = _helper(
        var,
        "prometheus",
        f"{PROMETHEUS} --config.file={config}/prometheus.yml "
        f"--storage.tsdb.path={var}/data/prometheus --storage.tsdb.retention.time=2d "
        f"--web.listen-address=127.0.0.1:{m.prometheus_port} --web.enable-lifecycle",
    )
    lines += _helper(
        var,
        "alertmanager",
        f"{ALERTMANAGER} --config.file={config}/alertmanager.yml "
        f"--storage.path={var}/data/alertmanager --cluster.listen-address= "
        f"--web.listen-address=127.0.0.1:{m.alertmanager_port}",
    )
    lines += _helper(
        var,
        "nginx-exporter",
        f"{NGINX_EXPORTER} -nginx.scrape-uri "
        f"http://{gateway.internal_host}:{gateway.internal_port}/nginx/status "
        f"-web.listen-address 127.0.0.1:{m.nginx_exporter_port}",
    )
    # Without a private Redis the instances' SHOPFLEET_REDIS_URL reaches the exporter from
    # supervisord's environment, like the instances.
    redis_env = (
        {"SHOPFLEET_REDIS_URL": layout.redis_url}
        if layout.private_redis_port and layout.redis_url
        else None
    )
    if layout.redis_exporter:
        lines += _helper(
            var,
            "redis-exporter",
            f"{exporters} redis -web.listen-address 127.0.0.1:{m.redis_exporter_port}",
            redis_env,
        )
    if layout.postgres_exporter:
        lines += _helper(
            var,
            "postgres-exporter",
            f"{exporters} postgres --web.listen-address=127.0.0.1:{m.postgres_exporter_port}",
        )
    return lines


def render_committed(topology: Topology) -> dict[str, str]:
    return {COMMITTED_PATH: render_supervisor(topology, committed_layout(topology))}
