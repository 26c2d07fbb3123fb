"""The order saga's budget, counted on a real PostgreSQL: one products call, <= 8 round trips.

Counted on both services: every statement sent, from the statement-duration histogram
that both SQLAlchemy's execution and the driver path (common/statements.py) observe (an
executemany is one pipelined round trip with asyncpg), plus BEGIN, COMMIT and ROLLBACK
of every transaction that is not in autocommit (SQLAlchemy's events; asyncpg sends none
in autocommit).
The first order warms the connections' prepared statements; the second is counted.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.orders.conftest import Shop

ROUND_TRIP_BUDGET = 8


@pytest.fixture
def backend() -> str:
    # Round trips are a PostgreSQL budget (SQLite has no network round trips).
    return "postgres"


class CallCounter(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(f"{request.method} {request.url.path}")
        return await self.inner.handle_async_request(request)


def statements_by_kind(shop: Shop, service: str) -> Counter[str]:
    histogram = shop.platform.resources(service).metrics.db_query_duration
    return Counter(
        {
            sample.labels["kind"]: int(sample.value)
            for metric in histogram.collect()
            for sample in metric.samples
            if sample.name.endswith("_count")
        }
    )


@contextlib.contextmanager
def counting(shop: Shop) -> Iterator[tuple[dict[str, Counter[str]], CallCounter]]:
    """Count database round trips per service and the HTTP calls that reach products."""
    trips: dict[str, Counter[str]] = {"orders": Counter(), "products": Counter()}
    before = {service: statements_by_kind(shop, service) for service in trips}
    listeners: list[tuple[Any, str, Any]] = []
    for service, seen in trips.items():
        engine = shop.platform.resources(service).sessionmaker.kw["bind"].sync_engine

        def transaction(name: str, seen: Counter[str] = seen) -> Any:
            def listener(conn: Any, *_: Any) -> None:
                if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                    seen[name] += 1

            return listener

        for name in ("begin", "commit", "rollback"):
            fn = transaction(name.upper())
            event.listen(engine, name, fn)
            listeners.append((engine, name, fn))
    mesh = shop.platform.mesh
    original = mesh.apps["products"]
    counter = CallCounter(original)
    mesh.apps["products"] = counter
    try:
        yield trips, counter
    finally:
        mesh.apps["products"] = original
        for engine, name, fn in listeners:
            event.remove(engine, name, fn)
        for service, seen in trips.items():
            seen.update(statements_by_kind(shop, service) - before[service])


@pytest.mark.parametrize("key", [None, "round-trips"])
async def test_an_order_is_one_products_call_and_at_most_8_round_trips(
    shop: Shop, key: str | None
) -> None:
    product = await shop.product(price=12.5, stock=10)
    customer = await shop.customer()
    warm = await shop.order(customer, [(product, 1)], key=None if key is None else "warm-up")
    assert warm.status_code == 201, warm.text

    with counting(shop) as (trips, products_calls):
        response = await shop.order(customer, [(product, 2)], key=key)

    assert response.status_code == 201, response.text
    assert response.json()["total"] == 25.0 and response.json()["items"][0]["name"]
    assert products_calls.paths == ["POST /internal/products/reservations"]
    total = trips["orders"].total() + trips["products"].total()
    assert total <= ROUND_TRIP_BUDGET, trips
    # Each step is one statement on PostgreSQL: store pending, reserve, decide.
    assert trips == {"orders": Counter(WITH=2), "products": Counter(WITH=1)}, trips
    assert await shop.stock(product) == 7


async def test_a_stockout_is_one_products_call_and_releases_the_order_id(shop: Shop) -> None:
    """A refusal for stock releases the order id in the reservation's own statement, so
    orders makes no release call; a late attempt of the same order is refused by it."""
    product = await shop.product(price=5, stock=1)
    customer = await shop.customer()
    warm = await shop.order(customer, [(product, 1)])
    assert warm.status_code == 201, warm.text

    with counting(shop) as (trips, products_calls):
        refused = await shop.order(customer, [(product, 1)], key="stockout")

    assert refused.status_code == 409, refused.text
    assert products_calls.paths == ["POST /internal/products/reservations"]
    assert trips == {"orders": Counter(WITH=2), "products": Counter(WITH=1)}, trips
    order_id = refused.json()["orderId"]
    assert await shop.reservation(order_id) == {
        "orderId": order_id,
        "status": "released",
        "items": [],
    }
