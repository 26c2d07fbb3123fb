"""The connection budget: every pool together fits in PostgreSQL's max_connections."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from shopfleet.deploy.render import budget
from shopfleet.deploy.render.kubernetes import render_kubernetes
from shopfleet.deploy.topology import Topology
from tests.support import REPO_ROOT

SEED = REPO_ROOT / "shopfleet.toml"


def topology(**database: Any) -> Topology:
    data = tomllib.loads(SEED.read_text())
    data.pop("profiles")
    data["database"] = {**data["database"], **database}
    return Topology.model_validate(data)


def over_budget_file(tmp_path: Path) -> Path:
    """The seed with the old pool size: 13 instances x 10 = 130 > 100 - 10."""
    text = SEED.read_text()
    assert "\npool_size = 6 " in text
    path = tmp_path / "shopfleet.toml"
    path.write_text(text.replace("\npool_size = 6 ", "\npool_size = 10 "))
    return path


def test_the_seed_fits_locally_and_every_instance_gets_its_pool_size() -> None:
    seed = topology()
    assert budget.local_demand(seed) == {
        "auth": 18,
        "users": 12,
        "categories": 12,
        "products": 18,
        "orders": 18,
    }
    assert sum(budget.local_demand(seed).values()) == 78 <= seed.database.budget == 90
    budget.check_topology(seed)
    assert seed.services["orders"].environment()["SHOPFLEET_DATABASE_POOL_SIZE"] == "6"


def test_thirteen_instances_with_pools_of_ten_are_refused_in_one_line() -> None:
    with pytest.raises(budget.BudgetError) as refused:
        budget.check_local(topology(pool_size=10))
    message = str(refused.value)
    assert "\n" not in message
    assert "13 instances may open 130 PostgreSQL connections" in message
    assert "max_connections 100 - 10 reserved leaves 90" in message


def test_the_servers_real_limit_decides_at_up() -> None:
    seed = topology()
    budget.check_local(seed, server_max_connections=88)  # 78 <= 88 - 10
    with pytest.raises(budget.BudgetError, match="the server's max_connections 80"):
        budget.check_local(seed, server_max_connections=80)


def test_a_service_may_size_its_own_pool() -> None:
    data = tomllib.loads(SEED.read_text())
    data.pop("profiles")
    data["services"]["orders"]["pool_size"] = 10
    custom = Topology.model_validate(data)
    assert budget.local_demand(custom)["orders"] == 30
    assert budget.local_demand(custom)["auth"] == 18


def test_kubernetes_counts_every_hpa_at_its_maximum() -> None:
    seed = topology()
    demand = budget.kubernetes_demand(seed)
    # HPA maximums 10 + 8 + 6 + 10 + 12 = 46 pods x 6.
    assert sum(demand.values()) == 276
    assert budget.uses_pgbouncer(seed)
    pools = budget.pgbouncer_pools(seed)
    assert sum(pools.values()) <= seed.database.budget
    assert all(1 <= pools[name] <= demand[name] for name in pools)
    assert pools["orders"] > pools["categories"]  # shared by demand


def test_kubernetes_without_a_pooler_must_fit_on_its_own() -> None:
    with pytest.raises(budget.BudgetError, match="HPA maximums"):
        budget.check_kubernetes(topology(pooler="none"))
    roomy = topology(max_connections=300, pooler="none")  # 276 <= 290
    budget.check_kubernetes(roomy)
    assert not budget.uses_pgbouncer(topology(max_connections=300))


def test_pgbouncer_is_rendered_only_when_needed() -> None:
    pooled = render_kubernetes(topology())
    assert "deploy/kubernetes/base/pgbouncer.yaml" in pooled
    assert (
        "pgbouncer:6432/shopfleet_orders" in pooled["deploy/kubernetes/base/orders-deployment.yaml"]
    )
    assert "max_connections=100" in pooled["deploy/kubernetes/base/postgres-statefulset.yaml"]
    direct = render_kubernetes(topology(max_connections=300))
    assert "deploy/kubernetes/base/pgbouncer.yaml" not in direct
    assert "@postgres:5432/shopfleet" in direct["deploy/kubernetes/base/orders-deployment.yaml"]


def test_a_budget_too_small_for_one_connection_per_service_is_refused() -> None:
    with pytest.raises(budget.BudgetError, match="at least one server connection"):
        budget.pgbouncer_pools(topology(max_connections=14, reserved=10))


def test_render_refuses_a_topology_over_budget_in_one_line(tmp_path: Path) -> None:
    path = over_budget_file(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "shopfleet", "render", "--topology", str(path), "--root", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: connection budget exceeded: 13 instances may open 130")
    assert not (tmp_path / "out").exists()


def test_a_pool_floor_above_the_pool_size_is_refused() -> None:
    with pytest.raises(ValueError, match="pool_min 8 > pool_size 6"):
        topology(pool_min=8)
