"""The Redis client of one instance: short timeouts, reconnect with capped backoff."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from shopfleet.common.settings import Settings


def create_redis(settings: Settings) -> Redis | None:
    """Return a pooled client for the configured Redis, or None when there is none."""
    if not settings.redis_url:
        return None
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=30,
        max_connections=64,
        # 100 ms steps capped at 3 s between reconnect attempts; one retry per command
        # so an outage costs a request at most one short wait.
        retry=Retry(ExponentialBackoff(cap=3.0, base=0.1), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
