"""Breakers on a running platform: a short crash heals in seconds, bad input never opens one."""

from __future__ import annotations

import time
from typing import Any

import httpx

from shopfleet.common.http import BreakerState, CircuitBreaker
from tests.conftest import bearer, register
from tests.orders.conftest import open_shop


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state now (mypy would carry an earlier assert's narrowing past calls)."""
    return breaker.state


class Clock:
    """The breaker's clock, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


class Down(httpx.AsyncBaseTransport):
    """A service that crashed: every connection is refused."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused (injected)")


class ServerErrorOn(httpx.AsyncBaseTransport):
    """A working service that answers 500 to one kind of request (a bug for that input)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, method: str) -> None:
        self.inner = inner
        self.method = method

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == self.method and request.url.path.startswith("/internal/auth/"):
            return httpx.Response(500, json={"detail": "An unexpected error occurred."})
        return await self.inner.handle_async_request(request)


async def test_orders_recover_from_a_short_products_crash_within_the_probe_delay(
    make_platform: Any,
) -> None:
    async with open_shop(make_platform) as shop:
        product = await shop.product(stock=50)
        customer = await shop.customer()
        http = shop.platform.resources("orders").http
        breaker = http.breaker("products")
        clock = Clock()
        breaker.clock = clock
        mesh = shop.platform.mesh
        products = mesh.apps["products"]
        mesh.apps["products"] = Down()
        try:
            for _ in range(5):
                assert (await shop.order(customer, [(product, 1)])).status_code == 503
        finally:
            mesh.apps["products"] = products
        assert state_of(breaker) is BreakerState.OPEN
        # Products is back. Within the probe delay orders still sheds load...
        refused = await shop.order(customer, [(product, 1)])
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) <= 2
        # ...and right after it, not 30 s later, the first order goes through again.
        clock.now += http.settings.breaker_probe_delay
        created = await shop.order(customer, [(product, 1)])
        assert created.status_code == 201, created.text
        assert state_of(breaker) is BreakerState.CLOSED


async def test_a_request_auth_fails_on_never_cuts_users_off_from_auth(make_platform: Any) -> None:
    async with make_platform("auth", "users") as platform:
        customer = bearer(await register(platform.client))
        mesh = platform.mesh
        auth = mesh.apps["auth"]
        mesh.apps["auth"] = ServerErrorOn(auth, "PATCH")
        try:
            for _ in range(6):
                response = await platform.client.patch(
                    "/v1/users/me", json={"name": "Trouble"}, headers=customer
                )
                assert response.status_code == 503, response.text
        finally:
            mesh.apps["auth"] = auth
        breaker = platform.resources("users").http.breaker("auth")
        assert state_of(breaker) is BreakerState.CLOSED
        me = await platform.client.get("/v1/users/me", headers=customer)
        assert me.status_code == 200, me.text
