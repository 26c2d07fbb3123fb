"""Circuit breaker states and the service client's retry rules."""

from __future__ import annotations

import httpx
import pytest

from shopfleet.common.errors import DependencyUnavailable
from shopfleet.common.http import BreakerState, CircuitBreaker, ServiceClient
from shopfleet.common.metrics import Metrics
from shopfleet.common.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_at_failure_ratio_and_recovers_after_pause() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_ratio=0.5, min_calls=4, reset_timeout=30, clock=clock)
    for success in (True, False, True):
        assert breaker.allow()
        breaker.record(success=success)
    assert breaker.state is BreakerState.CLOSED  # 3 calls: below min_calls
    breaker.record(success=False)  # 2 of 4 failed: 50 %
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now = 29.9
    assert not breaker.allow()
    clock.now = 30.1
    assert breaker.allow()  # one trial call
    assert not breaker.allow()  # and only one
    breaker.record(success=False)
    assert breaker.state is BreakerState.OPEN
    clock.now = 61
    assert breaker.allow()
    breaker.record(success=True)
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def _client(handler: httpx.MockTransport, **settings: object) -> ServiceClient:
    return ServiceClient(
        Settings(internal_url="http://internal", **settings),  # type: ignore[arg-type]
        Metrics(),
        internal_token="secret-token",
        transport=handler,
    )


async def test_idempotent_calls_are_retried_and_carry_the_credential() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"ok": True})

    client = _client(httpx.MockTransport(handler))
    response = await client.request("auth", "GET", "/internal/auth/accounts/1")
    assert response.status_code == 200 and len(calls) == 3
    assert calls[0].headers["x-internal-token"] == "secret-token"
    await client.aclose()


async def test_non_idempotent_calls_are_not_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    client = _client(httpx.MockTransport(handler))
    with pytest.raises(DependencyUnavailable) as raised:
        await client.request("orders", "POST", "/internal/x", json={})
    assert len(calls) == 1
    assert raised.value.headers["Retry-After"]
    await client.aclose()


async def test_open_breaker_short_circuits_without_calling() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    client = _client(httpx.MockTransport(handler), breaker_min_calls=2)
    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            await client.request("products", "POST", "/internal/y", idempotent=False)
    sent = len(calls)
    with pytest.raises(DependencyUnavailable):
        await client.request("products", "POST", "/internal/y", idempotent=False)
    assert len(calls) == sent
    assert client.breaker("products").state is BreakerState.OPEN
    await client.aclose()
