"""PgBouncer in front of PostgreSQL, when the HPA maximums exceed the connection budget.

The pods' pools connect to PgBouncer (cheap client connections); PgBouncer holds at most
the budget's server connections, shared in transaction mode. Each service gets its own
PgBouncer database (`shopfleet_<service>`) whose server connections set the service's
search_path once (connect_query): PgBouncer 1.18 (Debian 12) cannot pass search_path as
a startup parameter, and a session SET would leak between pods in transaction mode.
One replica: a second would double the server connections the budget allows.
"""

from __future__ import annotations

from typing import Any

from shopfleet.deploy.render import budget
from shopfleet.deploy.render.kubernetes_platform import (
    CONTAINER_SECURITY,
    DATABASE,
    Document,
    labels,
    metadata,
    pod_security,
    secret_env,
)
from shopfleet.deploy.render.manifests import CONTAINER_TMP
from shopfleet.deploy.topology import Topology

NAME = "pgbouncer"
PORT = 6432
CONTAINERFILE = "deploy/kubernetes/pgbouncer.Containerfile"
INI_PATH = "/etc/pgbouncer/pgbouncer.ini"
USERLIST = f"{CONTAINER_TMP}/userlist.txt"


def database_name(service: str) -> str:
    """The PgBouncer database a service's pods connect to."""
    return f"{DATABASE}_{service}"


def database_url(service: str) -> str:
    """The URL a service's pods use behind PgBouncer (password expanded by the kubelet)."""
    return (
        f"postgresql+asyncpg://{DATABASE}:$(POSTGRES_PASSWORD)@{NAME}:{PORT}/"
        f"{database_name(service)}"
    )


def render_ini(topology: Topology) -> str:
    """pgbouncer.ini: one database per service, server pools that add up to the budget."""
    pools = budget.pgbouncer_pools(topology)
    clients = sum(budget.kubernetes_demand(topology).values())
    lines = ["[databases]"]
    for name, size in pools.items():
        lines.append(
            f"{database_name(name)} = host=postgres port=5432 dbname={DATABASE} "
            f"pool_size={size} max_db_connections={size} "
            f"connect_query='SET search_path TO {name}'"
        )
    lines += [
        "",
        "[pgbouncer]",
        "listen_addr = 0.0.0.0",
        f"listen_port = {PORT}",
        "unix_socket_dir =",
        "auth_type = scram-sha-256",
        f"auth_file = {USERLIST}",
        # A server connection serves one transaction at a time, then the next pod's.
        "pool_mode = transaction",
        # Every pod at its HPA maximum with a full pool, plus room for a rollout's surge.
        f"max_client_conn = {clients * 2}",
        "default_pool_size = 1",
        "reserve_pool_size = 0",
        "min_pool_size = 0",
        # Server connections idle this long close, as the pods' own idle pool connections do.
        f"server_idle_timeout = {topology.database.idle_timeout}",
        "server_lifetime = 3600",
        "ignore_startup_parameters = extra_float_digits",
        "admin_users =",
        "stats_users =",
        "",
    ]
    return "\n".join(lines)


def render_containerfile() -> str:
    return "\n".join(
        [
            "# Rendered by `shopfleet render`. Debian's PgBouncer (1.18 in bookworm), used by",
            "# deploy/kubernetes/base/pgbouncer.yaml when the HPA maximums exceed the budget:",
            f"#   podman build -t shopfleet-pgbouncer:latest -f {CONTAINERFILE} .",
            "FROM debian:bookworm-slim",
            "RUN apt-get update \\",
            "    && apt-get install -y --no-install-recommends pgbouncer \\",
            "    && rm -rf /var/lib/apt/lists/*",
            "USER 10001",
            'ENTRYPOINT ["/usr/sbin/pgbouncer"]',
            "",
        ]
    )


def _deployment(topology: Topology) -> Document:
    # The password only exists in the Secret: the userlist is written at start, in /tmp.
    start = (
        f'printf \'"%s" "%s"\\n\' {DATABASE} "$POSTGRES_PASSWORD" > {USERLIST} '
        f"&& exec /usr/sbin/pgbouncer {INI_PATH}"
    )
    container: dict[str, Any] = {
        "name": NAME,
        "image": topology.database.pgbouncer_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", start],
        "ports": [{"name": "pgbouncer", "containerPort": PORT}],
        "env": [secret_env("POSTGRES_PASSWORD", "postgres-password")],
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
        "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 10},
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/pgbouncer", "readOnly": True},
            {"name": "tmp", "mountPath": CONTAINER_TMP},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(topology, NAME, "pooler"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            # Recreate: two PgBouncers at once would hold twice the budget.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": labels(NAME, "pooler")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(10001),
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": NAME}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def documents(topology: Topology) -> list[Document]:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(topology, NAME, "pooler"),
        "data": {"pgbouncer.ini": render_ini(topology)},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(topology, NAME, "pooler"),
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": NAME},
            "ports": [{"name": "pgbouncer", "port": PORT, "targetPort": "pgbouncer"}],
        },
    }
    return [config, _deployment(topology), service]


def pgbouncer_files(topology: Topology) -> dict[str, tuple[tuple[str, ...], list[Document]]]:
    """The base's pgbouncer.yaml, or nothing when the HPA maximums fit the budget."""
    if not budget.uses_pgbouncer(topology):
        return {}
    pools = budget.pgbouncer_pools(topology)
    demand = sum(budget.kubernetes_demand(topology).values())
    comment = (
        f"PgBouncer: the HPA maximums may open {demand} connections, the budget is "
        f"{topology.database.budget}",
        f"(max_connections {topology.database.max_connections} - "
        f"{topology.database.reserved} reserved); server pools: "
        + ", ".join(f"{name} {size}" for name, size in pools.items())
        + ".",
        f"Image: Debian's pgbouncer, built from {CONTAINERFILE}.",
    )
    return {"pgbouncer.yaml": (comment, documents(topology))}
