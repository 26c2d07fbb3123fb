"""A bounded load of idempotent reads through the gateway, counting every failure."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

# The server closed an idle keep-alive connection just as the request went out (nginx's old
# workers do this at every reload). RFC 9112 9.3.1 lets a client retry an idempotent request
# then, and browsers do; it is counted apart so the report shows it.
KEEPALIVE_CLOSED = (httpx.RemoteProtocolError, httpx.ReadError)


@dataclass
class LoadResult:
    sent: int = 0
    failures: int = 0
    keepalive_retries: int = 0
    instances: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        detail = f" ({dict(self.errors)})" if self.errors else ""
        return (
            f"requests sent {self.sent}, failures {self.failures}{detail}, "
            f"retried after a closed keep-alive connection {self.keepalive_retries}"
        )


async def _get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], result: LoadResult
) -> httpx.Response:
    try:
        return await client.get(url, headers=headers)
    except KEEPALIVE_CLOSED:
        result.keepalive_retries += 1
        return await client.get(url, headers=headers)


async def _worker(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    stop: asyncio.Event,
    result: LoadResult,
    limit: int,
) -> None:
    while not stop.is_set() and result.sent < limit:
        result.sent += 1
        try:
            response = await _get(client, url, headers, result)
        except httpx.HTTPError as exc:
            result.failures += 1
            result.errors[type(exc).__name__] += 1
            continue
        if response.status_code != 200:
            result.failures += 1
            result.errors[f"HTTP {response.status_code}"] += 1
        result.instances[response.headers.get("x-instance", "?")] += 1


@contextlib.asynccontextmanager
async def steady_reads(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 8,
    limit: int = 200_000,
    timeout: float = 180,
) -> AsyncIterator[LoadResult]:
    """Keep `concurrency` GET loops running for the duration of the block (bounded by
    `limit` requests and `timeout` seconds); the result is complete when the block exits."""
    result = LoadResult()
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        workers = [
            asyncio.create_task(_worker(client, url, headers or {}, stop, result, limit))
            for _ in range(concurrency)
        ]
        try:
            async with asyncio.timeout(timeout):
                yield result
                await asyncio.sleep(1)  # a little steady state after the action, too
        finally:
            stop.set()
            await asyncio.gather(*workers)
