"""Orders' view of products: priced stock reservations, through products' internal API.

Placing an order is one call: the reservation answers each line's sku, name and unit
price (locked in products' transaction), or the unknown and short lines.

Every call here is idempotent (reservations are keyed by order id), so the client may
retry all of them, POSTs included.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from shopfleet.common.errors import DependencyUnavailable
from shopfleet.common.http import Answer, ServiceClient
from shopfleet.contracts import products as contract
from shopfleet.contracts.base import Problem
from shopfleet.contracts.products import (
    PricedProduct,
    ReservationConflict,
    ReservationItem,
    ReservationPublic,
    ReservationRequest,
    ReservedLine,
)

log = logging.getLogger("shopfleet.orders.products_client")
TARGET = "products"
JSON_BODY = {"Content-Type": "application/json"}


class UnexpectedAnswer(DependencyUnavailable):
    """Products answered outside its contract; treated like an outage (nothing is decided)."""

    def __init__(self) -> None:
        super().__init__("The products service gave an unexpected answer.")


def unexpected_answer(path: str, response: Answer) -> UnexpectedAnswer:
    """Log what products said (once, where it was received) and make the error to raise."""
    log.error(
        "unexpected answer from products",
        extra={"path": path, "status": response.status_code, "body": response.text[:500]},
    )
    return UnexpectedAnswer()


@dataclass(frozen=True)
class PricedLine:
    """What a product was called and cost when products reserved (or refused) it."""

    sku: str
    name: str
    price: Decimal


Catalog = dict[uuid.UUID, PricedLine]


@dataclass(frozen=True)
class Reserved:
    catalog: Catalog


@dataclass(frozen=True)
class InsufficientStock:
    lines: list[dict[str, Any]]
    catalog: Catalog
    released: bool = False  # products released the order id with its refusal


@dataclass(frozen=True)
class ReservationReleased:
    """The order id was released (cancelled or swept) before this reservation arrived."""


@dataclass(frozen=True)
class UnknownProduct:
    errors: list[dict[str, Any]]


ReserveResult = Reserved | InsufficientStock | ReservationReleased | UnknownProduct


def _priced(lines: Iterable[ReservedLine | PricedProduct]) -> Catalog:
    """The priced lines of an answer; lines reserved before prices were stored are left out."""
    return {
        line.product_id: PricedLine(sku=line.sku, name=line.name, price=line.price)
        for line in lines
        if line.sku is not None and line.name is not None and line.price is not None
    }


class ProductsClient:
    """Calls products' internal API through the process's client (breaker, retries)."""

    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def reserve_stock(
        self, *, order_id: uuid.UUID, items: Iterable[tuple[uuid.UUID, int]]
    ) -> ReserveResult:
        """Reserve and price every line of an order at products, all or none."""
        path = contract.reservations_path()
        body = ReservationRequest(
            order_id=order_id,
            items=[ReservationItem(product_id=p, quantity=q) for p, q in items],
            # Every refusal is released (service._reserve_and_decide): in the same statement.
            release_on_refusal=True,
        )
        response = await self.http.request(
            TARGET,
            "POST",
            path,
            content=body.model_dump_json(by_alias=True).encode(),
            headers=JSON_BODY,
            idempotent=True,
        )
        # Answers are decoded from the bytes by the contract's models (prices as exact
        # Decimals, never through a float); an answer they refuse is products' fault.
        try:
            if response.status_code == 200:
                reservation = ReservationPublic.model_validate_json(response.content)
                return Reserved(catalog=_priced(reservation.items))
            if response.status_code == 409:
                conflict = ReservationConflict.model_validate_json(response.content)
                if conflict.type == contract.INSUFFICIENT_STOCK:
                    return InsufficientStock(
                        lines=[
                            line.model_dump(mode="json", by_alias=True) for line in conflict.lines
                        ],
                        catalog=_priced(conflict.products),
                        released=conflict.released,
                    )
                if conflict.type == contract.RESERVATION_RELEASED:
                    return ReservationReleased()
            if response.status_code == 422:
                problem = Problem.model_validate_json(response.content)
                if problem.errors:
                    return UnknownProduct(errors=[e.model_dump() for e in problem.errors])
        except ValidationError as exc:
            raise unexpected_answer(path, response) from exc
        raise unexpected_answer(path, response)

    async def release_stock(self, *, order_id: uuid.UUID) -> None:
        """Return an order's stock; for a never-reserved order this blocks any later reserve."""
        path = contract.release_path(order_id)
        response = await self.http.request(TARGET, "POST", path, idempotent=True)
        if response.status_code != 200:
            raise unexpected_answer(path, response)

    async def reservation_status(self, *, order_id: uuid.UUID) -> tuple[str, Catalog] | None:
        """Return "reserved" or "released" and the reserved prices; None when never seen."""
        path = contract.reservation_path(order_id)
        response = await self.http.request(TARGET, "GET", path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise unexpected_answer(path, response)
        reservation = _reservation(path, response)
        return reservation.status, _priced(reservation.items)


def _reservation(path: str, response: Answer) -> ReservationPublic:
    try:
        return ReservationPublic.model_validate_json(response.content)
    except ValidationError as exc:
        raise unexpected_answer(path, response) from exc
