"""Orders request and response bodies, and the exact money conversions they use."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from shopfleet.common.schemas import SAFE_TEXT, ApiModel, MoneyOut, Timestamp
from shopfleet.orders.models import SagaOrder

OrderStatus = Literal["pending", "confirmed", "rejected", "shipped", "delivered", "cancelled"]
MAX_LINES = 50
MAX_QUANTITY = 100
CENT = Decimal("0.01")


def cents_to_money(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def money_to_cents(amount: Decimal) -> int:
    """Convert an amount with at most two decimals to integer cents, exactly."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} has more than two decimals")
    return int(cents)


def _text(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


ShortText = Annotated[str, _text(50), SAFE_TEXT]
AddressLine = Annotated[str, _text(200), SAFE_TEXT]
City = Annotated[str, _text(100), SAFE_TEXT]
PostalCode = Annotated[str, _text(20), SAFE_TEXT]


class ShippingAddress(ApiModel):
    """Where an order goes; the same shape as a users-service address."""

    label: ShortText | None = None
    line1: AddressLine
    line2: AddressLine | None = None
    city: City
    postal_code: PostalCode
    country: Annotated[
        str, Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2"), SAFE_TEXT
    ]

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class OrderItemCreate(ApiModel):
    product_id: uuid.UUID
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]


class OrderCreate(ApiModel):
    """A new order: which products and how many. Prices always come from products."""

    items: Annotated[list[OrderItemCreate], Field(min_length=1, max_length=MAX_LINES)]
    shipping_address: ShippingAddress

    @field_validator("items")
    @classmethod
    def _distinct_products(cls, items: list[OrderItemCreate]) -> list[OrderItemCreate]:
        seen: set[uuid.UUID] = set()
        for item in items:
            if item.product_id in seen:
                raise ValueError(f"product {item.product_id} appears twice; combine its quantities")
            seen.add(item.product_id)
        return items


class OrderStatusUpdate(ApiModel):
    status: OrderStatus


class OrderLinePublic(ApiModel):
    product_id: uuid.UUID
    sku: str
    name: str
    unit_price: MoneyOut
    quantity: int
    line_total: MoneyOut


class OrderPublic(ApiModel):
    id: uuid.UUID
    user_id: uuid.UUID
    status: OrderStatus
    items: list[OrderLinePublic]
    total: MoneyOut
    currency: str
    shipping_address: ShippingAddress
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, order: SagaOrder) -> OrderPublic:
        """Render an order (its lines loaded) for the API."""
        return cls(
            id=order.id,
            user_id=order.user_id,
            status=order.status,
            items=[
                OrderLinePublic(
                    product_id=line.product_id,
                    sku=line.sku,
                    name=line.name,
                    unit_price=cents_to_money(line.unit_price_cents),
                    quantity=line.quantity,
                    line_total=cents_to_money(line.line_total_cents),
                )
                for line in order.lines
            ],
            total=cents_to_money(order.total_cents),
            currency=order.currency,
            shipping_address=ShippingAddress.model_validate(order.shipping_address),
            created_at=order.created_at,
            updated_at=order.updated_at,
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
