"""A products instance with one extra route, for side-by-side benchmarks on one process.

`/v1/bench/hello` returns ~1 KB of JSON through FastAPI's ordinary path, behind the very
middleware stack (request id, metrics, access log, rate limit, gzip) the product routes use.
Run: python bench/hello_app.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

from shopfleet.bench.payload import PAYLOAD
from shopfleet.common.logging import configure_logging
from shopfleet.common.settings import Settings
from shopfleet.products.app import create_app
from shopfleet.server import run


def main() -> None:
    settings = Settings(service="products", instance="products-bench")
    app = create_app(settings)

    @app.get("/v1/bench/hello")
    async def hello() -> dict[str, Any]:
        return PAYLOAD

    configure_logging(service="products", instance=settings.instance_name, level="WARNING")
    run(app, host="127.0.0.1", port=int(sys.argv[1]), shutdown_timeout=5)


if __name__ == "__main__":
    main()
