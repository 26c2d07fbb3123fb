"""The `floor` scenario's server: a bare FastAPI endpoint returning the bench payload.

No middleware, no database, no Redis: FastAPI's ordinary path (a dict validated and
serialised by FastAPI) on the same uvicorn settings as every instance, one worker, and
with FastAPI's native telemetry off as in every instance.
Run: python -m shopfleet.bench.floor_app PORT
"""

from __future__ import annotations

import sys
from typing import Any

from fastapi import FastAPI

from shopfleet.bench.payload import PAYLOAD
from shopfleet.common.app import NO_NATIVE_TELEMETRY
from shopfleet.server import run


def create_floor_app() -> FastAPI:
    # The instances' FastAPI settings that cost per request (NO_NATIVE_TELEMETRY), nothing else.
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, telemetry=NO_NATIVE_TELEMETRY)

    @app.get("/bench/floor")
    async def floor() -> dict[str, Any]:
        return PAYLOAD

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def main() -> None:
    run(create_floor_app(), host="127.0.0.1", port=int(sys.argv[1]), shutdown_timeout=5)


if __name__ == "__main__":
    main()
