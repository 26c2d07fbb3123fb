"""What products caches, and which cache scopes each write changes."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Scope

from shopfleet.common.app import Resources
from shopfleet.common.cache import ResponseCache
from shopfleet.common.cached_reads import (
    CachedRoute,
    bool_value,
    decimal_value,
    int_value,
    set_value,
    text_value,
    warm,
)
from shopfleet.common.database import invalidate_after_commit
from shopfleet.common.errors import Unprocessable, is_connection_failure
from shopfleet.common.schemas import plain_paging
from shopfleet.contracts import products as contract
from shopfleet.products import reads
from shopfleet.products.listing import ALL_FIELDS, ProductListQuery, decode_cursor
from shopfleet.products.models import Product

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
    scopes = [LIST_SCOPE, *(detail_scope(i) for i in product_ids)]
    invalidate_after_commit(db, *scopes, *([TOTALS_SCOPE] if totals else []))


async def cached_total(
    cache: ResponseCache | None,
    *,
    query: ProductListQuery,
    category_id: uuid.UUID | None,
    ttl: int,
    count: Callable[[], Awaitable[int]],
) -> int:
    """A filter's exact total, counted once per cache generation.

    Filters on stock (`inStock`) live under the lists' generation, which every stock
    change bumps; the others under TOTALS_SCOPE. A total is never older than the last
    write that could change it, so it serves admins' `no-cache` reads too.
    """
    if cache is None:
        return await count()

    async def load() -> bytes:
        return str(await count()).encode()

    scope = LIST_SCOPE if query.in_stock is not None else TOTALS_SCOPE
    result = await cache.get_or_load(
        scope=scope, key=reads.total_key(query, category_id), ttl=ttl, load=load
    )
    return int(result.body)


async def list_page(
    resources: Resources, *, query: ProductListQuery, category_id: uuid.UUID | None
) -> bytes:
    """A page of the catalog as JSON, its total counted once per cache generation."""

    def total(count: Callable[[], Awaitable[int]]) -> Awaitable[int]:
        return cached_total(
            resources.cache,
            query=query,
            category_id=category_id,
            ttl=resources.settings.cache_list_ttl,
            count=count,
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


def _plain_list_query(query_string: bytes) -> ProductListQuery | None:
    """The catalog in its default order with nothing but `page` and `limit`, or `limit`
    and a `cursor` of that order (the storefront's pages and its endless scroll), as
    the endpoint reads them; None for any other query, which the endpoint reads."""
    parts = query_string.split(b"&") if query_string else []
    cursors = [part[len(b"cursor=") :] for part in parts if part.startswith(b"cursor=")]
    paging = plain_paging(b"&".join(part for part in parts if not part.startswith(b"cursor=")))
    if paging is None or len(cursors) > 1:
        return None
    if not cursors:
        return ProductListQuery(paging=paging)
    cursor = cursors[0]
    if paging.page != 1 or not _PLAIN_CURSOR.fullmatch(cursor):
        return None
    try:
        after = decode_cursor(ProductListQuery.sort, cursor.decode())
    except Unprocessable:
        return None
    return ProductListQuery(paging=paging, after=after)


async def _direct_list(scope: Scope, _: re.Match[str]) -> bytes | None:
    """GET /v1/products in its plainest forms (_plain_list_query): what the endpoint
    (api.list_products) answers, without FastAPI."""
    query = _plain_list_query(scope["query_string"])
    if query is None:
        return None
    resources: Resources = scope["app"].state.resources
    return await list_page(resources, query=query, category_id=None)


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
