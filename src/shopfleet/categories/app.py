"""The categories service: the category tree."""

from __future__ import annotations

from typing import Unpack

from fastapi import FastAPI

from shopfleet.categories.api import internal, router
from shopfleet.categories.caching import CACHED_ROUTES, warm_category_cache
from shopfleet.categories.products_client import ProductsClient
from shopfleet.common.app import AppOptions, Resources, ServiceSpec, create_service_app
from shopfleet.common.settings import Settings


async def _start_products_client(app: FastAPI, resources: Resources) -> None:
    resources.provide(ProductsClient(resources.http))


SPEC = ServiceSpec(
    name="categories",
    title="shopfleet categories",
    routers=[router, internal],
    startup=[_start_products_client, warm_category_cache],
    cached_routes=CACHED_ROUTES,
    rate_limited=True,
)


def create_app(settings: Settings | None = None, **options: Unpack[AppOptions]) -> FastAPI:
    return create_service_app(settings or Settings(service="categories"), SPEC, **options)
