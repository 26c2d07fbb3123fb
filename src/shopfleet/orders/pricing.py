"""An order's price snapshot: from products' reservation answer, never from the client.

The order is stored `pending` before products is asked (so a crash after reserving
leaves a row the sweeper settles), and products prices it in the same call that
reserves its stock; so a pending order's lines wait unpriced (sku and name empty,
prices 0) until the answer fills them in.
"""

from __future__ import annotations

import uuid

from shopfleet.common.database import new_id, utcnow
from shopfleet.orders.models import PendingLine, PendingOrder, SagaOrder
from shopfleet.orders.products_client import Catalog
from shopfleet.orders.schemas import OrderCreate, money_to_cents


def pending_order(*, user_id: uuid.UUID, data: OrderCreate, currency: str) -> PendingOrder:
    """Build a pending order whose lines are not priced yet."""
    now = utcnow()
    return PendingOrder(
        id=new_id(),
        user_id=user_id,
        currency=currency,
        shipping_address=data.shipping_address.model_dump(mode="json", by_alias=True),
        created_at=now,
        updated_at=now,
        lines=[
            PendingLine(position, item.product_id, item.quantity)
            for position, item in enumerate(data.items)
        ],
    )


def apply_prices(order: SagaOrder, catalog: Catalog) -> bool:
    """Snapshot every line's sku, name and price from `catalog`; False (nothing changed)
    unless every line is in it."""
    if any(line.product_id not in catalog for line in order.lines):
        return False
    for line in order.lines:
        entry = catalog[line.product_id]
        line.sku = entry.sku
        line.name = entry.name
        line.unit_price_cents = money_to_cents(entry.price)
        line.line_total_cents = line.unit_price_cents * line.quantity
    order.total_cents = sum(line.line_total_cents for line in order.lines)
    return True
