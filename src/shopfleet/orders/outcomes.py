"""The answers an order's creation gets, stored with its Idempotency-Key for repeats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from shopfleet.contracts.products import INSUFFICIENT_STOCK
from shopfleet.orders.models import SagaOrder
from shopfleet.orders.schemas import OrderPublic

ORDER_REJECTED = "urn:shopfleet:problem:order-rejected"
ORDER_CANCELLED = "urn:shopfleet:problem:order-cancelled"


@dataclass(frozen=True)
class Outcome:
    """A status code and JSON body; problem+json when the status is an error."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def problem(status: int, detail: str, *, problem_type: str, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem body, as a dict that can be stored and replayed."""
    body: dict[str, Any] = {
        "type": problem_type,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return body


def confirmed_outcome(order: SagaOrder, *, confirmed_at: datetime | None = None) -> Outcome:
    """201 with the order; `confirmed_at` renders a pending order as confirmed at that time."""
    public = OrderPublic.of(order)
    if confirmed_at is not None:
        public = public.model_copy(update={"status": "confirmed", "updated_at": confirmed_at})
    return Outcome(201, public.to_json())


def insufficient_stock_outcome(order: SagaOrder, shortages: list[dict[str, Any]]) -> Outcome:
    """409 naming each short line, with the sku and name the customer ordered."""
    by_product = {str(line.product_id): line for line in order.lines}
    lines = []
    for shortage in shortages:
        product_id = str(shortage.get("productId"))
        line = by_product.get(product_id)
        lines.append(
            {
                "productId": product_id,
                "sku": line.sku if line else None,
                "name": line.name if line else None,
                "requested": shortage.get("requested"),
                "available": shortage.get("available"),
            }
        )
    body = problem(
        409,
        "Not enough stock for some of the ordered products.",
        problem_type=INSUFFICIENT_STOCK,
        orderId=str(order.id),
        lines=lines,
    )
    return Outcome(409, body)


def rejected_outcome(order: SagaOrder) -> Outcome:
    """409 for an order settled without stock (its reservation never completed)."""
    body = problem(
        409,
        "The order could not be completed; no stock is held for it.",
        problem_type=ORDER_REJECTED,
        orderId=str(order.id),
    )
    return Outcome(409, body)


def cancelled_outcome(order: SagaOrder) -> Outcome:
    body = problem(
        409,
        "The order was cancelled before it was confirmed.",
        problem_type=ORDER_CANCELLED,
        orderId=str(order.id),
    )
    return Outcome(409, body)


def outcome_of(order: SagaOrder) -> Outcome:
    """Derive the creation answer of an order settled without a stored one."""
    if order.status == "rejected":
        return rejected_outcome(order)
    if order.status == "cancelled":
        return cancelled_outcome(order)
    if order.status == "pending":
        raise ValueError(f"order {order.id} is not settled")
    return confirmed_outcome(order)
