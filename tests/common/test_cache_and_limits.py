"""Response caching and rate limiting on a small service, against real Redis."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
from fastapi import APIRouter, Request

from shopfleet.common.app import ServiceSpec, create_service_app
from shopfleet.common.cached_reads import CachedRoute, int_value
from shopfleet.common.database import SessionDep, after_commit
from shopfleet.common.redis_line import RedisLine
from tests.common.redis_support import private_redis
from tests.support import REDIS_URL, base_settings, eventually, redis_round_trips

STORE: dict[str, dict[str, Any]] = {}
router = APIRouter()


@router.get("/v1/auth/items")
async def list_items(request: Request, page: int = 1) -> dict[str, Any]:
    request.app.state.loads += 1
    await asyncio.sleep(0.05)  # a slow query, so concurrent misses overlap
    return {"results": sorted(STORE[request.app.state.ns].values(), key=str), "page": page}


@router.get("/v1/auth/items/{item_id}")
async def get_item(item_id: str, request: Request) -> dict[str, Any]:
    request.app.state.loads += 1
    item: dict[str, Any] = STORE[request.app.state.ns].get(item_id, {"id": item_id, "name": None})
    return item


@router.put("/v1/auth/items/{item_id}")
async def put_item(
    item_id: str, body: dict[str, str], request: Request, db: SessionDep
) -> dict[str, str]:
    STORE[request.app.state.ns][item_id] = {"id": item_id, **body}
    cache = request.app.state.resources.cache
    after_commit(db, lambda: cache.invalidate("items:list", f"items:detail:{item_id}"))
    return body


ROUTES = [
    CachedRoute(
        pattern=re.compile(r"/v1/auth/items"),
        template="/v1/auth/items",
        scope=lambda m: "items:list",
        key=lambda m, q: f"items:list:{q}",
        ttl=lambda settings: settings.cache_list_ttl,
        query={"page": int_value},
    ),
    CachedRoute(
        pattern=re.compile(r"/v1/auth/items/(?P<id>[^/]+)"),
        template="/v1/auth/items/{item_id}",
        scope=lambda m: f"items:detail:{m['id']}",
        key=lambda m, q: f"items:detail:{m['id']}",
        ttl=lambda settings: settings.cache_detail_ttl,
    ),
]
SPEC = ServiceSpec(
    name="auth", title="t", routers=[router], cached_routes=ROUTES, rate_limited=True
)


@asynccontextmanager
async def instance(tmp_path: Path, ns: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    values: dict[str, Any] = {"redis_url": REDIS_URL, "redis_key_prefix": f"test:{ns}:"}
    values.update(overrides)
    app = create_service_app(base_settings("auth", "sqlite", tmp_path, **values), SPEC)
    app.state.loads = 0
    app.state.ns = ns
    STORE.setdefault(ns, {})
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 1234))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def ns(redis_prefix: str) -> str:
    """The test's namespace: its Redis keys start `test:<ns>:` and are deleted afterwards."""
    return redis_prefix.split(":")[1]


async def test_miss_then_hit_with_normalised_key(tmp_path: Path, ns: str) -> None:
    async with instance(tmp_path, ns) as client:
        first = await client.get("/v1/auth/items?page=1&b=2")
        second = await client.get("/v1/auth/items?b=3&page=01")
        assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
        # Only what the endpoint reads makes the key, in its normal form.
        assert first.headers["x-cache-key"] == second.headers["x-cache-key"] == "items:list:page=1"
        assert first.content == second.content
        assert client.app.state.loads == 1  # type: ignore[attr-defined]
        assert second.headers["ratelimit-limit"] == "100"
        metrics = (await client.get("/metrics")).text
        # The hit, answered before routing, is counted under its route all the same.
        assert (
            'http_requests_total{method="GET",route="/v1/auth/items",status="200"} 2.0' in metrics
        )


async def test_a_hit_is_one_redis_round_trip(tmp_path: Path, ns: str) -> None:
    async with instance(tmp_path, ns) as client:
        await client.get("/v1/auth/items/r")  # the miss fills the entry
        with redis_round_trips(client.app) as made:  # type: ignore[attr-defined]
            hit = await client.get("/v1/auth/items/r")
    assert hit.headers["x-cache"] == "HIT"
    assert int(hit.headers["ratelimit-remaining"]) < int(hit.headers["ratelimit-limit"])
    # The limiter's script read the entry too: one round trip for both.
    assert made == {"rate_limit_cache_read": 1}


async def test_write_makes_the_next_read_fresh(tmp_path: Path, ns: str) -> None:
    async with instance(tmp_path, ns) as client:
        await client.get("/v1/auth/items/a")
        assert (await client.get("/v1/auth/items/a")).headers["x-cache"] == "HIT"
        await client.get("/v1/auth/items")
        await client.put("/v1/auth/items/a", json={"name": "new"})
        detail = await client.get("/v1/auth/items/a")
        assert detail.headers["x-cache"] == "MISS" and detail.json()["name"] == "new"
        listing = await client.get("/v1/auth/items")
        assert listing.headers["x-cache"] == "MISS"
        assert listing.json()["results"] == [{"id": "a", "name": "new"}]


async def test_concurrent_misses_load_once(tmp_path: Path, ns: str) -> None:
    # Single flight, not the guard: on a loaded test machine a round trip can pass the
    # default 0.5 s, which serves uncached by design (and loads again).
    async with instance(tmp_path, ns, redis_timeout=5.0) as client:
        responses = await asyncio.gather(*(client.get("/v1/auth/items?page=7") for _ in range(50)))
        assert {r.status_code for r in responses} == {200}
        assert len({r.content for r in responses}) == 1
        assert client.app.state.loads == 1  # type: ignore[attr-defined]


async def test_two_instances_share_cache_and_limit(tmp_path: Path, ns: str) -> None:
    async with (
        instance(tmp_path / "a", ns, rate_limit_requests=10) as one,
        instance(tmp_path / "b", ns, rate_limit_requests=10) as two,
    ):
        await one.get("/v1/auth/items/x")
        hit = await two.get("/v1/auth/items/x")
        assert hit.headers["x-cache"] == "HIT"
        statuses = [
            (await (one if i % 2 else two).get("/v1/auth/items/x")).status_code for i in range(12)
        ]
        # 2 requests already counted; 8 more pass, then both instances refuse.
        assert statuses.count(200) == 8 and statuses[-1] == 429
        refused = await one.get("/v1/auth/items/x")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-remaining"] == "0"


async def test_forwarded_for_is_trusted_only_from_the_gateway(tmp_path: Path, ns: str) -> None:
    # The test client's peer (198.51.100.7) is not a trusted proxy: its X-Forwarded-For
    # must not give it a fresh quota per spoofed address.
    async with instance(tmp_path, ns, rate_limit_requests=3) as client:
        statuses = [
            (
                await client.get("/v1/auth/items/y", headers={"X-Forwarded-For": f"10.0.0.{i}"})
            ).status_code
            for i in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
    async with instance(
        tmp_path, ns + "t", rate_limit_requests=3, trusted_proxies=["198.51.100.0/24"]
    ) as client:
        statuses = [
            (
                await client.get("/v1/auth/items/y", headers={"X-Forwarded-For": f"10.0.0.{i}"})
            ).status_code
            for i in range(5)
        ]
        assert statuses == [200] * 5


async def test_redis_outage_degrades_and_recovers(
    tmp_path: Path, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = private_redis()
    server.start()
    try:
        async with instance(tmp_path, ns, redis_url=server.url, rate_limit_requests=1000) as client:
            app = client.app  # type: ignore[attr-defined]
            await client.get("/v1/auth/items/z")
            assert (await client.get("/v1/auth/items/z")).headers["x-cache"] == "HIT"
            server.kill()
            during = [await client.get("/v1/auth/items/z") for _ in range(20)]
            assert {r.status_code for r in during} == {200}
            assert all(r.headers["x-cache"] == "MISS" for r in during)
            outage_logs = [r for r in caplog.records if "redis unavailable" in r.getMessage()]
            assert len(outage_logs) == 1  # once per outage, not per request
            metrics = (await client.get("/metrics")).text
            assert "redis_errors_total" in metrics
            server.start()  # same port, empty data
            # Until the guard's backoff (up to 3 s) lets a request try Redis again.
            await eventually(app.state.resources.redis_guard.available, timeout=5)
            await client.get("/v1/auth/items/z")
            after = await client.get("/v1/auth/items/z")
            assert after.headers["x-cache"] == "HIT"
            assert "ratelimit-remaining" in after.headers
            assert app.state.resources.redis_guard.failures == 0
            assert any("redis is back" in r.getMessage() for r in caplog.records)
    finally:
        server.kill()


async def test_writes_never_scan_or_list_keys(tmp_path: Path, ns: str) -> None:
    server = private_redis()
    server.start()
    seen: list[str] = []
    stop = threading.Event()

    def monitor() -> None:
        connection = sync_redis.Redis(port=server.port)
        with connection.monitor() as m:  # type: ignore[no-untyped-call]
            for command in m.listen():
                seen.append(command["command"].split(" ")[0].upper().strip('"'))
                if stop.is_set():
                    return

    thread = threading.Thread(target=monitor, daemon=True)
    thread.start()
    marker = sync_redis.Redis(port=server.port)

    def monitoring() -> bool:
        marker.echo("monitoring?")
        return "ECHO" in seen

    await eventually(monitoring)  # the monitor sees commands from here on
    try:
        async with instance(tmp_path, ns, redis_url=server.url) as client:
            await client.get("/v1/auth/items/w")
            for i in range(5):
                await client.put("/v1/auth/items/w", json={"name": str(i)})
            stop.set()
            sync_redis.Redis(port=server.port).ping()  # wake the monitor
            thread.join(5)
        assert "INCR" in seen or "MULTI" in seen
        assert not {"KEYS", "SCAN", "FLUSHDB", "FLUSHALL"} & set(seen), seen
    finally:
        server.kill()


async def test_without_redis_an_in_process_cache_and_limit_serve(
    tmp_path: Path, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with instance(tmp_path, ns, redis_url=None, rate_limit_requests=3) as client:
        assert any("per instance" in r.getMessage() for r in caplog.records)
        await client.get("/v1/auth/items/q")
        assert (await client.get("/v1/auth/items/q")).headers["x-cache"] == "HIT"
        await client.put("/v1/auth/items/q", json={"name": "v2"})
        assert (await client.get("/v1/auth/items/q")).status_code == 429


async def test_a_huge_limit_still_limits_nothing_and_counts(tmp_path: Path, ns: str) -> None:
    async with instance(
        tmp_path, ns, rate_limit_requests=1_000_000_000, rate_limit_window=60
    ) as client:
        responses = [await client.get("/v1/auth/items/h") for _ in range(5)]
        assert {r.status_code for r in responses} == {200}
        assert int(responses[-1].headers["ratelimit-remaining"]) > 900_000_000


async def test_a_miss_locks_and_stores_over_the_lean_line(tmp_path: Path, ns: str) -> None:
    """A miss's cross-instance lock (SET NX PX) and its entry (SET EX) go over the lean
    connection, with the options the cache needs, and the entry serves the next read."""
    async with instance(tmp_path, ns) as client:
        cache = client.app.state.resources.cache  # type: ignore[attr-defined]
        line = cache.line
        assert line is not None
        sent: list[tuple[str, bytes, dict[str, Any]]] = []
        original = line.set

        async def recording_set(key: str, value: bytes, **options: Any) -> bool:
            given = {
                name: option for name, option in options.items() if option not in (None, False)
            }
            sent.append((key, value, given))
            stored: bool = await original(key, value, **options)
            return stored

        line.set = recording_set
        miss = await client.get("/v1/auth/items/lean")
        hit = await client.get("/v1/auth/items/lean")
    assert miss.headers["x-cache"] == "MISS" and hit.headers["x-cache"] == "HIT"
    assert hit.content == miss.content
    lock, entry = sent
    assert ":lock:" in lock[0] and lock[2] == {"nx": True, "px": 2000}
    assert entry[1] == miss.content and entry[2] == {"ex": cache_ttl(client)}
    plain = sync_redis.Redis.from_url(REDIS_URL)
    try:
        assert not plain.set(lock[0], b"x", nx=True)  # the lock is really held in Redis
        assert plain.get(entry[0]) == miss.content
    finally:
        plain.delete(lock[0], entry[0])
        plain.close()


def cache_ttl(client: httpx.AsyncClient) -> int:
    settings = client.app.state.resources.settings  # type: ignore[attr-defined]
    return int(settings.cache_detail_ttl)


async def test_the_lean_line_keeps_bytes_and_ttls(ns: str) -> None:
    line = RedisLine.from_url(REDIS_URL)
    assert line is not None
    key = f"test:{ns}:line"
    plain = sync_redis.Redis.from_url(REDIS_URL)
    try:
        assert await line.set(key, b"first", nx=True, px=5000)
        assert not await line.set(key, b"second", nx=True, px=5000)  # taken: a lock held
        assert plain.get(key) == b"first" and 0 < plain.pttl(key) <= 5000
        assert await line.set(key, b"\x00entry", ex=60)  # bytes as they are
        assert plain.get(key) == b"\x00entry" and 55 <= plain.ttl(key) <= 60
    finally:
        plain.delete(key)
        plain.close()
        await line.aclose()


async def test_the_lean_line_times_out_a_call_and_keeps_serving(ns: str) -> None:
    line = RedisLine.from_url(REDIS_URL, timeout=0.2)
    assert line is not None
    key = f"test:{ns}:blocked"
    try:
        assert await line._call("PING") == b"PONG"
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            # Blocks the connection for 1 s: no reply within the line's timeout.
            await line._call("BLPOP", key, 1)
        assert 0.2 <= loop.time() - started < 0.6
        await asyncio.sleep(started + 1.2 - loop.time())  # the late reply (nil) has come
        # It was dropped, and the next call on the same connection gets its own reply.
        assert await line._call("ECHO", "after") == b"after"
    finally:
        await line.aclose()
