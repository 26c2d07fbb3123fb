"""Cache-aside for serialised responses, with O(1), race-free invalidation.

Every cached entry lives under a *generation*: a counter per namespace (all product
lists) or per object (one product). A read fetches the generation and the entry in one
Redis round trip (a Lua script); a write bumps the generation after its transaction
commits. A reader that loaded old rows before the bump stores them under the old
generation, where no one looks again, so a write is never followed by a stale read and
invalidation never needs KEYS or SCAN.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from shopfleet.common.flights import Flights
from shopfleet.common.metrics import Metrics, label_children
from shopfleet.common.redis import RedisGuard
from shopfleet.common.redis_line import RedisLine

log = logging.getLogger("shopfleet.cache")

# KEYS[1]: the generation counter. ARGV[1], ARGV[2]: the entry key around the generation.
_READ_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ARGV[2])}
"""
# KEYS: generation counters to bump, all in one atomic step (a script runs alone).
_BUMP_SCRIPT = """
for _, key in ipairs(KEYS) do redis.call('INCR', key) end
return #KEYS
"""
_LOCK_WAIT = 0.5
_LOCK_POLL = 0.02


# A read's answer: the generation, and the entry under it if there is one.
Found = tuple[str, bytes | None]


@dataclass(frozen=True)
class CacheResult:
    body: bytes
    hit: bool


def _label(key: str) -> str:
    """The metrics label of a key: its first two parts (`products:list`)."""
    return ":".join(key.split(":", 2)[:2])


class LocalStore:
    """The embedded fallback: an in-process LRU with TTLs and the same generation model."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.generations: dict[str, int] = {}
        self.max_entries = max_entries

    def read(self, generation_key: str, head: str, tail: str) -> tuple[str, bytes | None]:
        generation = str(self.generations.get(generation_key, 0))
        key = head + generation + tail
        found = self.entries.get(key)
        if found is None:
            return generation, None
        expires, body = found
        if expires < time.monotonic():
            del self.entries[key]
            return generation, None
        self.entries.move_to_end(key)
        return generation, body

    def write(self, key: str, body: bytes, ttl: int) -> None:
        self.entries[key] = (time.monotonic() + ttl, body)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    def bump(self, generation_keys: list[str]) -> None:
        for key in generation_keys:
            self.generations[key] = self.generations.get(key, 0) + 1


class ResponseCache:
    """Serialised response bytes in Redis (or in-process), keyed by generation."""

    def __init__(
        self,
        guard: RedisGuard,
        metrics: Metrics,
        *,
        key_prefix: str,
        line: RedisLine | None = None,
    ) -> None:
        self.guard = guard
        self.line = line  # the lean connection for the read script (redis_line.py), if any
        self.metrics = metrics
        self.prefix = key_prefix
        self.local = LocalStore() if not guard.configured else None
        self._flights: Flights[str, bytes] = Flights()
        self._lookups = label_children(metrics.cache)
        self._read = guard.redis.register_script(_READ_SCRIPT) if guard.redis else None
        self._bump = guard.redis.register_script(_BUMP_SCRIPT) if guard.redis else None

    def _generation_key(self, scope: str) -> str:
        return f"{self.prefix}gen:{scope}"

    def read_keys(self, scope: str, key: str) -> tuple[str, str, str]:
        """The Redis keys of a read: the generation, and the entry's key around it."""
        return self._generation_key(scope), f"{self.prefix}{key}@", ""

    async def read(self, scope: str, key: str) -> tuple[str, bytes | None]:
        """Return the current generation of `scope` and the entry for `key`, if cached."""
        generation_key, head, tail = self.read_keys(scope, key)
        if self.local is not None:
            return self.local.read(generation_key, head, tail)
        script = self._read
        assert script is not None

        line = self.line

        async def command(_: Redis) -> tuple[str, bytes | None]:
            if line is not None:
                reply = await line.run_script(
                    script.sha, _READ_SCRIPT, [generation_key], [head, tail]
                )
            else:
                reply = await script(keys=[generation_key], args=[head, tail])
            generation, body = reply
            return generation.decode() if isinstance(generation, bytes) else str(generation), body

        return await self.guard.run("cache_read", command, ("", None))

    async def write(self, key: str, generation: str, body: bytes, ttl: int) -> None:
        full_key = f"{self.prefix}{key}@{generation}"
        if self.local is not None:
            self.local.write(full_key, body, ttl)
            return
        if not generation:  # Redis was down when we read: don't store under a guess
            return
        await self.guard.run("cache_write", lambda r: self._set(r, full_key, body, ex=ttl), False)

    async def _set(
        self,
        redis: Redis,
        key: str,
        value: bytes,
        *,
        ex: int | None = None,
        px: int | None = None,
        nx: bool = False,
    ) -> bool:
        """SET on the lean connection (redis_line.py) when there is one, as reads use;
        False when NX found the key taken."""
        if self.line is not None:
            return await self.line.set(key, value, ex=ex, px=px, nx=nx)
        return bool(await redis.set(key, value, ex=ex, px=px, nx=nx))

    async def invalidate(self, *scopes: str) -> None:
        """Bump the generations of `scopes`: every entry under them is gone, in O(1) each."""
        for scope in scopes:
            self.metrics.cache_invalidations.labels(_label(scope)).inc()
        keys = [self._generation_key(scope) for scope in scopes]
        if self.local is not None:
            self.local.bump(keys)
            return

        script = self._bump
        assert script is not None
        line = self.line

        async def command(_: Redis) -> None:
            # One script, not MULTI/INCR.../EXEC: one command each way, on the lean line
            # when there is one (an order bumps its products' generations).
            if line is not None:
                await line.run_script(script.sha, _BUMP_SCRIPT, keys, [])
            else:
                await script(keys=keys)

        await self.guard.run("cache_invalidate", command, None)

    def _count(self, key: str, result: str) -> None:
        self._lookups(_label(key), result).inc()

    async def get_or_load(
        self,
        *,
        scope: str,
        key: str,
        ttl: int,
        load: Callable[[], Awaitable[bytes]],
        known: tuple[str, bytes | None] | None = None,
    ) -> CacheResult:
        """Serve `key` from the cache or load it once, however many ask at the same time.

        `known`: the generation and entry already read (in the rate limiter's round trip).
        """
        generation, body = known if known is not None else await self.read(scope, key)
        if body is not None:
            self._count(key, "hit")
            return CacheResult(body, hit=True)
        self._count(key, "miss")
        # Requests of this instance that miss at once share one load.
        body = await self._flights.run(
            f"{key}@{generation}",
            lambda: self._load_across_instances(key, generation, ttl, load),
        )
        return CacheResult(body, hit=False)

    async def _load_across_instances(
        self, key: str, generation: str, ttl: int, load: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        # Across instances a short lock lets one load while the others wait for its result.
        if self.local is None and generation:
            lock_key = f"{self.prefix}lock:{key}@{generation}"
            got_lock = await self.guard.run(
                "cache_lock", lambda r: self._set(r, lock_key, b"1", nx=True, px=2000), True
            )
            if not got_lock:
                body = await self._wait_for(f"{self.prefix}{key}@{generation}")
                if body is not None:
                    return body
        body = await load()
        await self.write(key, generation, body, ttl)
        return body

    async def _wait_for(self, full_key: str) -> bytes | None:
        deadline = time.monotonic() + _LOCK_WAIT
        while time.monotonic() < deadline:
            await asyncio.sleep(_LOCK_POLL)
            body = await self.guard.run("cache_read", lambda r: _get_bytes(r, full_key), None)
            if body is not None:
                return body
        return None


async def _get_bytes(redis: Redis, key: str) -> bytes | None:
    value = await redis.get(key)
    return value if isinstance(value, bytes) or value is None else str(value).encode()
