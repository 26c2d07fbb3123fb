"""`shopfleet up --monitoring`: Prometheus scrapes every instance and exporter, every
dashboard panel's query returns data under a light load, scaling adds a target, and
`shopfleet top --once` shows the load."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.catalog import ADDRESS, open_catalog
from tests.e2e.localrun import Backends, LocalRun, base_env, write_topology
from tests.support import REPO_ROOT

pytestmark = pytest.mark.e2e
INSTANCES = {"auth": 1, "users": 1, "categories": 1, "products": 2, "orders": 1}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[LocalRun]:
    root = tmp_path_factory.mktemp("monitored")
    topology = write_topology(root, instances=INSTANCES)
    run = LocalRun(root, topology, base_env(root / "var", **backends.env()), profile="bench")
    with run.running("--monitoring") as started:
        assert "Prometheus: http://127.0.0.1:" in started.stdout
        yield run


def prometheus(run: LocalRun) -> str:
    return f"http://127.0.0.1:{run.topology.monitoring.prometheus_port}"


def query(run: LocalRun, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus(run)}/api/v1/query", params={"query": expr}, timeout=10)
    assert response.status_code == 200, (expr, response.text)
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def wait_for(check: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)


async def light_load(run: LocalRun, seconds: float) -> int:
    """Every service's routes, including each service-to-service call, for a few seconds."""
    sent = 0
    async with httpx.AsyncClient(base_url=run.gateway, timeout=30) as client:
        catalog = await open_catalog(run, client, stock=1000)
        customer = catalog.customer
        product_id = catalog.product["id"]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            answers = await asyncio.gather(
                client.get(f"/v1/products/{product_id}", headers=customer),
                client.get("/v1/products", params={"limit": sent % 50 + 1}, headers=customer),
                client.get("/v1/categories", headers=customer),
                client.get("/v1/users/me", headers=customer),
                client.post(
                    "/v1/orders",
                    json={
                        "items": [{"productId": product_id, "quantity": 1}],
                        "shippingAddress": ADDRESS,
                    },
                    headers={**customer, "Idempotency-Key": uuid.uuid4().hex},
                ),
                client.get("/v1/auth/me", headers=customer),
            )
            for answer in answers:
                assert answer.status_code < 500, (answer.request.url, answer.text)
            sent += len(answers)
    return sent


def test_prometheus_top_and_dashboards_see_the_platform(platform: LocalRun) -> None:
    run = platform
    load = asyncio.run(light_load(run, 3))
    top_during_load: list[str] = []

    async def load_and_top() -> None:
        task = asyncio.create_task(light_load(run, 6))
        await asyncio.sleep(2)
        top = await asyncio.to_thread(run.cli, "top", "--once")
        top_during_load.append(top.stdout)
        await task

    asyncio.run(load_and_top())
    assert load > 0
    snapshot = top_during_load[0]
    print(f"\n{snapshot}")
    rows = {
        cells[0]: cells
        for line in snapshot.splitlines()
        if (cells := [c.strip() for c in line.strip("│┃").split("│")]) and len(cells) == 10
    }
    for name in ("auth-1", "users-1", "categories-1", "products-1", "products-2", "orders-1"):
        assert rows[name][1] == "RUNNING", rows
    # Requests per second moved on the instances that served the load.
    assert any(float(rows[name][2]) > 0 for name in ("products-1", "products-2")), rows
    assert float(rows["orders-1"][2]) > 0, rows
    for dependency in ("redis", "postgresql", "nginx"):
        assert any(
            line.strip().startswith(dependency) and " up " in line for line in snapshot.splitlines()
        ), snapshot

    # Every target is up: six instances, three exporters, Alertmanager and Prometheus.
    def targets_up() -> list[dict[str, Any]] | None:
        targets = httpx.get(f"{prometheus(run)}/api/v1/targets", timeout=10).json()["data"][
            "activeTargets"
        ]
        return targets if all(t["health"] == "up" for t in targets) and len(targets) == 11 else None

    targets = wait_for(targets_up, timeout=30, what="every target up")
    jobs = {t["labels"]["job"] for t in targets}
    assert jobs == {"prometheus", "shopfleet", "redis", "postgres", "nginx", "alertmanager"}

    # Every panel of every committed dashboard returns at least one series.
    wait_for(
        lambda: query(run, 'sum(rate(orders_created_total{service="orders"}[1m])) > 0'),
        timeout=30,
        what="the order rate in Prometheus",
    )
    empty = []
    for path in sorted((REPO_ROOT / "deploy/monitoring/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                if not query(run, target["expr"]):
                    empty.append(f"{path.stem}: {panel['title']}: {target['expr']}")
    assert empty == [], "\n".join(empty)

    # A new products instance becomes a target within a scrape or two, without a restart.
    run.cli("scale", "products=3")
    interval = run.topology.monitoring.scrape_interval
    wait_for(
        lambda: query(run, 'up{job="shopfleet",instance="products-3"} == 1'),
        timeout=3 * interval + 5,
        what="products-3 scraped",
    )
    # No alert fires on a healthy platform under light load.
    assert query(run, 'ALERTS{alertstate="firing"}') == []
