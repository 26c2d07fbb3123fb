"""The PostgreSQL connection budget: every pool together fits in what the server allows.

Local, PM2 and Compose runs hold `instances x pool_size` connections per service;
Kubernetes may reach `hpa.max x pool_size`. Both must stay within `max_connections -
reserved` (the reserve is for migrations, psql and exporters). Where the Kubernetes
maximums do not fit, PgBouncer takes the pods' connections and holds at most the budget.
"""

from __future__ import annotations

from collections.abc import Mapping

from shopfleet.deploy.topology import Topology


class BudgetError(ValueError):
    """A topology that cannot fit in the database's connections; one line, for an operator."""


def local_demand(topology: Topology) -> dict[str, int]:
    """Connections each service's running instances may hold (local, PM2, Compose)."""
    return {s.name: s.instances * s.pool for s in topology.ordered_services()}


def kubernetes_demand(topology: Topology) -> dict[str, int]:
    """Connections each service may hold with its HPA at the maximum."""
    return {s.name: s.hpa.max * s.pool for s in topology.ordered_services()}


def _refusal(
    what: str, demand: Mapping[str, int], max_connections: int, reserved: int, source: str
) -> BudgetError:
    parts = ", ".join(f"{name} {count}" for name, count in demand.items())
    return BudgetError(
        f"connection budget exceeded: {what} may open {sum(demand.values())} PostgreSQL "
        f"connections ({parts}) but {source} max_connections {max_connections} - {reserved} "
        f"reserved leaves {max_connections - reserved}; lower instances or [database] "
        "pool_size in the topology, or raise max_connections"
    )


def check_local(topology: Topology, *, server_max_connections: int | None = None) -> None:
    """Refuse a topology whose running instances would exceed the budget."""
    database = topology.database
    limit = server_max_connections or database.max_connections
    demand = local_demand(topology)
    if sum(demand.values()) > limit - database.reserved:
        instances = sum(s.instances for s in topology.ordered_services())
        source = "the server's" if server_max_connections else "the topology's"
        raise _refusal(f"{instances} instances", demand, limit, database.reserved, source)


def uses_pgbouncer(topology: Topology) -> bool:
    """Whether the Kubernetes manifests put PgBouncer between the pods and PostgreSQL."""
    database = topology.database
    if database.pooler != "auto":
        return database.pooler == "pgbouncer"
    return sum(kubernetes_demand(topology).values()) > database.budget


def check_kubernetes(topology: Topology) -> None:
    """Refuse HPA maximums that exceed the budget with no pooler to absorb them."""
    database = topology.database
    if uses_pgbouncer(topology):
        pgbouncer_pools(topology)  # raises when the budget cannot give every service one
        return
    demand = kubernetes_demand(topology)
    if sum(demand.values()) > database.budget:
        raise _refusal(
            "the HPA maximums (pooler none)",
            demand,
            database.max_connections,
            database.reserved,
            "the topology's",
        )


def pgbouncer_pools(topology: Topology) -> dict[str, int]:
    """PgBouncer's server connections per service: the budget shared by HPA demand.

    Never more than a service's own demand, never below one, and together within budget.
    """
    budget = topology.database.budget
    demand = kubernetes_demand(topology)
    services = topology.ordered_services()
    if budget < len(services):
        raise BudgetError(
            f"connection budget too small: max_connections {topology.database.max_connections}"
            f" - {topology.database.reserved} reserved leaves {budget}, PgBouncer needs at "
            f"least one server connection for each of the {len(services)} services"
        )
    total = sum(demand.values())
    return {s.name: max(1, min(demand[s.name], budget * demand[s.name] // total)) for s in services}


def check_topology(topology: Topology) -> None:
    """Everything `shopfleet render` can check without a server."""
    check_local(topology)
    check_kubernetes(topology)
