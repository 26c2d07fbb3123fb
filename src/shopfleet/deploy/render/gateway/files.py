"""The gateway configs the deployments use: the local one (committed, and rendered live
by `shopfleet up` with the current scale) and the Compose one. PM2's is the local one
without comments (render/pm2.py)."""

from __future__ import annotations

from shopfleet.deploy.render.gateway.build import COMPOSE_STATE, compose_gateway, local_gateway
from shopfleet.deploy.render.gateway.nginx import render_nginx_conf
from shopfleet.deploy.topology import Topology

NGINX = "/usr/sbin/nginx"
LOCAL_CONF = "deploy/local/nginx.conf"
COMPOSE_CONF = "deploy/compose/nginx.conf"


def _rendered_by(topology: Topology) -> tuple[str, str]:
    return (
        f"Rendered by `shopfleet render` from shopfleet.toml (profile {topology.profile}).",
        "Do not edit: change the topology and render again.",
    )


def render_local(
    topology: Topology,
    *,
    worker_user: str | None = None,
    excluded: frozenset[str] = frozenset(),
) -> str:
    """The local gateway's nginx.conf for a topology (its current instance counts).

    Every path in it is relative to nginx's prefix (`nginx -p var/run/nginx/`), so the
    committed render holds no machine paths and a non-root user can run it.
    `worker_user`: when the master runs as root, keep the workers under this user (they
    must write the micro-cache under var/, which may sit in a private directory).
    `excluded`: instances taken out of the gateway (being stopped or restarted); a service
    never loses its last instance this way.
    """
    comments = (
        *_rendered_by(topology),
        'Run from the repository root: nginx -p var/run/nginx/ -c "$PWD/deploy/local/nginx.conf"',
        "(`shopfleet up` renders its own copy into var/run/nginx/ with the live scale).",
    )
    model = local_gateway(topology, comments=comments, worker_user=worker_user, excluded=excluded)
    return render_nginx_conf(model)


def render_compose(topology: Topology) -> str:
    comments = (
        *_rendered_by(topology),
        "The Compose gateway (mounted at /etc/shopfleet/nginx.conf); its entrypoint writes",
        f"{COMPOSE_STATE}/resolver.conf, the container's DNS server, before starting nginx.",
    )
    return render_nginx_conf(compose_gateway(topology, comments=comments))


def render_committed(topology: Topology) -> dict[str, str]:
    return {LOCAL_CONF: render_local(topology)}
