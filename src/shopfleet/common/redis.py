"""The Redis client of one instance, and the guard that turns outages into fast fallbacks."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from shopfleet.common.metrics import Metrics, label_children
from shopfleet.common.settings import Settings

log = logging.getLogger("shopfleet.redis")
T = TypeVar("T")


def create_redis(settings: Settings) -> Redis | None:
    """Return a pooled client for the configured Redis, or None when there is none."""
    if not settings.redis_url:
        return None
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=30,
        max_connections=64,
        # One immediate retry covers a pooled connection that went stale; longer
        # outages are handled by RedisGuard's backoff, not by making requests wait.
        retry=Retry(NoBackoff(), retries=1),
    )


class RedisGuard:
    """Run Redis commands; during an outage skip them until a backoff expires.

    After a failure Redis is not tried again for 100 ms, then 200 ms, ... capped at 3 s,
    so requests in an outage cost no connect timeout. The outage is logged once when it
    starts and once when it ends, never per request.
    """

    def __init__(
        self,
        redis: Redis | None,
        metrics: Metrics,
        *,
        base_delay: float = 0.1,
        max_delay: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.metrics = metrics
        self._durations = label_children(metrics.redis_duration)  # every request times one
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock = clock
        self.failures = 0
        self.retry_at = 0.0
        self.down_since: float | None = None

    @property
    def configured(self) -> bool:
        return self.redis is not None

    def available(self) -> bool:
        return self.redis is not None and self.clock() >= self.retry_at

    async def run(self, operation: str, command: Callable[[Redis], Awaitable[T]], fallback: T) -> T:
        """Run `command`, or return `fallback` when Redis is down or fails."""
        if self.redis is None or self.clock() < self.retry_at:
            return fallback
        started = time.perf_counter()
        try:
            result = await command(self.redis)
        except (RedisError, OSError) as exc:
            self._failed(operation, exc)
            return fallback
        self._durations(operation).observe(time.perf_counter() - started)
        if self.failures:
            log.warning(
                "redis is back",
                extra={"outage_seconds": round(self.clock() - (self.down_since or 0), 3)},
            )
            self.failures = 0
            self.down_since = None
            # The pool's idle connections predate the outage (and may not have been tried
            # during it: the rate limiter has its own connection), so they are stale.
            await self.redis.connection_pool.disconnect(inuse_connections=False)
        return result

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.metrics.redis_errors.labels(operation).inc()
        if self.failures == 0:
            self.down_since = self.clock()
            log.error(
                "redis unavailable: serving uncached and not rate limiting until it returns",
                extra={"error": repr(exc)},
            )
        self.failures += 1
        delay = min(self.max_delay, self.base_delay * 2 ** (self.failures - 1))
        self.retry_at = self.clock() + delay
