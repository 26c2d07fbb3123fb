"""The products service: the catalog and stock reservations."""

from __future__ import annotations

from typing import Unpack

from fastapi import FastAPI

from shopfleet.common.app import AppOptions, Resources, ServiceSpec, create_service_app
from shopfleet.common.settings import Settings
from shopfleet.products.api import router
from shopfleet.products.caching import CACHED_ROUTES, warm_product_cache
from shopfleet.products.categories_client import CategoriesClient
from shopfleet.products.internal_api import DIRECT_WRITES, internal
from shopfleet.products.totals import PriceCounts


async def _provide_state(app: FastAPI, resources: Resources) -> None:
    resources.provide(CategoriesClient(resources.http))
    resources.provide(PriceCounts())


SPEC = ServiceSpec(
    name="products",
    title="shopfleet products",
    routers=[router, internal],
    startup=[_provide_state, warm_product_cache],
    cached_routes=CACHED_ROUTES,
    direct_writes=DIRECT_WRITES,
    rate_limited=True,
)


def create_app(settings: Settings | None = None, **options: Unpack[AppOptions]) -> FastAPI:
    return create_service_app(settings or Settings(service="products"), SPEC, **options)
