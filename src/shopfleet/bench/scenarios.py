"""What each scenario sends, what it expects back, and what it measures."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

import orjson

from shopfleet.bench.fixtures import BenchData
from shopfleet.bench.wrk import Request
from shopfleet.seed import DEMO_PASSWORD

# Distinct request lines per scenario file: wrk picks one at random for every request.
POOL = 20_000
NO_CACHE = "Cache-Control: no-cache"
ADDRESS = {"line1": "1 Bench Street", "city": "Loadville", "postalCode": "10001", "country": "US"}
SORTS = ("createdAt", "-createdAt", "price", "-price", "name", "-name")
# argon2id at its production cost takes ~160 ms of CPU per login here, so more connections
# than this only queue: latency grows with the queue and wrk's 10 s timeout would fire.
LOGIN_CONNECTIONS = 16


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: Callable[[BenchData, random.Random], list[Request]]
    expected: tuple[int, ...] = (200,)
    header: str = ""  # one extra request header, "Name: value"
    count_header: str = ""  # a response header whose values wrk counts
    services: tuple[str, ...] = ()  # whose instances' /metrics are read around the run
    max_connections: int | None = None
    # Seconds this scenario runs at least, even in a quick run: an argon2-bound login
    # completes nothing in 3 s on a busy 2-core machine (the queue alone takes longer).
    min_seconds: int = 0
    warmup: bool = True
    stock_check: str = ""  # "ample" or "scarce": verify no oversell after the run

    def connections(self, default: int) -> int:
        return min(default, self.max_connections or default)


def _get(path: str, token: str = "") -> Request:
    return Request("GET", path, token)


def _pick(items: list[str], rng: random.Random, count: int = POOL) -> list[str]:
    return [rng.choice(items) for _ in range(count)]


def _order(token: str, product_id: str, quantity: int) -> Request:
    body = {"items": [{"productId": product_id, "quantity": quantity}], "shippingAddress": ADDRESS}
    return Request("POST", "/v1/orders", token, orjson.dumps(body).decode())


def _filtered(data: BenchData, rng: random.Random) -> list[Request]:
    requests = []
    for _ in range(POOL // 4):
        low = Decimal(rng.randrange(0, 200))
        high = low + rng.randrange(20, 500)
        query = (
            f"category={rng.choice(data.category_ids)}&minPrice={low}&maxPrice={high}"
            f"&sort={rng.choice(SORTS)}&limit=20"
        )
        requests.append(_get(f"/v1/products?{query}", data.admin_token))
    return requests


def _login(data: BenchData, rng: random.Random) -> list[Request]:
    bodies = [
        orjson.dumps({"email": email, "password": DEMO_PASSWORD}).decode()
        for email in data.customer_emails
    ]
    return [Request("POST", "/v1/auth/login", "", body) for body in bodies]


CEILING = Scenario(
    "ceiling",
    "nginx alone returns a static ~1 KB JSON: the machine's upper bound in this run",
    lambda data, rng: [_get("/bench/ceiling")],
)
FLOOR = Scenario(
    "floor",
    "a bare FastAPI endpoint (one uvicorn worker) returns the same JSON behind the gateway",
    lambda data, rng: [_get("/bench/floor")],
)
PRODUCT_ANON = Scenario(
    "product-anon",
    "anonymous product detail of a popular product: the gateway's micro-cache",
    lambda data, rng: [_get(f"/v1/products/{i}") for i in data.hot_ids],
    count_header="X-Cache-Status",
    services=("products",),
)
PRODUCT_CACHED = Scenario(
    "product-cached",
    "signed-in product detail of a popular product (bypasses the micro-cache): "
    "the service's Redis cache",
    lambda data, rng: [
        _get(f"/v1/products/{product_id}", rng.choice(data.customer_tokens))
        for product_id in _pick(data.hot_ids, rng)
    ],
    services=("products",),
)
PRODUCT_DB = Scenario(
    "product-db",
    "product detail of any product, caches bypassed (admin, Cache-Control: no-cache): "
    "PostgreSQL by primary key",
    lambda data, rng: [_get(f"/v1/products/{i}", data.admin_token) for i in data.sampled_ids],
    header=NO_CACHE,
    services=("products",),
)
LIST_PAGE1 = Scenario(
    "list-page1",
    "the catalog's first page (20, newest first, with its total), caches bypassed",
    lambda data, rng: [_get("/v1/products?limit=20", data.admin_token)],
    header=NO_CACHE,
    services=("products",),
)
LIST_FILTERED = Scenario(
    "list-filtered",
    "first page of a random category, price range and sort, caches bypassed",
    _filtered,
    header=NO_CACHE,
    services=("products",),
)
LIST_DEEP = Scenario(
    "list-deep",
    "a page 80-99 % into the catalog by keyset cursor (newest first), caches bypassed",
    lambda data, rng: [
        _get(f"/v1/products?limit=20&cursor={cursor}", data.admin_token)
        for cursor in data.deep_cursors
    ],
    header=NO_CACHE,
    services=("products",),
)
LOGIN = Scenario(
    "login",
    f"customers sign in (argon2id at production cost; {LOGIN_CONNECTIONS} connections at most)",
    _login,
    services=("auth",),
    max_connections=LOGIN_CONNECTIONS,
    min_seconds=10,
)
ORDER_CREATE = Scenario(
    "order-create",
    "signed-in customers order 1-3 of a random product with ample stock",
    lambda data, rng: [
        _order(rng.choice(data.customer_tokens), product_id, rng.randint(1, 3))
        for product_id in _pick(data.ample_ids, rng)
    ],
    expected=(201,),
    services=("orders", "products"),
    stock_check="ample",
)
ORDER_STOCKOUT = Scenario(
    "order-stockout",
    "customers race for a few products with little stock: 409 is the expected answer "
    "once it is gone",
    lambda data, rng: [
        _order(rng.choice(data.customer_tokens), product_id, 1)
        for product_id in _pick(data.scarce_ids, rng)
    ],
    expected=(201, 409),
    services=("orders", "products"),
    warmup=False,  # the stock is the point: none of it goes to a warm-up
    stock_check="scarce",
)

MAIN = (
    CEILING,
    FLOOR,
    PRODUCT_ANON,
    PRODUCT_CACHED,
    PRODUCT_DB,
    LIST_PAGE1,
    LIST_FILTERED,
    LIST_DEEP,
    LOGIN,
    ORDER_CREATE,
    ORDER_STOCKOUT,
)
SCALED = (PRODUCT_CACHED, PRODUCT_DB)
SCALE_COUNTS = (1, 2, 3)


def scaled(scenario: Scenario, instances: int) -> Scenario:
    """The scenario run again with `instances` products instances."""
    return replace(
        scenario,
        name=f"{scenario.name}@{instances}",
        description=f"{scenario.name} with {instances} products instance(s)",
    )
