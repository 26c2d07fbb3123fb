"""THE RACE: 120 customers, 10 units, real processes, two of products and two of orders."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopfleet.auth import service as auth_service
from shopfleet.auth.passwords import Passwords
from shopfleet.common.database import create_engine, create_sessionmaker
from tests.orders.conftest import ADDRESS, INTERNAL
from tests.support import (
    Databases,
    ServiceProcess,
    base_settings,
    free_port,
    start_service,
    test_env,
    wait_ready,
)

CUSTOMERS = 120
STOCK = 10
PASSWORD = "correct-horse-1"


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    try:
        yield started
    finally:
        for proc in started:  # drain them all at once, then wait for each
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in started:
            proc.terminate()


def _start_all(
    processes: list[ServiceProcess], backend: str, data_dir: Path
) -> dict[str, ServiceProcess]:
    """auth, categories, products x2, orders x2; orders-N talks to products-N.

    There is no gateway here, so each process's SHOPFLEET_INTERNAL_URL points straight
    at the one service it calls: products at categories, orders-1 at products-1 and
    orders-2 at products-2. Both products processes share one database, as do both
    orders processes, exactly as behind the gateway.
    """
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    ports = {name: free_port() for name in ("auth", "categories", "p1", "p2", "o1", "o2")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    # Correctness under load is the point, not latency: generous timeouts on a busy box
    # (60 requests at once queue for each process's 5 database connections).
    common = {
        "SHOPFLEET_HTTP_TIMEOUT": "15",
        "SHOPFLEET_DATABASE_POOL_SIZE": "5",
        "SHOPFLEET_DATABASE_POOL_TIMEOUT": "30",
    }
    plan = [
        ("auth", 1, "auth", {}),
        ("categories", 1, "categories", {}),
        ("products", 1, "p1", {"SHOPFLEET_INTERNAL_URL": url["categories"]}),
        ("products", 2, "p2", {"SHOPFLEET_INTERNAL_URL": url["categories"]}),
        ("orders", 1, "o1", {"SHOPFLEET_INTERNAL_URL": url["p1"]}),
        ("orders", 2, "o2", {"SHOPFLEET_INTERNAL_URL": url["p2"]}),
    ]
    named: dict[str, ServiceProcess] = {}
    for service, instance, name, extra in plan:
        env = test_env(service, backend, data_dir, **common, **extra)
        proc = start_service(
            service, env=env, log_dir=logs, instance=instance, port=ports[name], wait=False
        )
        processes.append(proc)
        named[name] = proc
    for proc in processes:
        wait_ready(proc, timeout=60)
    return named


async def _admin_headers(client: httpx.AsyncClient, backend: str, data_dir: Path) -> Any:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    settings = base_settings("auth", backend, data_dir)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as db:
            await auth_service.ensure_admin(
                db=db, passwords=Passwords(settings), email=email, password=PASSWORD, name="A"
            )
            await db.commit()
    finally:
        await engine.dispose()
    login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['accessToken']}"}


async def _register(client: httpx.AsyncClient, index: int) -> dict[str, str]:
    email = f"racer-{index}-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "name": f"Racer {index}"}
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def _errors(named: dict[str, ServiceProcess]) -> str:
    """The error lines of every process's log, to explain a failed race."""
    lines = [
        line[:2000]
        for proc in named.values()
        for line in proc.log().splitlines()
        if '"level":"error"' in line or '"level":"warning"' in line
    ]
    return "\n".join(lines[:20])


@pytest.mark.e2e
async def test_the_last_units_are_sold_exactly_once(
    databases: Databases, backend: str, tmp_path: Path, processes: list[ServiceProcess]
) -> None:
    for service in ("auth", "categories", "products", "orders"):
        await databases.prepare(service, backend, tmp_path)
    named = _start_all(processes, backend, tmp_path)
    limits = httpx.Limits(max_connections=CUSTOMERS * 2, max_keepalive_connections=CUSTOMERS)
    timeout = httpx.Timeout(60)

    def client(name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=named[name].url, limits=limits, timeout=timeout)

    async with (
        client("auth") as auth,
        client("categories") as categories,
        client("p1") as products,
        client("o1") as orders_1,
        client("o2") as orders_2,
    ):
        admin = await _admin_headers(auth, backend, tmp_path)
        category = await categories.post("/v1/categories", json={"name": "Race"}, headers=admin)
        assert category.status_code == 201, category.text
        product = await products.post(
            "/v1/products",
            json={
                "sku": "LAST-10",
                "name": "The last ten",
                "price": 9.99,
                "categoryId": category.json()["id"],
                "stock": STOCK,
            },
            headers=admin,
        )
        assert product.status_code == 201, product.text
        product_id = product.json()["id"]
        customers = await asyncio.gather(*(_register(auth, i) for i in range(CUSTOMERS)))

        body = {"items": [{"productId": product_id, "quantity": 1}], "shippingAddress": ADDRESS}
        responses = await asyncio.gather(
            *(
                (orders_1 if i % 2 == 0 else orders_2).post(
                    "/v1/orders", json=body, headers=headers
                )
                for i, headers in enumerate(customers)
            )
        )

        codes = Counter(r.status_code for r in responses)
        assert codes == {201: STOCK, 409: CUSTOMERS - STOCK}, _errors(named)
        assert {r.json()["type"] for r in responses if r.status_code == 409} == {
            "urn:shopfleet:problem:insufficient-stock"
        }
        # Both orders instances (hence both products instances) took part in the race.
        answered_by = Counter(r.headers["x-instance"] for r in responses)
        assert answered_by == {"orders-1": CUSTOMERS // 2, "orders-2": CUSTOMERS // 2}

        lookup = await products.post(
            "/internal/products/lookup", json={"ids": [product_id]}, headers=INTERNAL
        )
        assert lookup.json()["products"][0]["stock"] == 0
        confirmed = await orders_2.get(
            "/v1/orders", params={"status": "confirmed", "limit": 100}, headers=admin
        )
        confirmed_ids = {o["id"] for o in confirmed.json()["results"]}
        assert confirmed_ids == {r.json()["id"] for r in responses if r.status_code == 201}
        rejected = await orders_1.get("/v1/orders", params={"status": "rejected"}, headers=admin)
        assert rejected.json()["pagination"]["total"] == CUSTOMERS - STOCK
        pending = await orders_1.get("/v1/orders", params={"status": "pending"}, headers=admin)
        assert pending.json()["pagination"]["total"] == 0
        for order_id in confirmed_ids:
            reservation = await products.get(
                f"/internal/products/reservations/{order_id}", headers=INTERNAL
            )
            assert reservation.json()["status"] == "reserved"
            assert reservation.json()["items"][0]["quantity"] == 1
