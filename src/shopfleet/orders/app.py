"""The orders service: orders placed by a saga that never oversells."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Unpack

from fastapi import FastAPI

from shopfleet.common.app import AppOptions, Resources, ServiceSpec, create_service_app
from shopfleet.common.settings import Settings
from shopfleet.orders.api import DIRECT_WRITES, router
from shopfleet.orders.metrics import OrdersMetrics
from shopfleet.orders.products_client import ProductsClient
from shopfleet.orders.service import OrdersContext
from shopfleet.orders.sweeper import run_sweeper


@dataclass(frozen=True)
class Sweeper:
    """The instance's sweeper task, stopped at shutdown."""

    task: asyncio.Task[None]


async def _start(app: FastAPI, resources: Resources) -> None:
    ctx = OrdersContext(
        settings=resources.settings,
        sessionmaker=resources.sessionmaker,
        products=ProductsClient(resources.http),
        metrics=OrdersMetrics.register(resources.metrics.registry),
    )
    resources.provide(ctx)
    resources.provide(Sweeper(asyncio.create_task(run_sweeper(ctx), name="orders-sweeper")))


async def _stop(app: FastAPI, resources: Resources) -> None:
    sweeper = resources.take(Sweeper)
    if sweeper is not None:
        sweeper.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper.task


SPEC = ServiceSpec(
    name="orders",
    title="shopfleet orders",
    routers=[router],
    startup=[_start],
    shutdown=[_stop],
    direct_writes=DIRECT_WRITES,
    rate_limited=True,
)


def create_app(settings: Settings | None = None, **options: Unpack[AppOptions]) -> FastAPI:
    return create_service_app(settings or Settings(service="orders"), SPEC, **options)
