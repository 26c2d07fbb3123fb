"""The operational endpoints every instance serves: liveness, readiness, health, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.pool import QueuePool
from starlette.responses import Response

from shopfleet import __version__
from shopfleet.common.pool import IdleClosingPool

if TYPE_CHECKING:
    from shopfleet.common.app import Resources

log = logging.getLogger("shopfleet.app")


def operational_router(*, service: str) -> APIRouter:
    """/health/live, /health/ready, /health and /metrics: the operator's view, never public."""
    router = APIRouter(include_in_schema=False)

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready(request: Request) -> Response:
        resources: Resources = request.app.state.resources
        if resources.draining or not resources.ready:
            body = {"status": "draining" if resources.draining else "starting"}
            return _json(body, 503)
        # Out of rotation while no database connection can be had (server full or down).
        if not await resources.database_probe.ok():
            return _json({"status": "database unavailable"}, 503)
        return _json({"status": "ready"}, 200)

    @router.get("/health")
    async def health(request: Request) -> Response:
        resources: Resources = request.app.state.resources
        checks = {"database": await _check_database(resources)}
        if resources.redis is not None:
            checks["redis"] = await _check_redis(resources.redis)
        healthy = all(value == "ok" for value in checks.values()) and not resources.draining
        body = {
            "status": "ok" if healthy else "unhealthy",
            "service": service,
            "instance": resources.settings.instance_name,
            "version": __version__,
            "uptime": round(time.monotonic() - resources.started_at, 3),
            "checks": checks,
        }
        return _json(body, 200 if healthy else 503)

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        resources: Resources = request.app.state.resources
        pool = resources.engine.pool
        if isinstance(pool, QueuePool):
            resources.metrics.db_pool_in_use.set(pool.checkedout())
            resources.metrics.db_pool_size.set(pool.size())
            resources.metrics.db_pool_idle.set(pool.checkedin())
        if isinstance(pool, IdleClosingPool):
            resources.metrics.db_pool_waiting.set(pool.waiting)
        payload, content_type = resources.metrics.render()
        return Response(payload, media_type=content_type)

    return router


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _check_database(resources: Resources) -> str:
    try:
        async with asyncio.timeout(2):
            async with resources.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:
        log.warning("database check failed", extra={"error": repr(exc)})
        return "error"


async def _check_redis(redis: Redis) -> str:
    try:
        async with asyncio.timeout(1):
            await redis.ping()
        return "ok"
    except Exception:
        return "error"
