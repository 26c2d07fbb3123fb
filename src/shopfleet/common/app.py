"""The app factory every service is built with."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, TypeVar

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.telemetry import TelemetryConfig
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shopfleet import __version__
from shopfleet.common.cache import ResponseCache
from shopfleet.common.cached_reads import CachedReadMiddleware, CachedReads, CachedRoute
from shopfleet.common.compression import ConditionalGZipMiddleware
from shopfleet.common.database import create_engine, create_sessionmaker
from shopfleet.common.dbmetrics import instrument_engine
from shopfleet.common.direct_writes import DirectWrite, DirectWriteMiddleware
from shopfleet.common.docs import docs_router
from shopfleet.common.errors import install_error_handlers
from shopfleet.common.health import operational_router
from shopfleet.common.http import ServiceClient
from shopfleet.common.metrics import Metrics
from shopfleet.common.middleware import ServiceMiddleware
from shopfleet.common.openapi import install_problem_schema
from shopfleet.common.pool import DatabaseProbe, IdleClosingPool, open_connections, run_idle_reaper
from shopfleet.common.ratelimit import ClientAddress, RateLimiter, RateLimitMiddleware
from shopfleet.common.redis import RedisGuard, create_redis
from shopfleet.common.redis_line import RedisLine
from shopfleet.common.settings import Settings
from shopfleet.common.tokens import TokenVerifier, load_internal_token
from shopfleet.common.tracing import create_tracer_provider, trace_clients, tracing_requested

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("shopfleet.app")
# Tracing is ours (common/tracing.py, with its own provider, never the global one), so
# FastAPI's native telemetry never has a provider; left on, it still asks OpenTelemetry's
# globals (and the environment) three times per request. The bench's floor app uses the
# same setting, so the ratios compare like with like.
NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
Hook = Callable[[FastAPI, "Resources"], Awaitable[None]]
StateT = TypeVar("StateT")


@dataclass
class Resources:
    """What the lifespan builds, handed to endpoints through `app.state.resources`."""

    settings: Settings
    metrics: Metrics
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: ServiceClient
    verifier: TokenVerifier
    redis: Redis | None
    redis_guard: RedisGuard
    cache: ResponseCache | None
    internal_token: str | None
    database_probe: DatabaseProbe
    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    draining: bool = False
    # Services with public limits (products, categories, orders).
    rate_limiter: RateLimiter | None = None
    client_address: ClientAddress | None = None
    # Each service's own state (AuthContext, OrdersContext, ...), keyed by its type.
    _service_state: dict[type, object] = field(default_factory=dict, repr=False)

    def provide(self, value: object) -> None:
        """Hand a service's typed state to its endpoints (from a startup hook)."""
        self._service_state[type(value)] = value

    def state(self, kind: type[StateT]) -> StateT:
        """The service state of this type; a KeyError names a hook that never ran."""
        value = self._service_state[kind]
        assert isinstance(value, kind)
        return value

    def take(self, kind: type[StateT]) -> StateT | None:
        """Remove and return the state of this type (shutdown hooks), if any."""
        value = self._service_state.pop(kind, None)
        return value if isinstance(value, kind) else None


def service_state(kind: type[StateT]) -> Callable[[Request], Awaitable[StateT]]:
    """A FastAPI dependency giving an endpoint its service's state of this type:
    `ContextDep = Annotated[AuthContext, Depends(service_state(AuthContext))]`.

    `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread,
    a thread hand-off per request for a dictionary lookup.
    """

    async def dependency(request: Request) -> StateT:
        resources: Resources = request.app.state.resources
        return resources.state(kind)

    return dependency


@dataclass(frozen=True)
class ServiceSpec:
    """How one service differs from the others: its routers and lifecycle hooks."""

    name: str
    title: str
    routers: Sequence[APIRouter]
    startup: Sequence[Hook] = ()
    shutdown: Sequence[Hook] = ()
    cached_routes: Sequence[CachedRoute] = ()
    # Hot writes answered without FastAPI when they can be (common/direct_writes.py).
    direct_writes: Sequence[DirectWrite] = ()
    rate_limited: bool = False


class AppOptions(TypedDict, total=False):
    """What tests (and embedders) may pass to every service's `create_app`."""

    http_transport: httpx.AsyncBaseTransport | None  # the network to other services
    span_exporter: SpanExporter | None  # trace into this exporter (tests: in memory)


def create_service_app(
    settings: Settings,
    spec: ServiceSpec,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    """Build a service's ASGI app; all I/O happens in the lifespan, none at build time."""
    metrics = Metrics()
    tracer_provider = (
        create_tracer_provider(settings, span_exporter)
        if span_exporter is not None or tracing_requested()
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        if isinstance(engine.pool, IdleClosingPool):
            engine.pool.checkout_observer = metrics.db_pool_checkout.observe
        instrument_engine(
            engine,
            metrics,
            slow_query_seconds=settings.slow_query_seconds,
            tracer=tracer_provider.get_tracer("shopfleet.db") if tracer_provider else None,
        )
        internal_token = load_internal_token(settings)
        # Traced instances call through httpx, whose instrumentation makes the spans.
        http = ServiceClient(
            settings,
            metrics,
            internal_token=internal_token,
            transport=http_transport,
            lean=tracer_provider is None,
        )
        redis = create_redis(settings)
        if tracer_provider is not None:
            trace_clients(tracer_provider, http=http.client, redis=redis)
        guard = RedisGuard(redis, metrics)
        # The per-request scripts (limiter, cache read) share one lean connection.
        # Traced instances keep redis-py, whose calls the tracer sees.
        line = (
            RedisLine.from_url(settings.redis_url, timeout=settings.redis_timeout)
            if redis is not None and settings.redis_url and tracer_provider is None
            else None
        )
        resources = Resources(
            settings=settings,
            metrics=metrics,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            http=http,
            verifier=TokenVerifier(settings, http=http.client),
            redis=redis,
            redis_guard=guard,
            cache=(
                ResponseCache(guard, metrics, key_prefix=settings.redis_key_prefix, line=line)
                if settings.cache_enabled and spec.cached_routes
                else None
            ),
            internal_token=internal_token,
            # Answers within the probes' 2 s timeout even while a connect hangs.
            database_probe=DatabaseProbe(engine, timeout=min(settings.database_pool_timeout, 1.5)),
        )
        if spec.rate_limited and settings.rate_limit_enabled:
            resources.rate_limiter = RateLimiter(
                guard,
                metrics,
                group=spec.name,
                limit=settings.rate_limit_requests,
                window=settings.rate_limit_window,
                key_prefix=settings.redis_key_prefix,
                line=line,
            )
            resources.client_address = ClientAddress(settings.trusted_proxies)
        if redis is None and (resources.cache is not None or spec.rate_limited):
            log.warning(
                "no Redis configured: caches and rate limits are per instance "
                "(set SHOPFLEET_REDIS_URL to share them)"
            )
        app.state.resources = resources
        jwks_task: asyncio.Task[None] | None = None
        pool_floor = min(settings.database_pool_min, settings.database_pool_size)
        reaper = asyncio.create_task(
            run_idle_reaper(engine, idle_seconds=settings.database_idle_timeout, keep=pool_floor)
        )
        try:
            # The floor of the pool, open before the first request; a database that
            # refuses now keeps /health/ready at 503 until it accepts, not the start.
            await open_connections(engine, pool_floor, within=settings.database_pool_timeout)
            for hook in spec.startup:
                await hook(app, resources)
            jwks_task = await _prime_token_keys(resources)
            resources.ready = True
            log.info("instance ready", extra={"version": __version__})
            yield
        finally:
            resources.ready = False
            resources.draining = True
            if jwks_task is not None:
                jwks_task.cancel()
            for hook in reversed(spec.shutdown):
                try:
                    await hook(app, resources)
                except Exception:
                    log.exception("shutdown hook failed")
            reaper.cancel()
            await http.aclose()
            if line is not None:
                await line.aclose()
            if resources.redis is not None:
                await resources.redis.aclose()
            await engine.dispose()
            if tracer_provider is not None:
                tracer_provider.shutdown()  # flushes the spans still batched
            log.info("instance stopped")

    app = FastAPI(
        title=spec.title,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=NO_NATIVE_TELEMETRY,
    )
    install_error_handlers(app)
    install_problem_schema(app)
    app.include_router(operational_router(service=spec.name))
    app.include_router(docs_router(app, spec.title))
    for router in spec.routers:
        app.include_router(router)
    # Added innermost first. Outside in: bookkeeping, rate limit, gzip, cached reads,
    # direct writes.
    if spec.direct_writes:
        app.add_middleware(DirectWriteMiddleware, routes=spec.direct_writes)
    reads = CachedReads(list(spec.cached_routes)) if spec.cached_routes else None
    if reads is not None:
        app.add_middleware(
            CachedReadMiddleware,
            reads=reads,
            cache=lambda: _cache_of(app),
            settings=lambda: settings,
            metrics=metrics,
        )
    app.add_middleware(ConditionalGZipMiddleware, minimum_size=settings.gzip_minimum_size)
    if spec.rate_limited:
        # The limiter's round trip to Redis also reads the cache entry a GET will serve.
        app.add_middleware(RateLimitMiddleware, state=lambda: _resources(app), reads=reads)
    app.add_middleware(
        ServiceMiddleware,
        instance=settings.instance_name,
        metrics=metrics,
        request_timeout=settings.request_timeout,
        max_body_size=settings.max_body_size,
        access_log_enabled=settings.access_log,
        trace_ids=tracer_provider is not None,
    )
    if tracer_provider is not None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        # Outermost: the server span covers everything, and the access log sees its id.
        app.add_middleware(
            OpenTelemetryMiddleware,
            tracer_provider=tracer_provider,
            exclude_spans=["receive", "send"],
        )
    app.state.metrics = metrics
    app.state.settings = settings
    return app


async def _prime_token_keys(resources: Resources) -> asyncio.Task[None] | None:
    """Fetch auth's JWKS before reporting ready, so a cold instance accepts valid tokens.

    The wait is bounded: if auth is unreachable the instance becomes ready anyway (its
    anonymous reads need no key; auth's outage must not take the catalog down) while a
    background task keeps fetching. A signed-in request meanwhile joins that fetch and,
    if there is still no key, gets a 503 with Retry-After, never a 401 that signs out.
    """
    verifier = resources.verifier
    if verifier.ready or verifier.jwks is None:
        return None  # keys configured (a static public key, or auth's own signing key)
    if await verifier.jwks.prime(max_wait=resources.settings.jwks_startup_timeout):
        return None
    log.warning("no token keys yet: signed-in requests get 503 until auth's JWKS is fetched")
    return asyncio.get_running_loop().create_task(verifier.jwks.keep_trying())


def _resources(app: FastAPI) -> Resources | None:
    return getattr(app.state, "resources", None)


def _cache_of(app: FastAPI) -> ResponseCache | None:
    resources = _resources(app)
    return resources.cache if resources is not None else None
