"""The order saga's budget, counted on a real PostgreSQL: one products call, <= 8 round trips.

Counted with SQLAlchemy's events on both services' engines: every statement sent
(an executemany is one pipelined round trip with asyncpg), plus BEGIN, COMMIT and
ROLLBACK of every transaction that is not in autocommit (asyncpg sends none there).
The first order warms the connections' prepared statements; the second is counted.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def counting(shop: Shop) -> Iterator[tuple[dict[str, list[str]], CallCounter]]:
    """Count database round trips per service and the HTTP calls that reach products."""
    trips: dict[str, list[str]] = {"orders": [], "products": []}
    listeners: list[tuple[Any, str, Any]] = []
    for service, seen in trips.items():
        engine = shop.platform.resources(service).sessionmaker.kw["bind"].sync_engine

        def statement(conn: Any, _c: Any, sql: str, *_: Any, seen: list[str] = seen) -> None:
            seen.append(" ".join(sql.split())[:60])

        def transaction(name: str, seen: list[str] = seen) -> Any:
            def listener(conn: Any, *_: Any) -> None:
                if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                    seen.append(name)

            return listener

        for name, fn in (
            ("before_cursor_execute", statement),
            ("begin", transaction("BEGIN")),
            ("commit", transaction("COMMIT")),
            ("rollback", transaction("ROLLBACK")),
        ):
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
    total = len(trips["orders"]) + len(trips["products"])
    assert total <= ROUND_TRIP_BUDGET, trips
    # Each step is one statement on PostgreSQL: store pending, reserve, decide.
    assert (len(trips["orders"]), len(trips["products"])) == (2, 1), trips
    assert await shop.stock(product) == 7
