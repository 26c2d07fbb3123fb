"""The gateway model: every deployment's gateway applies the same routes and policy."""

from __future__ import annotations

import re
from dataclasses import replace

from shopfleet.deploy.render.gateway.build import compose_gateway, local_gateway
from shopfleet.deploy.render.gateway.model import GatewayModel, Location, Proxy, Server
from shopfleet.deploy.topology import LOCAL_PROXIES, load_topology
from tests.support import REPO_ROOT

TOPOLOGY = load_topology(REPO_ROOT / "shopfleet.toml")


def policy(location: Location) -> Location:
    """The location without where it sends requests (that differs by deployment)."""
    if isinstance(location.action, Proxy):
        # Compose captures an asset's file name (its targets get the URI as written).
        match = re.sub(r"^~ \^", "", location.match).split("/assets/")[0]
        return replace(location, match=match, action=Proxy(""))
    return location


def policies(server: Server) -> list[Location]:
    return [policy(location) for location in server.locations]


def server_policy(server: Server) -> tuple[object, ...]:
    return (server.limits, server.connections_per_client, server.headers, server.comment)


def test_local_and_compose_gateways_share_routes_and_policy() -> None:
    local, compose = local_gateway(TOPOLOGY), compose_gateway(TOPOLOGY)
    assert [server_policy(s) for s in local.servers] == [server_policy(s) for s in compose.servers]
    for ours, theirs in zip(local.servers, compose.servers, strict=True):
        assert policies(ours) == policies(theirs)
    assert local.zones == compose.zones
    assert local.micro_cache.seconds == compose.micro_cache.seconds


def test_compose_finds_replicas_by_name_and_local_by_port() -> None:
    def targets(model: GatewayModel) -> set[tuple[str, bool]]:
        return {
            (location.action.target, location.action.resolve)
            for server in model.servers
            for location in server.locations
            if isinstance(location.action, Proxy)
        }

    assert targets(compose_gateway(TOPOLOGY)) == {
        (f"{service.name}:{service.port}", True) for service in TOPOLOGY.ordered_services()
    }
    assert targets(local_gateway(TOPOLOGY)) == {
        (service.name, False) for service in TOPOLOGY.ordered_services()
    }
    assert compose_gateway(TOPOLOGY).upstreams == ()
    assert [u.name for u in local_gateway(TOPOLOGY).upstreams] == [
        s.name for s in TOPOLOGY.ordered_services()
    ]


def test_trusted_proxies_are_the_gateways_network() -> None:
    assert local_gateway(TOPOLOGY).trusted_proxies == LOCAL_PROXIES
    assert compose_gateway(TOPOLOGY).trusted_proxies == (TOPOLOGY.networks.compose_subnet,)


def test_excluded_instances_leave_the_upstream_but_never_the_last_one() -> None:
    model = local_gateway(TOPOLOGY, excluded=frozenset({"products-2", "users-1", "users-2"}))
    servers = {u.name: [s.address for s in u.servers] for u in model.upstreams}
    products = TOPOLOGY.services["products"]
    assert f"127.0.0.1:{products.instance_port(2)}" not in servers["products"]
    assert len(servers["products"]) == products.instances - 1
    assert len(servers["users"]) == TOPOLOGY.services["users"].instances
