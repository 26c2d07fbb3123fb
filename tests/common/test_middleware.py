"""Per-request bookkeeping: compression, time limit, unexpected errors, metrics, health."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from shopfleet.common.app import ServiceSpec, create_service_app
from shopfleet.common.database import SessionDep
from tests.support import base_settings

router = APIRouter()


@router.get("/v1/auth/big")
async def big() -> dict[str, str]:
    return {"data": "x" * 4096}


@router.get("/v1/auth/slow")
async def slow() -> dict[str, str]:
    await asyncio.sleep(5)
    return {}


@router.put("/v1/auth/db")
async def touch_database(db: SessionDep) -> dict[str, int]:
    return {"one": int((await db.execute(text("SELECT 1"))).scalar_one())}


@router.get("/v1/auth/boom")
async def boom() -> dict[str, str]:
    raise RuntimeError("SELECT secret FROM internals")


async def _client(tmp_path: Path, **overrides: Any) -> tuple[FastAPI, httpx.AsyncClient]:
    settings = base_settings("auth", "sqlite", tmp_path, **overrides)
    app = create_service_app(settings, ServiceSpec(name="auth", title="t", routers=[router]))
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_gzip_above_threshold_unless_opted_out(tmp_path: Path) -> None:
    app, client = await _client(tmp_path)
    async with app.router.lifespan_context(app), client:
        zipped = await client.get("/v1/auth/big", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.json()["data"] == "x" * 4096
        plain = await client.get(
            "/v1/auth/big", headers={"Accept-Encoding": "gzip", "x-no-compression": "1"}
        )
        assert "content-encoding" not in plain.headers
        small = await client.get("/health/live", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers


async def test_request_timeout_is_a_503_problem(tmp_path: Path) -> None:
    app, client = await _client(tmp_path, request_timeout=0.2)
    async with app.router.lifespan_context(app), client:
        response = await client.get("/v1/auth/slow")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"


async def test_unexpected_error_is_a_bare_500(tmp_path: Path) -> None:
    app, client = await _client(tmp_path)
    async with app.router.lifespan_context(app), client:
        response = await client.get("/v1/auth/boom")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "SELECT" not in response.text and "Traceback" not in response.text
        assert response.headers["x-request-id"]


async def test_health_ready_metrics_and_docs(tmp_path: Path) -> None:
    app, client = await _client(tmp_path)
    async with app.router.lifespan_context(app), client:
        health = await client.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "ok" and body["checks"] == {"database": "ok"}
        assert body["service"] == "auth" and body["instance"] == "auth-1" and body["version"]
        assert (await client.get("/health/ready")).status_code == 200
        await client.get("/v1/auth/big")
        metrics = (await client.get("/metrics")).text
        assert 'http_requests_total{method="GET",route="/v1/auth/big",status="200"} 1.0' in metrics
        assert "http_request_duration_seconds_bucket" in metrics
        assert "http_requests_in_flight" in metrics
        redirect = await client.get("/docs")
        assert redirect.status_code == 308 and redirect.headers["location"] == "docs/"
        docs = await client.get("/docs/")
        assert docs.status_code == 200 and "openapi.json" in docs.text
        # Swagger UI comes from the instance itself, never from a CDN.
        assert '"assets/swagger-ui-bundle.js"' in docs.text and "https://" not in docs.text
        bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
        assert (await client.get("/docs/assets/index.html")).status_code == 404
        assert (await client.get("/docs/openapi.json")).json()["paths"]
        schema = (await client.get("/openapi.json")).json()
        assert "Problem" in schema["components"]["schemas"]
        app.state.resources.draining = True
        assert (await client.get("/health/ready")).status_code == 503
        assert (await client.get("/health")).status_code == 503
        assert (await client.get("/health/live")).status_code == 200


async def test_health_reports_a_dead_redis(tmp_path: Path) -> None:
    from tests.support import free_port

    app, client = await _client(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with app.router.lifespan_context(app), client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"] == {"database": "ok", "redis": "error"}


async def test_database_unavailable_is_a_503_problem(tmp_path: Path) -> None:
    # A PostgreSQL URL nothing listens on: the request's session cannot connect.
    from tests.support import free_port

    url = f"postgresql+asyncpg://root@127.0.0.1:{free_port()}/none"
    app, client = await _client(tmp_path, database_url=url, database_pool_timeout=0.5)
    async with app.router.lifespan_context(app), client:
        response = await client.put("/v1/auth/db")
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
