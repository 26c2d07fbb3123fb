"""What categories caches, and which cache scopes each write changes."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.common.app import Resources
from shopfleet.common.cached_reads import CachedRoute, int_value, text_value, warm
from shopfleet.common.database import invalidate_after_commit
from shopfleet.contracts import categories as contract
from shopfleet.contracts import products as products_contract

log = logging.getLogger("shopfleet.categories.cache")
LIST_SCOPE = contract.LIST_SCOPE
# Details are looked up by id or slug, so one generation covers them all: categories
# are few and change rarely.
DETAIL_SCOPE = contract.DETAIL_SCOPE
# Product lists filter by category slug, and products caches them.
PRODUCT_LIST_SCOPE = products_contract.LIST_SCOPE


def invalidate_category_caches(db: AsyncSession) -> None:
    """Category lists and details, and product lists, are stale once `db` commits."""
    invalidate_after_commit(db, LIST_SCOPE, DETAIL_SCOPE, PRODUCT_LIST_SCOPE)


# What GET /v1/categories reads (categories/api.py); the detail reads no parameter.
LIST_QUERY = {"page": int_value, "limit": int_value, "parentId": text_value}

CACHED_ROUTES = [
    CachedRoute(
        pattern=re.compile(r"/v1/categories"),
        template="/v1/categories",
        scope=lambda match: LIST_SCOPE,
        key=lambda match, query: f"categories:list:{query}",
        ttl=lambda settings: settings.cache_list_ttl,
        query=LIST_QUERY,
    ),
    CachedRoute(
        pattern=re.compile(r"/v1/categories/(?P<ref>[^/]+)"),
        template="/v1/categories/{id_or_slug}",
        scope=lambda match: DETAIL_SCOPE,
        key=lambda match, query: (
            f"categories:detail:{match['ref']}" + (f"?{query}" if query else "")
        ),
        ttl=lambda settings: settings.cache_detail_ttl,
    ),
]


async def warm_category_cache(app: FastAPI, resources: Resources) -> None:
    """Cache the first page of categories before reporting ready."""
    if resources.cache is not None:
        log.info("cache warmed", extra={"entries": await warm(app, ["/v1/categories"])})
