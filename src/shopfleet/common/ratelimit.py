"""A distributed rate limiter (GCRA in one Lua script), shared by every instance.

GCRA keeps one timestamp per client (the theoretical arrival time), so a check is one
atomic round trip and the limit is exact across instances. Clients are keyed by user id
when signed in, otherwise by address; X-Forwarded-For is believed only from the gateway.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from starlette.types import Message, Receive, Scope, Send

from shopfleet.common.errors import ShopfleetError, problem_bytes
from shopfleet.common.metrics import Metrics
from shopfleet.common.redis import RedisGuard
from shopfleet.common.redis_line import RedisLine

if TYPE_CHECKING:
    from shopfleet.common.app import Resources
    from shopfleet.common.cached_reads import CachedReads, CacheLookup, SideRead

# KEYS[1]: the client's key. ARGV: emission interval and period, in nanoseconds.
# Returns {allowed, tat_after - now (ns), retry_after (ns)}; Redis' clock is the one clock.
# With KEYS[2] (a cache generation) and ARGV[3], ARGV[4] (the entry key around it), an
# allowed request also gets {generation, entry}: the cache read rides on the same round
# trip (see cached_reads.CacheLookup and SideRead).
_GCRA_SCRIPT = """
local now_parts = redis.call('TIME')
-- Seconds since 2023-11 keep nanosecond values well inside a double's exact range.
local now = (tonumber(now_parts[1]) - 1700000000) * 1000000000 + tonumber(now_parts[2]) * 1000
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - period > now then
  return {0, tat - now, new_tat - period - now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
if KEYS[2] then
  local generation = redis.call('GET', KEYS[2]) or '0'
  return {1, new_tat - now, 0, generation, redis.call('GET', ARGV[3] .. generation .. ARGV[4])}
end
return {1, new_tat - now, 0}
"""

# {allowed, used (ns), wait (ns), the cache read (generation, entry) if one was asked for}
_Answer = tuple[int, int, int, tuple[str, bytes | None] | None]
_REDIS_DOWN: _Answer = (1, -1, 0, None)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the client's quota is whole again
    retry_after: int  # seconds, when refused
    # The cache read asked for with the check (generation, entry), when Redis answered it.
    found: tuple[str, bytes | None] | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        values = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
        ]
        if not self.allowed:
            values.append((b"retry-after", str(self.retry_after).encode()))
        return values


class _LocalGCRA:
    """The embedded fallback: the same algorithm, per instance, bounded in memory."""

    def __init__(self, max_clients: int = 100_000) -> None:
        self.tats: OrderedDict[str, int] = OrderedDict()
        self.max_clients = max_clients

    def check(self, key: str, interval: int, period: int) -> tuple[int, int, int]:
        now = time.time_ns() - 1_700_000_000_000_000_000
        tat = max(self.tats.get(key, now), now)
        new_tat = tat + interval
        if new_tat - period > now:
            return 0, tat - now, new_tat - period - now
        self.tats[key] = new_tat
        self.tats.move_to_end(key)
        while len(self.tats) > self.max_clients:
            self.tats.popitem(last=False)
        return 1, new_tat - now, 0


class RateLimiter:
    """`limit` requests per `window` seconds per client, for one route group."""

    def __init__(
        self,
        guard: RedisGuard,
        metrics: Metrics,
        *,
        group: str,
        limit: int,
        window: int,
        key_prefix: str,
        line: RedisLine | None = None,
    ) -> None:
        self.guard = guard
        self.line = line  # the lean connection for this script (redis_line.py), if any
        self.metrics = metrics
        self.group = group
        self.limit = limit
        self.window = window
        self.period = window * 1_000_000_000
        # Nanoseconds keep a huge limit (a load-test profile) exact: 1e9 per minute is 60 ns.
        self.interval = max(1, self.period // limit)
        self.prefix = f"{key_prefix}rl:{group}:"
        self.local = _LocalGCRA() if not guard.configured else None
        self._script = guard.redis.register_script(_GCRA_SCRIPT) if guard.redis else None
        # Label children resolved once: a labels() lookup per request adds up.
        decisions = metrics.rate_limit_decisions
        self._allowed = decisions.labels(group, "allowed")
        self._rejected = decisions.labels(group, "rejected")
        self._failed_open = decisions.labels(group, "failed_open")
        self._rejections = metrics.rate_limited.labels(group)

    async def check(
        self, client: str, *, read_keys: tuple[str, str, str] | None = None
    ) -> Decision:
        """Count one request of `client`; fail open (allow) when Redis is down.

        `read_keys` (ResponseCache.read_keys): read that cache entry in the same round trip.
        """
        key = self.prefix + client
        found: tuple[str, bytes | None] | None = None
        if self.local is not None:
            allowed, used, wait = self.local.check(key, self.interval, self.period)
        else:
            script = self._script
            assert script is not None
            keys: list[str] = [key]
            args: list[int | str] = [self.interval, self.period]
            if read_keys is not None:
                keys.append(read_keys[0])
                args += read_keys[1:]

            line = self.line

            async def command(_: Redis) -> _Answer:
                if line is not None:
                    result = await line.run_script(script.sha, _GCRA_SCRIPT, keys, args)
                else:
                    result = await script(keys=keys, args=args)
                read = None
                if len(result) > 3:
                    generation = result[3]
                    read = (
                        generation.decode() if isinstance(generation, bytes) else str(generation),
                        result[4],
                    )
                return int(result[0]), int(result[1]), int(result[2]), read

            operation = "rate_limit" if read_keys is None else "rate_limit_cache_read"
            allowed, used, wait, found = await self.guard.run(operation, command, _REDIS_DOWN)
            if used < 0:  # Redis down: fail open, without inventing numbers
                self._failed_open.inc()
                return Decision(True, self.limit, self.limit, 0, 0)
        if allowed:
            self._allowed.inc()
        else:
            self._rejections.inc()
            self._rejected.inc()
        remaining = max(0, math.floor((self.period - used) / self.interval))
        return Decision(
            allowed=bool(allowed),
            limit=self.limit,
            remaining=remaining if allowed else 0,
            reset=math.ceil(used / 1_000_000_000),
            retry_after=max(1, math.ceil(wait / 1_000_000_000)),
            found=found,
        )


class ClientAddress:
    """The real client address: X-Forwarded-For only when the peer is a trusted proxy."""

    def __init__(self, trusted: list[str]) -> None:
        self.trusted = [ipaddress.ip_network(net, strict=False) for net in trusted]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        if peer is None:
            return "unknown"
        if forwarded_for is None or not self._is_trusted(peer):
            return peer
        # Walk from the right: the first address not of our own proxies is the client.
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            if not self._is_trusted(hop):
                return hop
        return peer


class RateLimitMiddleware:
    """Limit every /v1/ request of a service; answer 429 problems with Retry-After."""

    def __init__(
        self,
        app: Any,
        *,
        state: Callable[[], Resources | None],
        reads: CachedReads | None = None,
    ) -> None:
        self.app = app
        self.state = state  # the app's Resources, available once the lifespan ran
        self.reads = reads  # the service's cached reads, read in the limiter's round trip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        resources = self.state() if scope["type"] == "http" else None
        limiter = resources.rate_limiter if resources is not None else None
        if limiter is None or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        assert resources is not None
        client = await self._client_key(scope, resources)
        cache = resources.cache
        read: CacheLookup | SideRead | None = None
        if self.reads is not None and cache is not None:
            # The request's cache entry; uncached (an admin's no-cache), the other entry its
            # direct answer reads, if any. (A cached request's other read would be wasted
            # on every hit: a miss makes it itself.)
            lookup = self.reads.lookup(scope)
            read = lookup if lookup is not None else self.reads.side_read(scope)
        if read is None:
            decision = await limiter.check(client)
        else:
            assert cache is not None
            decision = await limiter.check(client, read_keys=cache.read_keys(read.scope, read.key))
            read.found = decision.found
        if not decision.allowed:
            body = problem_bytes(429, "Too many requests; slow down.")
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                        *decision.headers(),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        extra = decision.headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _client_key(scope: Scope, resources: Resources) -> str:
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if authorization[:7].lower() == "bearer ":
            try:
                claims = await resources.verifier.verify(authorization[7:].strip())
            except ShopfleetError:
                pass  # a bad token is limited by address; the endpoint answers 401
            else:
                # The endpoint's CurrentUser dependency reuses this verification.
                scope.setdefault("state", {})["claims"] = claims
                return f"user:{claims.subject}"
        peer = scope.get("client")
        forwarded = headers.get(b"x-forwarded-for")
        address = resources.client_address or ClientAddress([])
        return "addr:" + address.resolve(
            peer[0] if peer else None, forwarded.decode("latin-1") if forwarded else None
        )
