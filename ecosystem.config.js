// Rendered by `shopfleet render` from shopfleet.toml (profile default).
// Do not edit: change the topology and render again.
//   .venv/bin/shopfleet migrate all
//   pm2 start ecosystem.config.js --env production
// See docs/deployment.md for status, logs, scaling and zero-downtime reloads.
'use strict';
const fs = require('fs');
const path = require('path');

const SERVICES_NAMESPACE = "shopfleet";
const EDGE_NAMESPACE = "shopfleet-edge";
const REDIS_URL = "redis://127.0.0.1:6390/0";
const MEMORY_CEILING = "500M";
const KILL_TIMEOUT_MS = 30000;
const LISTEN_TIMEOUT_MS = 30000;
const GATEWAY_KILL_TIMEOUT_MS = 40000;
const NGINX = "/usr/sbin/nginx";
const NGINX_CONF = "deploy/pm2/nginx.conf";

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

module.exports = {
  apps: [
    ...(ownRedis ? [redis(6390)] : []),
    instance({"env": {"SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_SERVICE": "auth", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 1, "port": 3000, "service": "auth"}),
    instance({"env": {"SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_SERVICE": "users", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 1, "port": 3003, "service": "users"}),
    instance({"env": {"SHOPFLEET_CACHE_DETAIL_TTL": "900", "SHOPFLEET_CACHE_LIST_TTL": "300", "SHOPFLEET_CACHE_WARM_RECENT": "20", "SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_RATE_LIMIT_REQUESTS": "300", "SHOPFLEET_RATE_LIMIT_WINDOW": "900", "SHOPFLEET_SERVICE": "categories", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 1, "port": 3002, "service": "categories"}),
    instance({"env": {"SHOPFLEET_CACHE_DETAIL_TTL": "900", "SHOPFLEET_CACHE_LIST_TTL": "300", "SHOPFLEET_CACHE_WARM_RECENT": "20", "SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_RATE_LIMIT_REQUESTS": "100", "SHOPFLEET_RATE_LIMIT_WINDOW": "900", "SHOPFLEET_SERVICE": "products", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 1, "port": 3001, "service": "products"}),
    instance({"env": {"SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_RATE_LIMIT_REQUESTS": "100", "SHOPFLEET_RATE_LIMIT_WINDOW": "900", "SHOPFLEET_SERVICE": "orders", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 1, "port": 3004, "service": "orders"}),
    instance({"env": {"SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_SERVICE": "auth", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 2, "port": 3010, "service": "auth"}),
    instance({"env": {"SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_SERVICE": "users", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 2, "port": 3013, "service": "users"}),
    instance({"env": {"SHOPFLEET_CACHE_DETAIL_TTL": "900", "SHOPFLEET_CACHE_LIST_TTL": "300", "SHOPFLEET_CACHE_WARM_RECENT": "20", "SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_RATE_LIMIT_REQUESTS": "300", "SHOPFLEET_RATE_LIMIT_WINDOW": "900", "SHOPFLEET_SERVICE": "categories", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 2, "port": 3012, "service": "categories"}),
    instance({"env": {"SHOPFLEET_CACHE_DETAIL_TTL": "900", "SHOPFLEET_CACHE_LIST_TTL": "300", "SHOPFLEET_CACHE_WARM_RECENT": "20", "SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_RATE_LIMIT_REQUESTS": "100", "SHOPFLEET_RATE_LIMIT_WINDOW": "900", "SHOPFLEET_SERVICE": "products", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 2, "port": 3011, "service": "products"}),
    instance({"env": {"SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_RATE_LIMIT_REQUESTS": "100", "SHOPFLEET_RATE_LIMIT_WINDOW": "900", "SHOPFLEET_SERVICE": "orders", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 2, "port": 3014, "service": "orders"}),
    instance({"env": {"SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_SERVICE": "auth", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 3, "port": 3020, "service": "auth"}),
    instance({"env": {"SHOPFLEET_CACHE_DETAIL_TTL": "900", "SHOPFLEET_CACHE_LIST_TTL": "300", "SHOPFLEET_CACHE_WARM_RECENT": "20", "SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_RATE_LIMIT_REQUESTS": "100", "SHOPFLEET_RATE_LIMIT_WINDOW": "900", "SHOPFLEET_SERVICE": "products", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 3, "port": 3021, "service": "products"}),
    instance({"env": {"SHOPFLEET_CURRENCY": "USD", "SHOPFLEET_DATABASE_IDLE_TIMEOUT": "30", "SHOPFLEET_DATABASE_POOL_MIN": "2", "SHOPFLEET_DATABASE_POOL_SIZE": "6", "SHOPFLEET_INTERNAL_URL": "http://127.0.0.1:8081", "SHOPFLEET_RATE_LIMIT_REQUESTS": "100", "SHOPFLEET_RATE_LIMIT_WINDOW": "900", "SHOPFLEET_SERVICE": "orders", "SHOPFLEET_SHUTDOWN_TIMEOUT": "25", "SHOPFLEET_TRUSTED_PROXIES": "[\"127.0.0.1/32\"]"}, "index": 3, "port": 3024, "service": "orders"}),
    gateway(),
  ],
};
