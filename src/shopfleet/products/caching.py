"""What products caches, and which cache scopes each write changes."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable
from decimal import Decimal
from typing import cast

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Scope

from shopfleet.common.app import Resources
from shopfleet.common.cache import Found
from shopfleet.common.cached_reads import (
    CachedRoute,
    bool_value,
    decimal_value,
    int_value,
    set_value,
    side_read_found,
    text_value,
    warm,
)
from shopfleet.common.database import invalidate_after_commit
from shopfleet.common.errors import Unprocessable, is_connection_failure
from shopfleet.common.schemas import plain_paging
from shopfleet.contracts import products as contract
from shopfleet.products import reads
from shopfleet.products.listing import (
    ALL_FIELDS,
    SORT_ORDERS,
    ProductListQuery,
    SortOrder,
    decode_cursor,
)
from shopfleet.products.models import Product
from shopfleet.products.schemas import price_to_cents
from shopfleet.products.totals import PriceCounts

log = logging.getLogger("shopfleet.products.cache")
LIST_SCOPE = contract.LIST_SCOPE
TOTALS_SCOPE = contract.TOTALS_SCOPE  # see contracts.products


def detail_scope(product_id: uuid.UUID | str) -> str:
    return f"products:detail:{product_id}"


def invalidate_product_caches(
    db: AsyncSession, *product_ids: uuid.UUID, totals: bool = False
) -> None:
    """Every list, and the details of these products, are stale once `db` commits.

    `totals`: the write may change which products a filter matches (not only stock).
    """
    invalidate_after_commit(db, *product_cache_scopes(*product_ids, totals=totals))


def product_cache_scopes(*product_ids: uuid.UUID, totals: bool = False) -> list[str]:
    """The cache scopes a write to these products makes stale (see above)."""
    scopes = [LIST_SCOPE, *(detail_scope(i) for i in product_ids)]
    return sorted([*scopes, *([TOTALS_SCOPE] if totals else [])])


async def cached_total(
    resources: Resources,
    *,
    query: ProductListQuery,
    category_id: uuid.UUID | None,
    count: reads.Count,
    prices: reads.CategoryPrices | None,
    known: Found | None = None,
) -> reads.Total:
    """A filter's exact total, counted once per cache generation.

    Filters on stock (`inStock`) live under the lists' generation, which every stock
    change bumps; the others under TOTALS_SCOPE. A total is never older than the last
    write that could change it, so it serves admins' `no-cache` reads too. A category,
    perhaps within a price range, is counted from the category's prices held in memory
    under the same generation (totals.py), whatever the range.

    `known`: the total's cache entry already read (in the limiter's round trip).
    """
    cache = resources.cache
    if cache is None:
        return reads.Total(await count())
    scope, key = total_entry(query, category_id)
    generation, body = known if known is not None else await cache.read(scope, key)
    if (
        body is None
        and generation
        and prices is not None
        and query.in_stock is None
        and not query.name_contains
    ):
        tally = await resources.state(PriceCounts).count(
            category_id, generation, query.min_price_cents, query.max_price_cents, prices
        )
        if tally is not None:
            return reads.Total(*tally)

    async def load() -> bytes:
        return str(await count()).encode()

    result = await cache.get_or_load(
        scope=scope,
        key=key,
        ttl=resources.settings.cache_list_ttl,
        load=load,
        known=(generation, body),
    )
    return reads.Total(int(result.body))


def total_entry(query: ProductListQuery, category_id: uuid.UUID | None) -> tuple[str, str]:
    """The cache scope and key of a filter's total (see cached_total)."""
    scope = LIST_SCOPE if query.in_stock is not None else TOTALS_SCOPE
    return scope, reads.total_key(query, category_id)


async def list_page(
    resources: Resources,
    *,
    query: ProductListQuery,
    category_id: uuid.UUID | None,
    known_total: Found | None = None,
) -> bytes:
    """A page of the catalog as JSON, its total counted once per cache generation.

    `known_total`: the total's cache entry already read (cached_total's `known`).
    """

    def total(count: reads.Count, prices: reads.CategoryPrices | None) -> Awaitable[reads.Total]:
        return cached_total(
            resources,
            query=query,
            category_id=category_id,
            count=count,
            prices=prices,
            known=known_total,
        )

    return await reads.list_page_bytes(
        resources.engine,
        query=query,
        category_id=category_id,
        currency=resources.settings.currency,
        cached_total=total,
    )


# An unpadded URL-safe base64 token as encode_cursor makes it, not percent-encoded.
_PLAIN_CURSOR = re.compile(rb"[A-Za-z0-9_-]{1,1000}")
# A category by its canonical id; a price with at most two decimals, never over MAX_PRICE.
_CANONICAL_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PLAIN_PRICE = re.compile(rb"[0-9]{1,8}(?:\.[0-9]{1,2})?")
_SORTS: dict[bytes, SortOrder] = {order.encode(): cast(SortOrder, order) for order in SORT_ORDERS}
_BOOLS = {b"true": True, b"false": False}
_PAGING = (b"page", b"limit")
_FILTERS = (b"category", b"minPrice", b"maxPrice", b"inStock", b"sort", b"cursor")


class _NotPlain(Exception):
    """A query the direct answer leaves to the endpoint, which reads and answers it."""


def _plain(value: bytes | None, pattern: re.Pattern[bytes]) -> str | None:
    if value is None:
        return None
    if not pattern.fullmatch(value):
        raise _NotPlain
    return value.decode()


def _plain_price(value: bytes | None) -> int | None:
    text = _plain(value, _PLAIN_PRICE)
    return None if text is None else price_to_cents(Decimal(text))


def _plain_list_query(query_string: bytes) -> tuple[ProductListQuery, uuid.UUID | None] | None:
    """The storefront's listings as the endpoint reads them: `page` and `limit`, a
    category by its canonical id, a price range, `inStock`, a sort order and its cursor,
    each at most once and spelled plainly; with the category's id. None for any other
    query (a slug, `q`, `fields`, an encoded or invalid value), left to the endpoint."""
    given: dict[bytes, bytes] = {}
    paging_parts = []
    for part in query_string.split(b"&") if query_string else ():
        name, _, value = part.partition(b"=")
        if name in _PAGING:
            paging_parts.append(part)
        elif name not in _FILTERS or name in given:
            return None
        else:
            given[name] = value
    paging = plain_paging(b"&".join(paging_parts))
    sort = _SORTS.get(given.get(b"sort", b"-createdAt"))
    in_stock = given.get(b"inStock")
    if paging is None or sort is None or (in_stock is not None and in_stock not in _BOOLS):
        return None
    try:
        category = _plain(given.get(b"category"), _CANONICAL_ID)
        low, high = _plain_price(given.get(b"minPrice")), _plain_price(given.get(b"maxPrice"))
        cursor = _plain(given.get(b"cursor"), _PLAIN_CURSOR)
    except _NotPlain:
        return None
    if (low is not None and high is not None and low > high) or (
        cursor is not None and paging.page != 1
    ):
        return None  # the endpoint's 422
    try:
        after = None if cursor is None else decode_cursor(sort, cursor)
    except Unprocessable:
        return None
    query = ProductListQuery(
        paging=paging,
        category=category,
        in_stock=None if in_stock is None else _BOOLS[in_stock],
        min_price_cents=low,
        max_price_cents=high,
        sort=sort,
        after=after,
    )
    return query, None if category is None else uuid.UUID(category)


_LIST_QUERY_KEY = "shopfleet.products.list_query"


def _list_query_of(scope: Scope) -> tuple[ProductListQuery, uuid.UUID | None] | None:
    """_plain_list_query of the request, read once (the limiter may ask first)."""
    if _LIST_QUERY_KEY not in scope:
        scope[_LIST_QUERY_KEY] = _plain_list_query(scope["query_string"])
    found: tuple[ProductListQuery, uuid.UUID | None] | None = scope[_LIST_QUERY_KEY]
    return found


def _list_total_entry(scope: Scope, _: re.Match[str]) -> tuple[str, str] | None:
    """The total a direct first page will read (a cursor's page reads none)."""
    found = _list_query_of(scope)
    if found is None or found[0].after is not None:
        return None
    return total_entry(*found)


async def _direct_list(scope: Scope, _: re.Match[str]) -> bytes | None:
    """GET /v1/products in the storefront's forms (_plain_list_query): what the endpoint
    (api.list_products) answers, without FastAPI."""
    found = _list_query_of(scope)
    if found is None:
        return None
    query, category_id = found
    resources: Resources = scope["app"].state.resources
    return await list_page(
        resources, query=query, category_id=category_id, known_total=side_read_found(scope)
    )


def _canonical_id(match: re.Match[str]) -> str | None:
    # Only the canonical form is cached: writes invalidate by the canonical id.
    try:
        return str(uuid.UUID(match["id"]))
    except ValueError:
        return None


def _detail_key(match: re.Match[str], query: str) -> str | None:
    product_id = _canonical_id(match)
    if product_id is None or match["id"] != product_id:
        return None
    return f"products:detail:{product_id}" + (f"?{query}" if query else "")


async def _direct_detail(scope: Scope, match: re.Match[str]) -> bytes | None:
    """GET /v1/products/{id} by its canonical id with no query: the same SELECT and bytes
    as the endpoint (api.get_product), without FastAPI. Anything else (fields, another
    spelling of the id, no such product) goes to the endpoint, which answers it."""
    if scope["query_string"]:
        return None
    product_id = _canonical_id(match)
    if product_id is None or match["id"] != product_id:
        return None
    resources: Resources = scope["app"].state.resources
    return await reads.product_detail_bytes(
        resources.engine,
        product_id=uuid.UUID(product_id),
        fields=ALL_FIELDS,
        currency=resources.settings.currency,
    )


# What GET /v1/products reads (products/listing.py); tests/products/test_cache.py checks
# the two agree.
LIST_QUERY = {
    "page": int_value,
    "limit": int_value,
    "category": text_value,
    "inStock": bool_value,
    "minPrice": decimal_value,
    "maxPrice": decimal_value,
    "q": text_value,
    "sort": text_value,
    "fields": set_value,
    "cursor": text_value,
}
DETAIL_QUERY = {"fields": set_value}

CACHED_ROUTES = [
    CachedRoute(
        pattern=re.compile(r"/v1/products"),
        template="/v1/products",
        scope=lambda match: LIST_SCOPE,
        key=lambda match, query: f"products:list:{query}",
        ttl=lambda settings: settings.cache_list_ttl,
        query=LIST_QUERY,
        direct=_direct_list,
        side=_list_total_entry,
    ),
    CachedRoute(
        pattern=re.compile(r"/v1/products/(?P<id>[^/]+)"),
        template="/v1/products/{product_id}",
        scope=lambda match: detail_scope(match["id"]),
        key=_detail_key,
        ttl=lambda settings: settings.cache_detail_ttl,
        query=DETAIL_QUERY,
        direct=_direct_detail,
    ),
]


async def warm_product_cache(app: FastAPI, resources: Resources) -> None:
    """Cache the first list page and the most recent products before reporting ready."""
    if resources.cache is None:
        return
    try:
        async with resources.sessionmaker() as db:
            recent = await db.scalars(
                select(Product.id)
                .order_by(Product.created_at.desc(), Product.id.desc())
                .limit(resources.settings.cache_warm_recent)
            )
            paths = ["/v1/products", *(f"/v1/products/{product_id}" for product_id in recent)]
    except Exception as exc:
        if not is_connection_failure(exc):
            raise
        # A full or restarting database must not stop the instance: it starts cold and
        # stays out of rotation (/health/ready) until it can get a connection.
        log.warning("cache not warmed: database unavailable", extra={"error": repr(exc)})
        return
    warmed = await warm(app, paths)
    log.info("cache warmed", extra={"entries": warmed})
