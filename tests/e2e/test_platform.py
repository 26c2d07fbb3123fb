"""The whole default topology on one machine: real nginx, supervisord, PostgreSQL and Redis.

One platform (bench profile: the gateway's rate limits would get in the way of the load)
serves every test in this module, in order: the later ones kill, restart and scale it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopfleet.deploy.operator.local import instance_ready
from tests.e2e.catalog import ADDRESS, open_catalog
from tests.e2e.load import steady_reads
from tests.e2e.localrun import Backends, LocalRun, base_env, write_topology

pytestmark = pytest.mark.e2e
MICRO_CACHE_SECONDS = 2


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[LocalRun]:
    root = tmp_path_factory.mktemp("platform")
    topology = write_topology(root, gateway={"micro_cache_seconds": MICRO_CACHE_SECONDS})
    run = LocalRun(root, topology, base_env(root / "var", **backends.env()), profile="bench")
    with run.running():
        yield run


@dataclass
class Shop:
    admin: dict[str, str]
    customer: dict[str, str]
    category: dict[str, Any]
    product: dict[str, Any]
    order: dict[str, Any]


@pytest.fixture(scope="module")
async def shop(platform: LocalRun) -> Shop:
    """An admin (made with the operator CLI), a customer, a category, a product, an order."""
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as client:
        catalog = await open_catalog(platform, client, stock=10)
        admin, customer = catalog.admin, catalog.customer
        order = await client.post(
            "/v1/orders",
            json={
                "items": [{"productId": catalog.product["id"], "quantity": 2}],
                "shippingAddress": ADDRESS,
            },
            headers={**customer, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert order.status_code == 201, order.text
        return Shop(admin, customer, catalog.category, catalog.product, order.json())


def test_the_full_default_topology_comes_up(platform: LocalRun) -> None:
    topology = platform.topology
    status = platform.cli("status").stdout
    print(f"\n{status}")
    rows = {line.split()[0]: line.split() for line in status.splitlines()[1:]}
    instances = [
        f"{service.name}-{index}"
        for service in topology.ordered_services()
        for index in range(1, service.instances + 1)
    ]
    assert len(instances) == 13
    for name in [*instances, "nginx", "memmon"]:
        assert rows[name][1] == "RUNNING", status
    for service in topology.ordered_services():
        for index in range(1, service.instances + 1):
            assert instance_ready(service.instance_port(index))


async def test_the_api_works_through_the_gateway(platform: LocalRun, shop: Shop) -> None:
    order = shop.order
    assert order["status"] == "confirmed"
    assert order["total"] == 25.0
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as client:
        fetched = await client.get(f"/v1/orders/{order['id']}", headers=shop.customer)
        assert fetched.status_code == 200
        assert fetched.json()["items"][0]["productId"] == shop.product["id"]
        product = await client.get(f"/v1/products/{shop.product['id']}", headers=shop.admin)
        assert product.json()["stock"] == 8  # reserved through the internal listener
        me = await client.get("/v1/users/me", headers=shop.customer)
        assert me.status_code == 200


async def test_requests_spread_over_every_instance(platform: LocalRun, shop: Shop) -> None:
    # Signed-in reads bypass the micro-cache, so every one reaches an instance.
    reads = {
        "auth": ("/v1/auth/me", shop.customer),
        "users": ("/v1/users/me", shop.customer),
        "categories": (f"/v1/categories/{shop.category['id']}", shop.customer),
        "products": (f"/v1/products/{shop.product['id']}", shop.customer),
        "orders": ("/v1/orders", shop.customer),
    }
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as client:
        for service in platform.topology.ordered_services():
            path, headers = reads[service.name]
            seen = set()
            for _ in range(4 * service.instances):
                response = await client.get(path, headers=headers)
                assert response.status_code == 200, response.text
                seen.add(response.headers["x-instance"])
            expected = {f"{service.name}-{i}" for i in range(1, service.instances + 1)}
            assert seen == expected


async def test_operational_routes_are_not_public(platform: LocalRun, shop: Shop) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for path in (
            "/internal/products/reservations",
            "/metrics",
            "/health",
            "/health/ready",
            "/nginx/status",
        ):
            response = await client.get(platform.gateway + path)
            assert response.status_code in (403, 404), path
            assert "x-instance" not in response.headers, path
        # The internal listener does route them, to the services themselves.
        jwks = await client.get(platform.internal + "/v1/auth/.well-known/jwks.json")
        assert jwks.status_code == 200 and jwks.json()["keys"]
        internal = await client.get(platform.internal + "/internal/products/nothing-here")
        assert internal.headers["x-instance"].startswith("products-")


async def test_the_gateway_compresses_json_passes_request_ids_and_serves_docs(
    platform: LocalRun,
) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as client:
        schema = await client.get(
            "/docs/products/openapi.json",
            headers={"Accept-Encoding": "gzip", "X-Request-ID": "e2e-trace-1"},
        )
        assert schema.status_code == 200
        assert schema.headers["content-encoding"] == "gzip"
        assert "/v1/products" in schema.json()["paths"]
        assert schema.headers["x-request-id"] == "e2e-trace-1"
        generated = await client.get("/v1/auth/.well-known/jwks.json")
        assert len(generated.headers["x-request-id"]) >= 16
        docs = await client.get("/docs/orders/")
        assert docs.status_code == 200 and "openapi.json" in docs.text


async def test_the_micro_cache_serves_anonymous_reads_and_sees_updates_within_its_window(
    platform: LocalRun, shop: Shop
) -> None:
    path = f"/v1/products/{shop.product['id']}"
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as client:
        filled = await client.get(path, headers={"X-Request-ID": "e2e-filler"})
        assert filled.headers["x-request-id"] == "e2e-filler"
        cached = await client.get(path, headers={"X-Request-ID": "e2e-reader"})
        assert cached.headers["x-cache-status"] == "HIT"
        # A cached answer carries this request's id, never the filler's stale counters.
        assert cached.headers["x-request-id"] == "e2e-reader"
        assert "ratelimit-remaining" not in cached.headers
        insane = await client.get(path, headers={"X-Request-ID": "x" * 200})
        assert insane.headers["x-request-id"] != "x" * 200
        signed_in = await client.get(path, headers=shop.customer)
        assert signed_in.headers["x-cache-status"] == "BYPASS"
        categories = [await client.get("/v1/categories") for _ in range(2)]
        assert categories[1].headers["x-cache-status"] == "HIT"

        renamed = await client.patch(path, json={"name": "A renamed book"}, headers=shop.admin)
        assert renamed.status_code == 200, renamed.text
        deadline = time.monotonic() + MICRO_CACHE_SECONDS + 5
        while (await client.get(path)).json()["name"] != "A renamed book":
            assert time.monotonic() < deadline, "the update never reached anonymous readers"
            await asyncio.sleep(0.2)


def products_url(platform: LocalRun, shop: Shop) -> str:
    return f"{platform.gateway}/v1/products/{shop.product['id']}"


async def test_kill_9_of_a_products_instance_drops_no_request(
    platform: LocalRun, shop: Shop
) -> None:
    victim = platform.pid_of("products-2")
    async with steady_reads(products_url(platform, shop), headers=shop.customer) as load:
        await asyncio.sleep(1)
        os.kill(victim, signal.SIGKILL)
        port = platform.topology.services["products"].instance_port(2)
        deadline = time.monotonic() + 60
        while not (platform.pid_of("products-2") not in (0, victim) and instance_ready(port)):
            assert time.monotonic() < deadline, "supervisor did not bring products-2 back"
            await asyncio.sleep(0.3)
    print(f"\nkill -9 products-2: {load}")
    assert load.failures == 0, str(load)
    assert load.sent > 100


async def test_rolling_reload_drops_no_request(platform: LocalRun, shop: Shop) -> None:
    before = {name: platform.pid_of(name) for name in ("products-1", "products-2", "products-3")}
    async with steady_reads(products_url(platform, shop), headers=shop.customer) as load:
        await asyncio.sleep(1)
        await asyncio.to_thread(platform.cli, "reload", "products")
    print(f"\nshopfleet reload products: {load}")
    assert load.failures == 0, str(load)
    after = {name: platform.pid_of(name) for name in before}
    assert all(after[name] != before[name] for name in before)
    assert set(load.instances) == set(before)


def gateway_ports(platform: LocalRun, service: str) -> list[int]:
    conf = (Path(platform.var) / "run" / "nginx" / "nginx.conf").read_text()
    upstream = re.search(rf"upstream {service} \{{(.*?)\}}", conf, re.DOTALL)
    assert upstream is not None
    return [int(port) for port in re.findall(r"server 127\.0\.0\.1:(\d+) ", upstream.group(1))]


async def test_scaling_out_and_in_drops_no_request(platform: LocalRun, shop: Shop) -> None:
    products = platform.topology.services["products"]
    others = {name: platform.pid_of(name) for name in ("products-1", "auth-1", "orders-1")}
    for count in (5, 2):
        async with steady_reads(products_url(platform, shop), headers=shop.customer) as load:
            await asyncio.sleep(1)
            await asyncio.to_thread(platform.cli, "scale", f"products={count}")
        print(f"\nshopfleet scale products={count}: {load}")
        assert load.failures == 0, str(load)
        programs = {info["name"] for info in platform.supervisor.processes()}
        expected = {f"products-{i}" for i in range(1, count + 1)}
        assert {name for name in programs if name.startswith("products-")} == expected
        assert gateway_ports(platform, "products") == [
            products.instance_port(i) for i in range(1, count + 1)
        ]
        if count == 5:
            assert {"products-4", "products-5"} <= set(load.instances)
    # Live: nothing else was restarted.
    assert {name: platform.pid_of(name) for name in others} == others
