"""A products instance with one extra route, for side-by-side benchmarks on one process.

`/v1/bench/hello` returns ~1 KB of JSON through FastAPI's ordinary path, behind the very
middleware stack (request id, metrics, access log, rate limit, gzip) the product routes use.
Run: python bench/hello_app.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

from shopfleet.common.logging import configure_logging
from shopfleet.common.settings import Settings
from shopfleet.products.app import create_app
from shopfleet.server import run

HELLO: dict[str, Any] = {
    "id": "00000000-0000-4000-8000-000000000000",
    "sku": "BENCH-0001",
    "name": "A benchmark payload shaped like a product",
    "description": "x" * 700,
    "price": 19.99,
    "currency": "USD",
    "categoryId": "00000000-0000-4000-8000-000000000001",
    "stock": 10,
    "inStock": True,
    "image": None,
    "createdAt": "2026-01-01T00:00:00Z",
    "updatedAt": "2026-01-01T00:00:00Z",
}


def main() -> None:
    settings = Settings(service="products", instance="products-bench")
    app = create_app(settings)

    @app.get("/v1/bench/hello")
    async def hello() -> dict[str, Any]:
        return HELLO

    configure_logging(service="products", instance=settings.instance_name, level="WARNING")
    run(app, host="127.0.0.1", port=int(sys.argv[1]), shutdown_timeout=5)


if __name__ == "__main__":
    main()
