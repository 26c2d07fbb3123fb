"""The products service's internal interface (stock reservations, category usage)."""

from __future__ import annotations

import uuid

from shopfleet.contracts.base import ContractAnswer

PREFIX = "/internal/products"
RESERVATIONS = "/reservations"
RESERVATION = "/reservations/{order_id}"
RELEASE = "/reservations/{order_id}/release"
CATEGORY_USAGE = "/category-usage/{category_id}"

INSUFFICIENT_STOCK = "urn:shopfleet:problem:insufficient-stock"
RESERVATION_RELEASED = "urn:shopfleet:problem:reservation-released"

# Cache scopes other services and tools bump when they change what product lists show.
LIST_SCOPE = "products:list"


def reservations_path() -> str:
    return PREFIX + RESERVATIONS


def reservation_path(order_id: uuid.UUID) -> str:
    return PREFIX + RESERVATION.format(order_id=order_id)


def release_path(order_id: uuid.UUID) -> str:
    return PREFIX + RELEASE.format(order_id=order_id)


def category_usage_path(category_id: uuid.UUID | str) -> str:
    return PREFIX + CATEGORY_USAGE.format(category_id=category_id)


class CategoryUsage(ContractAnswer):
    """How many products are in a category (categories asks before deleting one)."""

    count: int
