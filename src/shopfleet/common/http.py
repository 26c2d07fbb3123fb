"""Service-to-service HTTP: one pooled client per process, timeouts, breaker, safe retries."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from shopfleet.common.errors import DependencyUnavailable
from shopfleet.common.metrics import Metrics, label_children
from shopfleet.common.settings import Settings

log = logging.getLogger("shopfleet.http")
INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 (a header name)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# The answers that say the dependency could not serve (overloaded, down, no instance
# behind the gateway, timed out). A plain 500 is the dependency answering: a bug for that
# one input, which must not cut every other caller off from it.
_UNAVAILABLE = frozenset({502, 503, 504})
# Connections kept per process (to the gateway's internal listener, or a service's address).
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50)


@dataclass(frozen=True)
class Answer:
    """A dependency's answer, read whole: what the contract clients look at."""

    status_code: int
    content: bytes
    url: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return orjson.loads(self.content)


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Open when the failure ratio of recent calls passes a threshold; probe to recover.

    Outcomes are logical calls (retries included), and only dependency failures count as
    failures. Once open, the first probe goes out after `probe_delay`; each failed probe
    doubles the pause, capped at `reset_timeout` (the seed's 30 s). So a dependency that
    is back within seconds is used again within seconds, and one that stays down is
    probed at most every `reset_timeout`.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_ratio: float = 0.5,
        min_calls: int = 5,
        window: int = 20,
        reset_timeout: float = 30.0,
        probe_delay: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_ratio = failure_ratio
        self.min_calls = min_calls
        self.reset_timeout = reset_timeout
        self.probe_delay = min(probe_delay, reset_timeout)
        self.clock = clock
        self.outcomes: deque[bool] = deque(maxlen=window)
        self.state = BreakerState.CLOSED
        self.opened_at = 0.0
        self.pause = self.probe_delay  # how long this opening lasts before the next probe
        self._trial_in_flight = False

    def allow(self) -> bool:
        """Say whether a call may go out now (one trial call when half-open)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self.clock() - self.opened_at < self.pause:
                return False
            self.state = BreakerState.HALF_OPEN
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record(self, *, success: bool) -> None:
        """Count the outcome of one logical call that `allow()` let through."""
        if self.state is BreakerState.HALF_OPEN:
            self._trial_in_flight = False
            if success:
                self.state = BreakerState.CLOSED
                self.outcomes.clear()
                self.pause = self.probe_delay
            else:
                self.pause = min(self.pause * 2, self.reset_timeout)
                self._open()
            return
        self.outcomes.append(success)
        failures = self.outcomes.count(False)
        if (
            len(self.outcomes) >= self.min_calls
            and failures / len(self.outcomes) >= self.failure_ratio
        ):
            self._open()

    def release(self) -> None:
        """A call ended without an outcome (cancelled): let the next trial go out."""
        if self.state is BreakerState.HALF_OPEN:
            self._trial_in_flight = False

    def retry_after(self) -> int:
        return max(1, math.ceil(self.pause - (self.clock() - self.opened_at)))

    def _open(self) -> None:
        if self.state is not BreakerState.OPEN:
            log.warning("circuit opened", extra={"target": self.name, "probe_in": self.pause})
        self.state = BreakerState.OPEN
        self.opened_at = self.clock()
        self.outcomes.clear()


class ServiceClient:
    """Calls other services through the internal gateway listener."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        internal_token: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
        lean: bool = True,
    ) -> None:
        headers = {"User-Agent": f"shopfleet-{settings.service}"}
        if internal_token is not None:
            headers[INTERNAL_TOKEN_HEADER] = internal_token
        self.settings = settings
        self.metrics = metrics
        self.headers = headers
        # httpx's own transport (httpcore, h11) cost ~1.2-1.5 ms of CPU per call here;
        # aiohttp under httpx ~0.45 ms, two thirds of it httpx's layer (requests, headers,
        # response streams). So calls go on aiohttp itself (`lean`, the default without a
        # test transport). The httpx client stays for what needs one: a test's in-process
        # transport (a mesh of ASGI apps), OpenTelemetry's httpx instrumentation of a
        # traced instance, and the JWKS fetch (tokens.py).
        self.client = httpx.AsyncClient(
            base_url=settings.internal_url,
            timeout=httpx.Timeout(settings.http_timeout),
            headers=headers,
            transport=transport or AiohttpTransport(limits=_LIMITS),
        )
        self.lean = lean and transport is None
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.http_timeout,
            sock_connect=settings.http_timeout,
            sock_read=settings.http_timeout,
        )
        self.breakers: dict[str, CircuitBreaker] = {}
        self._outbound = label_children(metrics.outbound)

    def _lean_session(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on the first call, inside the running loop
            connector = aiohttp.TCPConnector(
                limit=_LIMITS.max_connections or 100,
                keepalive_timeout=_LIMITS.keepalive_expiry or 5.0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self.headers,
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
            )
        return self._session

    async def _send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None,
    ) -> Answer:
        """One attempt; a failure to get an answer raises httpx.TransportError."""
        if not self.lean:
            response = await self.client.request(
                method, url, content=content, params=params, headers=headers
            )
            return Answer(response.status_code, response.content, str(response.url))
        if not url.startswith(("http://", "https://")):
            url = self.settings.internal_url.rstrip("/") + url
        if params:
            url = f"{url}?{urlencode(params)}"
        try:
            async with self._lean_session().request(
                method, url, data=content, headers=headers, allow_redirects=False
            ) as answer:
                body = await answer.read()
                return Answer(answer.status, body, url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx.TransportError(repr(exc)) from exc

    def breaker(self, target: str) -> CircuitBreaker:
        if target not in self.breakers:
            self.breakers[target] = CircuitBreaker(
                target,
                failure_ratio=self.settings.breaker_failure_ratio,
                min_calls=self.settings.breaker_min_calls,
                reset_timeout=self.settings.breaker_reset_timeout,
                probe_delay=self.settings.breaker_probe_delay,
            )
        return self.breakers[target]

    async def request(
        self,
        target: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        retries: int = 2,
    ) -> Answer:
        """Send one call to `target`; a call its retries could not save counts against its breaker.

        Only idempotent calls are retried, with capped, jittered backoff. The breaker sees
        one outcome per call: a failure when every attempt ended in a transport error or a
        502/503/504, a success otherwise (a 4xx or 500 is the dependency answering). A call
        that cannot be made raises DependencyUnavailable (503 to our own client). A body
        already serialised (a contract model's `model_dump_json`) goes in `content`.
        """
        breaker = self.breaker(target)
        if not breaker.allow():
            self._outbound(target, "short_circuit").inc()
            raise DependencyUnavailable(
                f"The {target} service is unavailable.", retry_after=breaker.retry_after()
            )
        if json is not None:
            content = orjson.dumps(json)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        may_retry = method.upper() in _IDEMPOTENT if idempotent is None else idempotent
        attempts = 1 + (retries if may_retry else 0)
        recorded = False
        try:
            for attempt in range(attempts):
                try:
                    response = await self._send(
                        method,
                        self.settings.service_urls.get(target, "") + path,
                        content=content,
                        params=params,
                        headers=headers,
                    )
                except httpx.TransportError as exc:
                    self._outbound(target, "error").inc()
                    log.warning(
                        "call failed", extra={"target": target, "path": path, "error": repr(exc)}
                    )
                    if attempt + 1 < attempts:
                        await asyncio.sleep(_backoff(attempt))
                        continue
                    recorded = self._record(breaker, success=False)
                    raise DependencyUnavailable(f"The {target} service is unavailable.") from exc
                unavailable = response.status_code in _UNAVAILABLE
                failed = response.status_code >= 500
                self._outbound(target, "error" if failed else "ok").inc()
                if unavailable and attempt + 1 < attempts:
                    await asyncio.sleep(_backoff(attempt))
                    continue
                recorded = self._record(breaker, success=not unavailable)
                if failed:
                    raise DependencyUnavailable(f"The {target} service is unavailable.")
                return response
            raise AssertionError("unreachable")
        finally:
            if not recorded:
                breaker.release()

    def _record(self, breaker: CircuitBreaker, *, success: bool) -> bool:
        breaker.record(success=success)
        self._observe_breaker(breaker)
        return True

    def _observe_breaker(self, breaker: CircuitBreaker) -> None:
        self.metrics.breaker_state.labels(breaker.name).set(int(breaker.state))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.client.aclose()


def _backoff(attempt: int) -> float:
    """Capped exponential backoff with full jitter."""
    return random.uniform(0, min(1.0, 0.05 * 2**attempt))
