"""Products and categories behind the shared Redis cache: never stale after a write."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shopfleet.categories import caching as category_caching
from shopfleet.common.app import Resources
from shopfleet.products import api as product_api
from shopfleet.products import caching as product_caching
from shopfleet.products import listing as product_listing
from shopfleet.products import reads as product_reads
from shopfleet.products.schemas import PRODUCT_FIELDS
from shopfleet.services import app_factory
from tests.orders.conftest import Shop, open_shop
from tests.support import REDIS_URL, base_settings, redis_round_trips, sent_statements


@pytest.fixture
async def cached_shop(make_platform: Any, redis_prefix: str) -> AsyncIterator[Shop]:
    # Every service shares one Redis namespace, as instances of one deployment do.
    redis = {"redis_url": REDIS_URL, "redis_key_prefix": redis_prefix}
    overrides = {name: redis for name in ("categories", "products", "orders")}
    async with open_shop(make_platform, **overrides) as shop:
        yield shop


async def _another_category(shop: Shop) -> str:
    """A second category's id, beside the shop's own."""
    other = await shop.client.post(
        "/v1/categories", json={"name": f"Other {uuid.uuid4().hex[:6]}"}, headers=shop.admin
    )
    assert other.status_code == 201, other.text
    category_id: str = other.json()["id"]
    return category_id


async def _get(shop: Shop, path: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
    response = await shop.client.get(path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json(), response.headers.get("x-cache", "")


async def test_miss_then_hit_with_a_normalised_key(cached_shop: Shop) -> None:
    await cached_shop.product()
    first = await cached_shop.client.get("/v1/products?page=1&limit=10")
    second = await cached_shop.client.get("/v1/products?limit=10&page=1")
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.headers["x-cache-key"] == "products:list:limit=10&page=1"
    assert first.content == second.content
    assert second.headers["ratelimit-limit"]


async def _cache_entries(shop: Shop) -> set[bytes]:
    """Every cache key in this test's namespace but the short-lived single-flight locks."""
    prefix = shop.platform.settings["products"].redis_key_prefix
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = {key async for key in redis.scan_iter(match=f"{prefix}*")}
    finally:
        await redis.aclose()
    return {key for key in keys if not key.startswith(f"{prefix}lock:".encode())}


async def test_unknown_query_parameters_never_create_cache_entries(cached_shop: Shop) -> None:
    product = await cached_shop.product()
    paths = ["/v1/products?limit=5", f"/v1/products/{product}", "/v1/categories?limit=5"]
    for path in paths:
        await _get(cached_shop, path)
    before = await _cache_entries(cached_shop)
    for i in range(30):
        for path in paths:
            junk = f"junk{i}={uuid.uuid4().hex}&utm_source=x{i}"
            sep = "&" if "?" in path else "?"
            _, cache = await _get(cached_shop, f"{path}{sep}{junk}")
            assert cache == "HIT", path
    # Spellings of one value share its entry too.
    assert (await _get(cached_shop, "/v1/products?limit=05&limit=5"))[1] == "HIT"
    assert await _cache_entries(cached_shop) == before


def test_cached_routes_name_exactly_the_query_parameters_their_endpoints_read() -> None:
    for service, caching in (("products", product_caching), ("categories", category_caching)):
        app = app_factory(service)(base_settings(service, "sqlite", Path("unused")))
        paths = app.openapi()["paths"]
        for cached in caching.CACHED_ROUTES:
            parameters = paths[cached.template]["get"].get("parameters", [])
            read = {param["name"] for param in parameters if param["in"] == "query"}
            assert set(cached.query) == read, cached.template


async def test_every_write_path_makes_the_next_read_fresh(cached_shop: Shop) -> None:
    shop = cached_shop
    product_id = await shop.product(price=10, stock=1)
    detail = f"/v1/products/{product_id}"
    await _get(shop, detail)
    assert (await _get(shop, detail))[1] == "HIT"
    await _get(shop, "/v1/products")

    # Update: price changes in the detail and in the list.
    await shop.client.patch(detail, json={"price": 12.5}, headers=shop.admin)
    body, cache = await _get(shop, detail)
    assert (body["price"], cache) == (12.5, "MISS")
    listing, cache = await _get(shop, "/v1/products")
    assert cache == "MISS" and listing["results"][0]["price"] == 12.5

    # An order takes the last unit: stock and inStock are fresh at once.
    customer = await shop.customer()
    order = await shop.order(customer, [(product_id, 1)])
    assert order.status_code == 201, order.text
    body, _ = await _get(shop, detail)
    assert (body["stock"], body["inStock"]) == (0, False)
    listing, _ = await _get(shop, "/v1/products?inStock=true")
    assert product_id not in [p["id"] for p in listing["results"]]

    # Cancelling gives the unit back, visibly.
    cancelled = await shop.client.post(f"/v1/orders/{order.json()['id']}/cancel", headers=customer)
    assert cancelled.status_code == 200, cancelled.text
    body, _ = await _get(shop, detail)
    assert (body["stock"], body["inStock"]) == (1, True)

    # A new product shows in the (cached) list at once.
    await _get(shop, "/v1/products")
    second = await shop.product()
    listing, cache = await _get(shop, "/v1/products")
    assert cache == "MISS" and second in [p["id"] for p in listing["results"]]

    # A category's new slug finds its products at once; the old slug finds none.
    category = f"/v1/categories/{shop.category_id}"
    old_slug = (await _get(shop, category))[0]["slug"]
    by_old, _ = await _get(shop, f"/v1/products?category={old_slug}")
    assert len(by_old["results"]) == 2
    await shop.client.patch(category, json={"slug": "renamed-widgets"}, headers=shop.admin)
    assert (await _get(shop, category))[0]["slug"] == "renamed-widgets"
    by_new, _ = await _get(shop, "/v1/products?category=renamed-widgets")
    assert len(by_new["results"]) == 2
    by_old, _ = await _get(shop, f"/v1/products?category={old_slug}")
    assert by_old["results"] == []

    # Delete: the detail is gone and the list no longer shows it.
    await shop.client.delete(detail, headers=shop.admin)
    assert (await shop.client.get(detail)).status_code == 404
    listing, _ = await _get(shop, "/v1/products")
    assert product_id not in [p["id"] for p in listing["results"]]


async def test_a_categorys_total_in_a_price_range_follows_every_write(cached_shop: Shop) -> None:
    """Counted from the category's prices held in memory (no count in the database),
    and exact right after a product is added, repriced, moved or deleted."""
    shop = cached_shop
    ids = [await shop.product(price=price) for price in (5, 10, 15, 20)]
    fresh = {**shop.admin, "Cache-Control": "no-cache"}

    async def total(low: float, high: float) -> int:
        query = f"?category={shop.category_id}&minPrice={low}&maxPrice={high}&sort=price"
        page, _ = await _get(shop, f"/v1/products{query}", headers=fresh)
        assert page["pagination"]["total"] == len(page["results"])
        return int(page["pagination"]["total"])

    assert await total(10, 15) == 2
    engine = shop.platform.apps["products"].state.resources.engine
    with sent_statements(engine) as sent:
        ranges = ((0, 100), (5, 5), (10.01, 14.99), (20.01, 30), (10, 15))
        assert [await total(low, high) for low, high in ranges] == [4, 1, 0, 0, 2]
    selects = [statement for statement, _ in sent if statement.lstrip().startswith("SELECT")]
    # Each page's own SELECT, nothing more; a range with no product sends nothing at all.
    assert len(selects) == 3, selects

    added = await shop.product(price=12)
    assert await total(10, 15) == 3
    moved = await shop.client.patch(f"/v1/products/{added}", json={"price": 30}, headers=shop.admin)
    assert moved.status_code == 200, moved.text
    assert (await total(10, 15), await total(25, 30)) == (2, 1)
    elsewhere = {"categoryId": await _another_category(shop)}
    moved = await shop.client.patch(f"/v1/products/{ids[1]}", json=elsewhere, headers=shop.admin)
    assert moved.status_code == 200, moved.text
    assert await total(10, 15) == 1
    deleted = await shop.client.delete(f"/v1/products/{ids[2]}", headers=shop.admin)
    assert deleted.status_code == 204
    assert (await total(10, 15), await total(0, 100)) == (0, 3)


async def test_a_sparse_price_range_reads_the_range_and_pages_as_the_walk_does(
    cached_shop: Shop,
) -> None:
    """Few products in the range: the page reads the range and sorts it (not a walk of the
    whole category); many: it walks the sort order's keys, then reads the page's rows. The
    pages are the same either way, and an empty range reads nothing."""
    shop = cached_shop
    made = []
    for price in range(1, 9):
        product_id = await shop.product(price=price)
        made.append((price, (await _get(shop, f"/v1/products/{product_id}"))[0]))
    fresh = {**shop.admin, "Cache-Control": "no-cache"}
    engine = shop.platform.apps["products"].state.resources.engine
    orders = {
        "-createdAt": lambda p: (p["createdAt"], p["id"]),
        "name": lambda p: (p["name"], p["id"]),
    }
    await _get(shop, f"/v1/products?category={shop.category_id}", headers=fresh)  # held
    # (low, high, limit, page): 2 of 8 match (the range), 8 of 8 on pages of 2 (the walk).
    for low, high, limit, page, narrow in ((2, 3, 20, 1, True), (1, 8, 2, 2, False)):
        for sort, key in orders.items():
            query = (
                f"?category={shop.category_id}&minPrice={low}&maxPrice={high}"
                f"&sort={sort}&limit={limit}&page={page}"
            )
            with sent_statements(engine) as sent:
                found, _ = await _get(shop, f"/v1/products{query}", headers=fresh)
            matching = [p for price, p in made if low <= price <= high]
            expected = sorted(matching, key=key, reverse=sort.startswith("-"))
            start = (page - 1) * limit
            assert [p["id"] for p in found["results"]] == [
                p["id"] for p in expected[start : start + limit]
            ], query
            assert found["pagination"]["total"] == len(matching)
            selects = [statement for statement, _ in sent if "SELECT" in statement]
            assert len(selects) == 1 and ("matching" in selects[0]) is narrow, selects
            # The walk judges prices in the index, then reads the page's rows by id.
            assert (" JOIN (SELECT products.id" in selects[0]) is not narrow, selects
    with sent_statements(engine) as sent:
        empty, _ = await _get(
            shop, f"/v1/products?category={shop.category_id}&minPrice=50", headers=fresh
        )
    assert empty["results"] == [] and empty["pagination"]["total"] == 0
    assert not [statement for statement, _ in sent if "SELECT" in statement]


async def test_an_uncached_first_page_reads_its_total_in_the_limiters_round_trip(
    cached_shop: Shop,
) -> None:
    """An admin's no-cache first page: the limiter's script reads the page's total too,
    so the page costs one Redis round trip; the total stays exact after a write. A
    cursor's page has no total to read."""
    shop = cached_shop
    for price in (5, 10, 15):
        await shop.product(price=price)
    fresh = {**shop.admin, "Cache-Control": "no-cache"}
    app = shop.platform.apps["products"]
    in_range = f"/v1/products?category={shop.category_id}&minPrice=6&maxPrice=20&sort=price&limit=2"
    pages = ("/v1/products?limit=2", "/v1/products?inStock=true&limit=2", in_range)
    for path in pages:
        await _get(shop, path, headers=fresh)  # counts and stores the total
        with redis_round_trips(app) as made:
            page, _ = await _get(shop, path, headers=fresh)
        assert made == {"rate_limit_cache_read": 1}, (path, made)
        assert page["pagination"]["total"] == (2 if path == in_range else 3), path

    await shop.product(price=12)
    for path in pages:
        page, _ = await _get(shop, path, headers=fresh)
        assert page["pagination"]["total"] == (3 if path == in_range else 4), path

    cursor = page["pagination"]["nextCursor"]
    assert cursor is not None
    with redis_round_trips(app) as made:
        await _get(shop, f"{in_range}&cursor={cursor}", headers=fresh)
    assert made == {"rate_limit": 1}, made


async def test_admin_may_insist_on_fresh_data(cached_shop: Shop) -> None:
    product_id = await cached_shop.product()
    path = f"/v1/products/{product_id}"
    await cached_shop.client.get(path)
    fresh = await cached_shop.client.get(
        path, headers={**cached_shop.admin, "Cache-Control": "no-cache"}
    )
    assert fresh.status_code == 200 and "x-cache" not in fresh.headers
    anonymous = await cached_shop.client.get(path, headers={"Cache-Control": "no-cache"})
    assert anonymous.headers["x-cache"] == "HIT"  # only admins may bypass


async def test_non_canonical_ids_are_not_cached(cached_shop: Shop) -> None:
    product_id = await cached_shop.product()
    upper = await cached_shop.client.get(f"/v1/products/{product_id.upper()}")
    assert "x-cache" not in upper.headers


def _redis_failures(resources: Resources) -> float:
    """Redis commands of an instance that failed so far (its own metric)."""
    counter = resources.metrics.redis_errors
    return sum(
        sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def test_concurrent_cold_reads_query_the_database_once(cached_shop: Shop) -> None:
    resources = cached_shop.platform.resources("products")
    # Single flight is a promise while Redis answers: a reply later than the timeout (a
    # busy machine) serves that request uncached, by design. Such a burst is tried again.
    for _ in range(3):
        product_id = await cached_shop.product()
        failures = _redis_failures(resources)
        with sent_statements(resources.engine) as sent:
            path = f"/v1/products/{product_id}?fields=name,price"
            responses = await asyncio.gather(*(cached_shop.client.get(path) for _ in range(50)))
        if _redis_failures(resources) == failures:
            break
    else:
        pytest.fail("Redis failed during every burst")
    selects = [
        statement
        for statement, _ in sent
        if statement.lstrip().upper().startswith("SELECT") and "products" in statement
    ]
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len(selects) == 1, selects


async def test_hot_keys_are_warm_before_ready(make_platform: Any, redis_prefix: str) -> None:
    redis = {"redis_url": REDIS_URL, "redis_key_prefix": redis_prefix}
    async with open_shop(make_platform, products=redis) as shop:
        product_id = await shop.product()  # nobody reads it through this instance
        # A second instance on the same data warms the first page and the newest products.
        platform = shop.platform
        app = app_factory("products")(platform.settings["products"], http_transport=platform.mesh)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://products-2"
            ) as client,
        ):
            detail = await client.get(f"/v1/products/{product_id}")
            listing = await client.get("/v1/products")
    assert detail.headers["x-cache"] == "HIT"
    assert listing.headers["x-cache"] == "HIT"
    assert product_id in [p["id"] for p in listing.json()["results"]]


async def test_a_cache_hit_says_nosniff(cached_shop: Shop) -> None:
    await _get(cached_shop, "/v1/categories")
    hit = await cached_shop.client.get("/v1/categories")
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["x-content-type-options"] == "nosniff"


class _CountingEndpoint:
    """Counts the requests FastAPI runs an endpoint for, by a dependency only it resolves."""

    def __init__(self, shop: Shop, dependency: Callable[..., Awaitable[Any]]) -> None:
        self.app = shop.platform.apps["products"]
        self.dependency = dependency
        self.calls = 0

        @functools.wraps(dependency)  # FastAPI reads the parameters of the wrapped one
        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await dependency(*args, **kwargs)

        self.app.dependency_overrides[dependency] = counting

    def restore(self) -> None:
        self.app.dependency_overrides.pop(self.dependency, None)


async def test_a_plain_detail_read_is_answered_directly_with_the_endpoints_bytes(
    cached_shop: Shop,
) -> None:
    product_id = await cached_shop.product(price=12.3, stock=3)
    fresh = {**cached_shop.admin, "Cache-Control": "no-cache"}
    endpoint = _CountingEndpoint(cached_shop, product_api._currency)
    try:
        direct = await cached_shop.client.get(f"/v1/products/{product_id}", headers=fresh)
        assert endpoint.calls == 0, "the plain read went through FastAPI"
        # The same read through the endpoint: every field named, so not the plain form.
        every_field = "id,sku,name,description,price,currency,categoryId,stock,inStock,image,createdAt,updatedAt"
        routed = await cached_shop.client.get(
            f"/v1/products/{product_id}?fields={every_field}", headers=fresh
        )
        assert endpoint.calls == 1
        assert direct.status_code == routed.status_code == 200
        assert direct.content == routed.content
        assert direct.headers["content-type"] == routed.headers["content-type"]
        assert direct.json()["price"] == 12.3 and direct.json()["stock"] == 3
        # A miss fills the cache from the direct read; the hit serves the same bytes.
        miss = await cached_shop.client.get(f"/v1/products/{product_id}")
        hit = await cached_shop.client.get(f"/v1/products/{product_id}")
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
        assert miss.content == hit.content == direct.content
        assert endpoint.calls == 1
        # No such product, another spelling of the id: the endpoint answers.
        missing = await cached_shop.client.get(f"/v1/products/{uuid.uuid4()}", headers=fresh)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        upper = await cached_shop.client.get(f"/v1/products/{product_id.upper()}", headers=fresh)
        assert upper.status_code == 200 and upper.content == direct.content
        assert endpoint.calls == 3
    finally:
        endpoint.restore()


async def test_a_failed_direct_read_is_answered_by_the_endpoint(
    cached_shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    product_id = await cached_shop.product()
    endpoint = _CountingEndpoint(cached_shop, product_api._currency)

    real = product_reads.product_detail_bytes
    failures: list[int] = []

    async def fails_once(*args: Any, **kwargs: Any) -> bytes | None:
        if not failures:  # the direct read; the endpoint's own read then succeeds
            failures.append(1)
            raise ConnectionRefusedError("the database is down")
        body: bytes | None = await real(*args, **kwargs)
        return body

    monkeypatch.setattr(product_reads, "product_detail_bytes", fails_once)
    try:
        response = await cached_shop.client.get(
            f"/v1/products/{product_id}", headers={**cached_shop.admin, "Cache-Control": "no-cache"}
        )
        assert response.status_code == 200 and response.json()["id"] == product_id
        assert failures == [1] and endpoint.calls == 1
        # Counted, so a direct answer that keeps failing is seen on /metrics.
        registry = cached_shop.platform.apps["products"].state.resources.metrics.registry
        fallbacks = registry.get_sample_value(
            "direct_answer_fallbacks_total", {"route": "/v1/products/{product_id}"}
        )
        assert fallbacks == 1
    finally:
        endpoint.restore()


async def _direct_like_the_endpoint(
    shop: Shop, endpoint: _CountingEndpoint, query: str, headers: dict[str, str]
) -> httpx.Response:
    """GET /v1/products`query`: answered without the endpoint, with the bytes the endpoint
    gives the same page (asked with a parameter the direct answer leaves to it)."""
    direct = await shop.client.get(f"/v1/products{query}", headers=headers)
    assert endpoint.calls == 0, f"{query}: went through FastAPI"
    sep = "&" if query else "?"
    every_field = ",".join(PRODUCT_FIELDS)  # the page unchanged, but read by FastAPI
    routed = await shop.client.get(f"/v1/products{query}{sep}fields={every_field}", headers=headers)
    assert endpoint.calls == 1
    endpoint.calls = 0
    assert direct.status_code == routed.status_code == 200
    assert direct.content == routed.content, query
    return direct


async def test_a_storefront_filter_is_answered_directly_with_the_endpoints_bytes(
    cached_shop: Shop,
) -> None:
    """A category by id, a price range, inStock and a sort (the storefront's browsing)
    skip FastAPI; any other spelling or value is the endpoint's, 422s included."""
    for price, stock in ((5.0, 0), (12.5, 3), (20, 1), (20.01, 4), (99.99, 2)):
        await cached_shop.product(price=price, stock=stock)
    created = await cached_shop.client.post(
        "/v1/products",
        json={
            "sku": "OTHER-1",
            "name": "Elsewhere",
            "price": 15,
            "categoryId": await _another_category(cached_shop),
            "stock": 0,
        },
        headers=cached_shop.admin,
    )
    assert created.status_code == 201, created.text
    category = cached_shop.category_id
    fresh = {**cached_shop.admin, "Cache-Control": "no-cache"}
    endpoint = _CountingEndpoint(cached_shop, product_listing._list_query)
    try:
        prices = {}
        for query in (
            f"?category={category}",
            f"?category={category}&minPrice=5.5&maxPrice=20&sort=price",
            f"?sort=-price&maxPrice=20.01&category={category}&inStock=true&limit=2",
            "?minPrice=15&sort=name&inStock=false",
            f"?category={uuid.uuid4()}&sort=-name",
            "?minPrice=0&maxPrice=99999999.99&page=2&limit=2",
        ):
            page = (await _direct_like_the_endpoint(cached_shop, endpoint, query, fresh)).json()
            prices[query] = ([p["price"] for p in page["results"]], page["pagination"]["total"])
        assert list(prices.values()) == [
            ([99.99, 20.01, 20.0, 12.5, 5.0], 5),
            ([12.5, 20.0], 2),
            ([20.01, 20.0], 3),
            ([15.0], 1),
            ([], 0),
            ([20.01, 20.0], 6),
        ]
        # The next page of a sorted, filtered walk by its cursor is direct too.
        first = f"?category={category}&sort=price&minPrice=10&limit=2"
        cursor = (await cached_shop.client.get(f"/v1/products{first}", headers=fresh)).json()[
            "pagination"
        ]["nextCursor"]
        endpoint.calls = 0
        walk = f"{first}&cursor={cursor}"
        page = (await _direct_like_the_endpoint(cached_shop, endpoint, walk, fresh)).json()
        assert [p["price"] for p in page["results"]] == [20.01, 99.99]
        # Spellings and values the direct answer leaves to the endpoint.
        upper = category.upper()
        for query, status in (
            (f"?category={upper}", 200),
            (f"?category={category}&category={category}", 200),
            ("?category=no-such-slug", 200),
            ("?minPrice=%31", 200),
            ("?inStock=1", 200),
            ("?q=Product", 200),
            ("?minPrice=1.234", 422),
            ("?minPrice=-1", 422),
            ("?minPrice=100000000", 422),
            ("?minPrice=20&maxPrice=5", 422),
            ("?sort=cheapest", 422),
            ("?inStock=maybe", 422),
            (f"?sort=name&cursor={cursor}", 422),
        ):
            endpoint.calls = 0
            response = await cached_shop.client.get(f"/v1/products{query}", headers=fresh)
            assert response.status_code == status, (query, response.text)
            if status == 200:  # a 422 never comes from the direct answer
                assert endpoint.calls == 1, query
    finally:
        endpoint.restore()


async def test_a_plain_list_page_is_answered_directly_with_the_endpoints_bytes(
    cached_shop: Shop,
) -> None:
    for _ in range(3):
        await cached_shop.product()
    fresh = {**cached_shop.admin, "Cache-Control": "no-cache"}
    endpoint = _CountingEndpoint(cached_shop, product_listing._list_query)
    try:
        for query in ("", "?limit=2", "?limit=2&page=2", "?page=1&limit=20"):
            await _direct_like_the_endpoint(cached_shop, endpoint, query, fresh)
        page = (await cached_shop.client.get("/v1/products?limit=2", headers=fresh)).json()
        assert len(page["results"]) == 2 and page["pagination"]["total"] == 3
        # The next page by its cursor (endless scroll) is answered directly too.
        cursor = page["pagination"]["nextCursor"]
        for query in (f"?limit=2&cursor={cursor}", f"?cursor={cursor}&limit=2&page=1"):
            direct = await _direct_like_the_endpoint(cached_shop, endpoint, query, fresh)
            assert [p["id"] for p in direct.json()["results"]] == [
                p["id"]
                for p in (await cached_shop.client.get("/v1/products", headers=fresh)).json()[
                    "results"
                ][2:]
            ]
        # A cursor percent-encoded, of another sort order, broken, or beside page=2: the
        # endpoint's (its own answer, or its 422).
        encoded = "".join(f"%{ord(c):02X}" for c in cursor)
        for query, status in (
            (f"?limit=2&cursor={encoded}", 200),
            (f"?cursor={cursor}&page=2", 422),
            ("?cursor=not-a-cursor", 422),
            (f"?cursor={cursor}&cursor={cursor}", 200),
        ):
            response = await cached_shop.client.get(f"/v1/products{query}", headers=fresh)
            assert response.status_code == status, (query, response.text)
        # Spellings and values the direct answer does not take are the endpoint's.
        for query, status in (
            ("?limit=07", 200),
            ("?limit=2&limit=3", 200),
            ("?limit=0", 422),
            ("?limit=101", 422),
            ("?page=1000001", 422),
            ("?limit=abc", 422),
            ("?limit=", 422),
        ):
            before = endpoint.calls
            response = await cached_shop.client.get(f"/v1/products{query}", headers=fresh)
            assert response.status_code == status, (query, response.text)
            if status == 200:  # a 422 is FastAPI's before the endpoint's dependency runs
                assert endpoint.calls == before + 1, query
    finally:
        endpoint.restore()
