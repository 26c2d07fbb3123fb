"""An order's price snapshot: built from products' catalog answer, never from the client."""

from __future__ import annotations

import uuid

from shopfleet.common.database import new_id, utcnow
from shopfleet.common.errors import Unprocessable
from shopfleet.orders.models import Order, OrderLine
from shopfleet.orders.products import CatalogEntry
from shopfleet.orders.schemas import OrderCreate, money_to_cents


def price_order(
    *,
    user_id: uuid.UUID,
    data: OrderCreate,
    catalog: dict[uuid.UUID, CatalogEntry],
    currency: str,
) -> Order:
    """Build a pending order whose lines snapshot the products' current names and prices."""
    unknown = [i for i, item in enumerate(data.items) if item.product_id not in catalog]
    if unknown:
        raise Unprocessable(
            "Some ordered products do not exist.",
            extra={
                "errors": [
                    {"field": f"items[{i}].productId", "message": "No such product."}
                    for i in unknown
                ]
            },
        )
    lines = []
    for position, item in enumerate(data.items):
        entry = catalog[item.product_id]
        unit_price = money_to_cents(entry.price)
        lines.append(
            OrderLine(
                position=position,
                product_id=entry.id,
                sku=entry.sku,
                name=entry.name,
                unit_price_cents=unit_price,
                quantity=item.quantity,
                line_total_cents=unit_price * item.quantity,
            )
        )
    now = utcnow()
    return Order(
        id=new_id(),
        user_id=user_id,
        status="pending",
        total_cents=sum(line.line_total_cents for line in lines),
        currency=currency,
        shipping_address=data.shipping_address.model_dump(mode="json", by_alias=True),
        created_at=now,
        updated_at=now,
        lines=lines,
    )
