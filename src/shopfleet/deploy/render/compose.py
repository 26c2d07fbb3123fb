"""Docker Compose files: one image for every service, PostgreSQL, Redis and the gateway.

`docker-compose.yml` runs one replica of everything; `docker-compose.scale.yml` adds the
topology's replicas, resource limits and rolling-update policy. Secrets come from the
environment (a `.env` file next to the compose files); nothing secret is rendered.
"""

from __future__ import annotations

import json
from typing import Any

from shopfleet.deploy.render.gateway import files as gateway_files
from shopfleet.deploy.render.gateway.build import COMPOSE_STATE, compose_gateway
from shopfleet.deploy.render.manifests import (
    CONTAINER_TMP,
    REDIS_COMMAND,
    cpus,
    dump,
    header,
    megabytes,
    serve_command,
)
from shopfleet.deploy.topology import Resources, Service, Topology

COMPOSE_PATH = "docker-compose.yml"
SCALE_PATH = "docker-compose.scale.yml"
GATEWAY_IMAGE = "shopfleet-gateway:latest"
POSTGRES_IMAGE = "postgres:16-bookworm"
REDIS_IMAGE = "redis:7-bookworm"
DATABASE = "shopfleet"
BUILD_ARGS = {"BASE_IMAGE": "${BASE_IMAGE:-python:3.11-slim}"}


def required(variable: str) -> str:
    """A Compose interpolation that refuses to start without the variable."""
    return f"${{{variable}:?set {variable} in .env (see docs/deployment.md)}}"


def _database_url() -> str:
    password = required("POSTGRES_PASSWORD")
    return f"postgresql+asyncpg://{DATABASE}:{password}@postgres:5432/{DATABASE}"


def _platform_environment(topology: Topology) -> dict[str, str]:
    """What every service container shares."""
    return {
        "SHOPFLEET_ENVIRONMENT": "production",
        "SHOPFLEET_DATABASE_URL": _database_url(),
        "SHOPFLEET_REDIS_URL": "redis://redis:6379/0",
        "SHOPFLEET_INTERNAL_URL": f"http://gateway:{topology.gateway.internal_port}",
        "SHOPFLEET_INTERNAL_TOKEN": required("SHOPFLEET_INTERNAL_TOKEN"),
        # Only the Compose network (the gateway container) may say who the client is.
        "SHOPFLEET_TRUSTED_PROXIES": json.dumps(list(compose_gateway(topology).trusted_proxies)),
        "SHOPFLEET_SHUTDOWN_TIMEOUT": str(topology.process.shutdown_timeout),
        "SHOPFLEET_CURRENCY": topology.project.currency,
    }


def _healthcheck(test: list[str], *, start_period: str = "30s") -> dict[str, Any]:
    return {
        "test": test,
        "interval": "10s",
        "timeout": "3s",
        "retries": 3,
        "start_period": start_period,
    }


def _hardening() -> dict[str, Any]:
    """What every shopfleet container gets: read-only root, no capabilities."""
    return {
        "read_only": True,
        "tmpfs": [f"{CONTAINER_TMP}:size=64m", "/app/var:size=64m,mode=1777"],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
    }


def _service(topology: Topology, service: Service) -> dict[str, Any]:
    port = str(service.port)
    environment = {**_platform_environment(topology), **service.environment(), "PORT": port}
    if service.name == "auth":
        # Every auth replica signs with the same key, so tokens verify whichever one issued them.
        environment["SHOPFLEET_JWT_PRIVATE_KEY"] = required("SHOPFLEET_JWT_PRIVATE_KEY")
    ready = f"urllib.request.urlopen('http://127.0.0.1:{port}/health/ready', timeout=2)"
    return {
        "image": topology.project.image,
        "command": serve_command(service),
        "environment": dict(sorted(environment.items())),
        "expose": [port],
        "depends_on": {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        },
        "healthcheck": _healthcheck(["CMD", "python3", "-c", f"import urllib.request; {ready}"]),
        "restart": "unless-stopped",
        # Longer than the drain, so the engine never kills an instance finishing requests.
        "stop_grace_period": f"{topology.process.shutdown_timeout + 5}s",
        **_hardening(),
    }


def _infrastructure(topology: Topology) -> dict[str, Any]:
    gateway = topology.gateway
    return {
        "postgres": {
            "image": POSTGRES_IMAGE,
            "environment": {
                "POSTGRES_DB": DATABASE,
                "POSTGRES_USER": DATABASE,
                "POSTGRES_PASSWORD": required("POSTGRES_PASSWORD"),
            },
            "volumes": ["pgdata:/var/lib/postgresql/data"],
            "healthcheck": _healthcheck(
                ["CMD", "pg_isready", "-U", DATABASE, "-d", DATABASE], start_period="20s"
            ),
            "restart": "unless-stopped",
        },
        "redis": {
            "image": REDIS_IMAGE,
            "command": REDIS_COMMAND,
            "healthcheck": _healthcheck(["CMD", "redis-cli", "ping"], start_period="10s"),
            "restart": "unless-stopped",
        },
        "migrate": {
            "image": topology.project.image,
            "build": {"context": ".", "target": "runtime", "args": BUILD_ARGS},
            "command": ["migrate", "all"],
            "environment": {
                "SHOPFLEET_DATABASE_URL": _database_url(),
                "SHOPFLEET_ENVIRONMENT": "production",
            },
            "depends_on": {"postgres": {"condition": "service_healthy"}},
            "healthcheck": {"disable": True},
            "restart": "no",
            **_hardening(),
        },
        "gateway": {
            "image": GATEWAY_IMAGE,
            "build": {"context": ".", "target": "gateway", "args": BUILD_ARGS},
            "ports": [f"${{SHOPFLEET_GATEWAY_PORT:-{gateway.public_port}}}:{gateway.public_port}"],
            "volumes": [
                f"./{gateway_files.COMPOSE_CONF}:/etc/shopfleet/nginx.conf:ro",
                # nginx's temp files and micro-cache. A named volume takes the image folder's
                # owner (the gateway user); a tmpfs would be root's again after a restart
                # under Podman.
                f"gateway-cache:{COMPOSE_STATE}",
            ],
            # nginx resolves service names per request, so it may start before the services.
            "depends_on": {"redis": {"condition": "service_healthy"}},
            "healthcheck": _healthcheck(
                ["CMD", "curl", "-fsS", f"http://127.0.0.1:{gateway.internal_port}/nginx/health"],
                start_period="5s",
            ),
            "restart": "unless-stopped",
            "stop_grace_period": f"{gateway.proxy_read_timeout + 5}s",
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
        },
    }


def render_compose_file(topology: Topology) -> str:
    services = _infrastructure(topology)
    for service in topology.ordered_services():
        services[service.name] = _service(topology, service)
    document = {
        "name": topology.project.name,
        "services": services,
        "volumes": {"pgdata": {}, "gateway-cache": {}},
        # An explicit subnet, so the instances can trust exactly it (trusted proxies).
        "networks": {
            "default": {"ipam": {"config": [{"subnet": topology.networks.compose_subnet}]}}
        },
    }
    return header(
        topology,
        "One replica of everything. With the topology's replicas and limits:",
        f"  docker compose -f {COMPOSE_PATH} -f {SCALE_PATH} up -d",
        "Secrets come from .env: see docs/deployment.md.",
    ) + dump(document)


def _deploy(resources: Resources, replicas: int | None) -> dict[str, Any]:
    # mode is the specification's default; podman-compose reads replicas only when it is set.
    deploy: dict[str, Any] = (
        {} if replicas is None else {"mode": "replicated", "replicas": replicas}
    )
    deploy["resources"] = {
        "limits": {"cpus": cpus(resources.cpu_limit), "memory": megabytes(resources.memory_limit)},
        "reservations": {
            "cpus": cpus(resources.cpu_request),
            "memory": megabytes(resources.memory_request),
        },
    }
    if replicas is not None:
        # New replica first, then the old one stops: capacity never drops during an update.
        deploy["update_config"] = {
            "parallelism": 1,
            "delay": "10s",
            "order": "start-first",
            "failure_action": "rollback",
        }
        deploy["rollback_config"] = {"parallelism": 1, "delay": "5s"}
        deploy["restart_policy"] = {"condition": "any", "delay": "5s"}
    return deploy


def render_scale_file(topology: Topology) -> str:
    services: dict[str, Any] = {"redis": {"deploy": _deploy(topology.redis.resources, None)}}
    for service in topology.ordered_services():
        services[service.name] = {"deploy": _deploy(service.resources, service.instances)}
    return header(
        topology,
        "Replicas, resources and update policy per service; use on top of the base file:",
        f"  docker compose -f {COMPOSE_PATH} -f {SCALE_PATH} up -d",
    ) + dump({"services": services})


def render_compose(topology: Topology) -> dict[str, str]:
    return {
        COMPOSE_PATH: render_compose_file(topology),
        SCALE_PATH: render_scale_file(topology),
        gateway_files.COMPOSE_CONF: gateway_files.render_compose(topology),
    }
