"""Circuit breaker states and the service client's retry rules."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from shopfleet.common.errors import DependencyUnavailable
from shopfleet.common.http import BreakerState, CircuitBreaker, ServiceClient
from shopfleet.common.metrics import Metrics
from shopfleet.common.settings import Settings


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state now (mypy would carry an earlier assert's narrowing past calls)."""
    return breaker.state


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_at_failure_ratio_and_probes_sooner_than_the_reset_timeout() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "x", failure_ratio=0.5, min_calls=4, reset_timeout=30, probe_delay=1, clock=clock
    )
    for success in (True, False, True):
        assert breaker.allow()
        breaker.record(success=success)
    assert state_of(breaker) is BreakerState.CLOSED  # 3 calls: below min_calls
    breaker.record(success=False)  # 2 of 4 failed: 50 %
    assert state_of(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    clock.now = 0.9
    assert not breaker.allow() and breaker.retry_after() == 1
    clock.now = 1.0
    assert breaker.allow()  # one trial call after the probe delay, not after 30 s
    assert not breaker.allow()  # and only one
    breaker.record(success=False)
    # Each failed probe doubles the pause: 2, 4, 8, 16, then the 30 s cap.
    pauses = []
    for _ in range(6):
        assert state_of(breaker) is BreakerState.OPEN
        opened = clock.now
        pauses.append(breaker.pause)
        clock.now = opened + breaker.pause - 0.01
        assert not breaker.allow()
        clock.now = opened + breaker.pause
        assert breaker.allow()
        breaker.record(success=False)
    assert pauses == [2, 4, 8, 16, 30, 30]
    clock.now += 30
    assert breaker.allow()
    breaker.record(success=True)
    assert state_of(breaker) is BreakerState.CLOSED and breaker.allow()
    assert breaker.pause == 1  # the next opening starts from the short delay again


def test_seed_defaults_stay_the_defaults() -> None:
    settings = Settings(service="orders")
    assert (settings.http_timeout, settings.breaker_failure_ratio) == (3.0, 0.5)
    assert settings.breaker_reset_timeout == 30.0 and settings.breaker_probe_delay < 30.0


def _client(handler: httpx.MockTransport, **settings: object) -> ServiceClient:
    return ServiceClient(
        Settings(service="orders", internal_url="http://internal", **settings),  # type: ignore[arg-type]
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


async def test_retries_of_one_call_are_one_breaker_outcome() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    client = _client(httpx.MockTransport(handler), breaker_min_calls=5)
    for _ in range(4):  # 4 calls, 12 attempts: 4 failures, below min_calls
        with pytest.raises(DependencyUnavailable):
            await client.request("auth", "GET", "/internal/auth/accounts/1")
    assert len(calls) == 12
    assert client.breaker("auth").state is BreakerState.CLOSED
    await client.aclose()


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500])
async def test_answers_of_a_working_dependency_never_open_the_breaker(status: int) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"detail": "bad input"})

    client = _client(httpx.MockTransport(handler), breaker_min_calls=2)
    for _ in range(20):
        try:
            await client.request("auth", "PATCH", "/internal/auth/accounts/1", json={})
        except DependencyUnavailable:
            assert status == 500  # our caller still hears the dependency failed
    assert len(calls) == 20  # none short-circuited, none retried
    assert client.breaker("auth").state is BreakerState.CLOSED
    await client.aclose()


async def test_a_cancelled_trial_call_lets_the_next_probe_out() -> None:
    import asyncio

    gate = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return httpx.Response(200)

    client = _client(httpx.MockTransport(handler))
    breaker = client.breaker("products")
    breaker.state, breaker.opened_at, breaker.pause = BreakerState.OPEN, -100.0, 1.0
    trial = asyncio.create_task(client.request("products", "GET", "/internal/x"))
    await asyncio.sleep(0.01)
    assert state_of(breaker) is BreakerState.HALF_OPEN
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    gate.set()
    assert (await client.request("products", "GET", "/internal/x")).status_code == 200
    assert state_of(breaker) is BreakerState.CLOSED
    await client.aclose()


async def _http_peer(
    answers: list[bytes],
) -> tuple[asyncio.Server, int, list[bytes]]:
    """A real HTTP/1.1 peer on a socket: answers in turn, keeps connections alive.

    The returned list gets b"CONNECT" for each new connection and each request's bytes.
    """
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(b"CONNECT")
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )  # fmt: skip
            requests.append(head + await reader.readexactly(length))
            writer.write(answers.pop(0))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], requests


def _answer(status: int, body: bytes) -> bytes:
    reason = {200: b"OK", 503: b"Service Unavailable"}[status]
    return b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n\r\n%s" % (status, reason, len(body), body)


async def test_the_default_transport_talks_to_a_real_socket() -> None:
    """Without a test transport the client goes over TCP: credential, body, keep-alive."""
    answers = [_answer(503, b""), _answer(200, b'{"ok":true}'), _answer(200, b"{}")]
    server, port, requests = await _http_peer(answers)
    client = ServiceClient(
        Settings(service="orders", internal_url=f"http://127.0.0.1:{port}"),
        Metrics(),
        internal_token="secret-token",
    )
    try:
        # A 503 is retried (an idempotent call) and the retry is answered on the same socket.
        response = await client.request("products", "POST", "/internal/r", json={"a": 1},
                                        idempotent=True)  # fmt: skip
        assert response.status_code == 200 and response.json() == {"ok": True}
        assert (await client.request("products", "GET", "/internal/s")).status_code == 200
        assert requests[0] == b"CONNECT" and b"CONNECT" not in requests[1:]  # one socket
        calls = requests[1:]
        assert len(calls) == 3
        assert all(b"x-internal-token: secret-token" in call.lower() for call in calls)
        assert calls[1].startswith(b"POST /internal/r ") and calls[1].endswith(b'{"a":1}')
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


async def test_the_default_transport_counts_a_refused_connection_as_a_failure() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ServiceClient(
        Settings(service="orders", internal_url=f"http://127.0.0.1:{port}", breaker_min_calls=1),
        Metrics(),
        internal_token=None,
    )
    try:
        with pytest.raises(DependencyUnavailable):
            await client.request("products", "POST", "/internal/r", json={})
        assert client.breaker("products").state is BreakerState.OPEN
    finally:
        await client.aclose()
