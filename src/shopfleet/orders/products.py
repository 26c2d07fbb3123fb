"""Calls to the products service's internal API: price lookup and stock reservations.

Every call here is idempotent (reservations are keyed by order id), so the client may
retry all of them, POSTs included.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from shopfleet.common.errors import DependencyUnavailable
from shopfleet.common.http import ServiceClient

log = logging.getLogger("shopfleet.orders.products")
TARGET = "products"
INSUFFICIENT_STOCK = "urn:shopfleet:problem:insufficient-stock"
RESERVATION_RELEASED = "urn:shopfleet:problem:reservation-released"


class UnexpectedAnswer(DependencyUnavailable):
    """Products answered outside its contract; treated like an outage (nothing is decided)."""

    def __init__(self, path: str, response: httpx.Response) -> None:
        super().__init__("The products service gave an unexpected answer.")
        log.error(
            "unexpected answer from products",
            extra={"path": path, "status": response.status_code, "body": response.text[:500]},
        )


@dataclass(frozen=True)
class CatalogEntry:
    id: uuid.UUID
    sku: str
    name: str
    price: Decimal


@dataclass(frozen=True)
class Reserved:
    pass


@dataclass(frozen=True)
class InsufficientStock:
    lines: list[dict[str, Any]]


@dataclass(frozen=True)
class ReservationReleased:
    """The order id was released (cancelled or swept) before this reservation arrived."""


@dataclass(frozen=True)
class UnknownProduct:
    detail: str


ReserveResult = Reserved | InsufficientStock | ReservationReleased | UnknownProduct


def _body(response: httpx.Response) -> Any:
    # Prices are parsed as Decimal straight from the JSON text, never through a float.
    return json.loads(response.content, parse_float=Decimal)


async def lookup_products(
    *, http: ServiceClient, product_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, CatalogEntry]:
    """Return the current sku, name and price of the known ones among `product_ids`."""
    path = "/internal/products/lookup"
    response = await http.request(
        TARGET, "POST", path, json={"ids": [str(i) for i in product_ids]}, idempotent=True
    )
    if response.status_code != 200:
        raise UnexpectedAnswer(path, response)
    entries = {}
    for product in _body(response)["products"]:
        entry = CatalogEntry(
            id=uuid.UUID(product["id"]),
            sku=product["sku"],
            name=product["name"],
            price=Decimal(product["price"]),
        )
        entries[entry.id] = entry
    return entries


async def reserve_stock(
    *, http: ServiceClient, order_id: uuid.UUID, items: Iterable[tuple[uuid.UUID, int]]
) -> ReserveResult:
    """Reserve every line of an order at products, all or none."""
    path = "/internal/products/reservations"
    payload = {
        "orderId": str(order_id),
        "items": [{"productId": str(p), "quantity": q} for p, q in items],
    }
    response = await http.request(TARGET, "POST", path, json=payload, idempotent=True)
    if response.status_code == 200:
        return Reserved()
    if response.status_code == 409:
        problem = _body(response)
        if problem.get("type") == INSUFFICIENT_STOCK:
            return InsufficientStock(lines=list(problem.get("lines", [])))
        if problem.get("type") == RESERVATION_RELEASED:
            return ReservationReleased()
    if response.status_code == 422:
        return UnknownProduct(detail=str(_body(response).get("detail", "")))
    raise UnexpectedAnswer(path, response)


async def release_stock(*, http: ServiceClient, order_id: uuid.UUID) -> None:
    """Return an order's stock; for a never-reserved order this blocks any later reserve."""
    path = f"/internal/products/reservations/{order_id}/release"
    response = await http.request(TARGET, "POST", path, idempotent=True)
    if response.status_code != 200:
        raise UnexpectedAnswer(path, response)


async def reservation_status(*, http: ServiceClient, order_id: uuid.UUID) -> str | None:
    """Return "reserved" or "released" for an order id, None when products never saw it."""
    path = f"/internal/products/reservations/{order_id}"
    response = await http.request(TARGET, "GET", path)
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise UnexpectedAnswer(path, response)
    status: str = _body(response)["status"]
    return status
