"""The products service's internal interface (stock reservations, category usage)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field

from shopfleet.common.schemas import MoneyOut
from shopfleet.contracts.base import ContractAnswer, ContractRequest, Problem

PREFIX = "/internal/products"
LOOKUP = "/lookup"  # no service calls it today; tests and operators read stock with it
RESERVATIONS = "/reservations"
RESERVATION = "/reservations/{order_id}"
RELEASE = "/reservations/{order_id}/release"
CATEGORY_USAGE = "/category-usage/{category_id}"

INSUFFICIENT_STOCK = "urn:shopfleet:problem:insufficient-stock"
RESERVATION_RELEASED = "urn:shopfleet:problem:reservation-released"

# Cache scopes other services and tools bump when they change what product lists show.
LIST_SCOPE = "products:list"
# The totals of filters that do not look at stock: only adding, changing or removing a
# product changes them, so an order (a stock change) leaves them cached.
TOTALS_SCOPE = "products:totals"


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


class ReservationItem(ContractRequest):
    product_id: uuid.UUID
    quantity: Annotated[int, Field(strict=True, ge=1, le=100)]


class ReservationRequest(ContractRequest):
    """Reserve and price all these lines for the order, or none (idempotent by order id)."""

    order_id: uuid.UUID
    items: Annotated[list[ReservationItem], Field(min_length=1, max_length=100)]
    # Refused, release the order id at once (PostgreSQL), as a release call would: the
    # 409 then says `released`. A caller that releases every refusal asks for it.
    release_on_refusal: bool = False


class ReservedLine(ContractAnswer):
    """A reserved line with the sku, name and price it was reserved at (orders' snapshot)."""

    product_id: uuid.UUID
    quantity: int
    # None for lines reserved before prices were stored with them.
    sku: str | None = None
    name: str | None = None
    price: MoneyOut | None = None


class ReservationPublic(ContractAnswer):
    """An order's reservation: what reserve, release and the status read answer."""

    order_id: uuid.UUID
    status: Literal["reserved", "released"]
    items: list[ReservedLine]


class Shortage(ContractAnswer):
    product_id: uuid.UUID
    requested: int
    available: int


class PricedProduct(ContractAnswer):
    """What a product is called and costs, as products read it while refusing a reservation."""

    product_id: uuid.UUID
    sku: str
    name: str
    price: MoneyOut


class ReservationConflict(Problem):
    """A 409 from reserve: insufficient stock (short lines, all priced) or released.

    `released`: the refusal released the order id as well (the request's
    `releaseOnRefusal`, on PostgreSQL), so a reserve of it that lands later (an earlier
    attempt) is refused; no release call is needed.
    """

    lines: list[Shortage] = []
    products: list[PricedProduct] = []
    released: bool = False


class LookupRequest(ContractRequest):
    ids: Annotated[list[uuid.UUID], Field(max_length=100)]


class LookupProduct(ContractAnswer):
    id: uuid.UUID
    sku: str
    name: str
    price: MoneyOut
    stock: int


class LookupResponse(ContractAnswer):
    products: list[LookupProduct]
