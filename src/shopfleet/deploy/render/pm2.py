"""PM2's `ecosystem.config.js`: one fork-mode app per instance, plus Redis and the gateway.

PM2's cluster mode shares one port between Node.js workers; Python instances are separate
processes on their own ports behind nginx, so each is its own fork-mode app. Paths are
relative to the file (`__dirname`), so the committed render holds no machine paths.
"""

from __future__ import annotations

import json

from shopfleet.deploy.render.gateway import files as gateway_files
from shopfleet.deploy.render.gateway.build import local_gateway
from shopfleet.deploy.topology import Topology

COMMITTED_PATH = "ecosystem.config.js"
GATEWAY_CONF = "deploy/pm2/nginx.conf"
# Services and infrastructure live in separate PM2 namespaces: `pm2 reload shopfleet`
# rolls every instance while nginx and Redis keep running.
SERVICES_NAMESPACE = "shopfleet"
EDGE_NAMESPACE = "shopfleet-edge"

_REQUIRES = """\
'use strict';
const fs = require('fs');
const path = require('path');
"""

_PRELUDE = """\
const root = __dirname;
const python = path.join(root, '.venv', 'bin', 'python');
const logDir = path.join(root, 'var', 'log', 'pm2');
for (const dir of [logDir, path.join(root, 'var', 'run', 'nginx')]) {
  fs.mkdirSync(dir, { recursive: true });
}
// A Redis of your own: export SHOPFLEET_REDIS_URL before `pm2 start`; otherwise a private
// redis-server runs as an app. Secrets (SHOPFLEET_INTERNAL_TOKEN, SHOPFLEET_JWT_PRIVATE_KEY,
// SHOPFLEET_DATABASE_URL) come from the environment PM2 is started in.
const ownRedis = !process.env.SHOPFLEET_REDIS_URL;

function logs(name) {
  return {
    out_file: path.join(logDir, `${name}.out.log`),
    error_file: path.join(logDir, `${name}.error.log`),
    time: true,
  };
}

function instance({ service, index, port, env }) {
  const name = `${service}-${index}`;
  const common = { ...env, ...(ownRedis ? { SHOPFLEET_REDIS_URL: REDIS_URL } : {}) };
  return {
    name,
    namespace: SERVICES_NAMESPACE,
    script: python,
    args: ['-m', 'shopfleet', 'serve', service, '--host', '127.0.0.1',
           '--port', String(port), '--instance', String(index)],
    interpreter: 'none',
    cwd: root,
    instances: 1,
    exec_mode: 'fork',
    merge_logs: true, // log file names without PM2's process id suffix
    autorestart: true,
    max_memory_restart: MEMORY_CEILING,
    // SIGTERM starts the drain; PM2 kills only after it had time to finish.
    kill_signal: 'SIGTERM',
    kill_timeout: KILL_TIMEOUT_MS,
    // The instance tells PM2 when it serves (a "ready" message), so a reload moves on to
    // the next instance only then and a service never has all its instances down.
    wait_ready: true,
    listen_timeout: LISTEN_TIMEOUT_MS,
    ...logs(name),
    env: { ...common, SHOPFLEET_ENVIRONMENT: 'development' },
    env_production: { ...common, SHOPFLEET_ENVIRONMENT: 'production' },
  };
}

function redis(port) {
  return {
    name: 'redis',
    namespace: EDGE_NAMESPACE,
    script: 'redis-server',
    args: ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no',
           '--maxmemory', '256mb', '--maxmemory-policy', 'volatile-lru'],
    interpreter: 'none',
    cwd: root,
    autorestart: true,
    ...logs('redis'),
  };
}

function gateway() {
  return {
    name: 'gateway',
    namespace: EDGE_NAMESPACE,
    // nginx (daemon off) with the local gateway's config, passive checks tuned for PM2;
    // `pm2 sendSignal SIGHUP gateway` reloads its config without dropping a connection.
    script: NGINX,
    args: ['-p', 'var/run/nginx/', '-c', path.join(root, NGINX_CONF), '-e', 'stderr'],
    interpreter: 'none',
    cwd: root,
    autorestart: true,
    kill_signal: 'SIGQUIT',
    kill_timeout: GATEWAY_KILL_TIMEOUT_MS,
    ...logs('gateway'),
  };
}
"""


def _js(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def render_ecosystem(topology: Topology) -> str:
    gateway = topology.gateway
    process = topology.process
    constants = {
        "SERVICES_NAMESPACE": SERVICES_NAMESPACE,
        "EDGE_NAMESPACE": EDGE_NAMESPACE,
        "REDIS_URL": f"redis://127.0.0.1:{topology.local.redis_port}/0",
        "MEMORY_CEILING": f"{process.memory_ceiling_mb}M",
        "KILL_TIMEOUT_MS": process.shutdown_timeout * 1000 + 5000,
        "LISTEN_TIMEOUT_MS": 30000,
        "GATEWAY_KILL_TIMEOUT_MS": (gateway.proxy_read_timeout + 5) * 1000,
        "NGINX": gateway_files.NGINX,
        "NGINX_CONF": GATEWAY_CONF,
    }
    head = [
        f"// Rendered by `shopfleet render` from shopfleet.toml (profile {topology.profile}).",
        "// Do not edit: change the topology and render again.",
        "//   .venv/bin/shopfleet migrate all",
        "//   pm2 start ecosystem.config.js --env production",
        "// See docs/deployment.md for status, logs, scaling and zero-downtime reloads.",
        _REQUIRES,
        *(f"const {name} = {_js(value)};" for name, value in constants.items()),
    ]
    # Instance 1 of every service, then instance 2 of every service, ...: PM2 reloads two
    # apps at a time in this order, and the two are never the same service's.
    services = topology.ordered_services()
    apps = ["...(ownRedis ? [redis(" + str(topology.local.redis_port) + ")] : []),"]
    for index in range(1, max((s.instances for s in services), default=0) + 1):
        for service in services:
            if index <= service.instances:
                spec = {
                    "service": service.name,
                    "index": index,
                    "port": service.instance_port(index),
                    "env": {**service.environment(), **_platform_environment(topology)},
                }
                apps.append(f"instance({_js(spec)}),")
    apps.append("gateway(),")
    body = ["module.exports = {", "  apps: [", *(f"    {app}" for app in apps), "  ],", "};"]
    return "\n".join([*head, "", _PRELUDE, *body]) + "\n"


def _platform_environment(topology: Topology) -> dict[str, str]:
    gateway = topology.gateway
    return {
        "SHOPFLEET_INTERNAL_URL": f"http://{gateway.internal_host}:{gateway.internal_port}",
        "SHOPFLEET_SHUTDOWN_TIMEOUT": str(topology.process.shutdown_timeout),
        "SHOPFLEET_CURRENCY": topology.project.currency,
        # Only the local gateway may say who the client is.
        "SHOPFLEET_TRUSTED_PROXIES": json.dumps(list(local_gateway(topology).trusted_proxies)),
    }


def render_gateway(topology: Topology, *, worker_user: str | None = None) -> str:
    """The local gateway's nginx.conf. Its passive health checks already suit instances
    that PM2 restarts without telling nginx: none is ever marked down, a refused connect
    goes to the next instance at once (gateway/build.py, PASSIVE_HEALTH)."""
    local = gateway_files.render_local(topology, worker_user=worker_user)
    body = [line for line in local.splitlines() if not line.startswith("#")]
    head = [
        f"# Rendered by `shopfleet render` from shopfleet.toml (profile {topology.profile}).",
        "# Do not edit: change the topology and render again.",
        "# The gateway of ecosystem.config.js: deploy/local/nginx.conf, comments left out.",
    ]
    return "\n".join([*head, *body]) + "\n"


def render_pm2(topology: Topology) -> dict[str, str]:
    return {COMMITTED_PATH: render_ecosystem(topology), GATEWAY_CONF: render_gateway(topology)}
