"""Pure rules of the orders service: money, request hashing, validation, outcomes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shopfleet.common.database import utcnow
from shopfleet.orders.lifecycle import TRANSITIONS
from shopfleet.orders.models import Order, OrderLine
from shopfleet.orders.outcomes import confirmed_outcome, insufficient_stock_outcome, outcome_of
from shopfleet.orders.pricing import apply_prices, pending_order
from shopfleet.orders.products_client import PricedLine
from shopfleet.orders.schemas import OrderCreate, OrderPublic, cents_to_money, money_to_cents
from shopfleet.orders.service import request_hash

ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "us"}


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "items": [{"productId": str(uuid.UUID(int=1)), "quantity": 2}],
        "shippingAddress": dict(ADDRESS),
    }
    body.update(changes)
    return body


def _order(status: str = "confirmed") -> Order:
    now = utcnow()
    line = OrderLine(
        position=0,
        product_id=uuid.UUID(int=7),
        sku="SKU-7",
        name="Seven",
        unit_price_cents=10,
        quantity=3,
        line_total_cents=30,
    )
    return Order(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status=status,
        total_cents=30,
        currency="USD",
        shipping_address={"line1": "x", "city": "y", "postalCode": "z", "country": "US"},
        created_at=now,
        updated_at=now,
        lines=[line],
    )


def test_money_converts_exactly() -> None:
    assert money_to_cents(Decimal("19.99")) == 1999
    assert money_to_cents(Decimal("0.1")) == 10
    assert money_to_cents(Decimal("7")) == 700
    assert cents_to_money(3 * 10) == Decimal("0.30")
    assert cents_to_money(1999 * 3) == Decimal("59.97")
    with pytest.raises(ValueError):
        money_to_cents(Decimal("0.001"))


def test_order_renders_money_as_two_decimal_numbers() -> None:
    body = OrderPublic.of(_order()).to_json()
    assert body["total"] == 0.3  # 3 x 0.10, exact: not 0.30000000000000004
    assert body["items"][0]["unitPrice"] == 0.1 and body["items"][0]["lineTotal"] == 0.3
    assert body["shippingAddress"]["postalCode"] == "z"


def test_equal_bodies_hash_equal_and_different_bodies_differ() -> None:
    first = OrderCreate.model_validate(_body())
    reordered = OrderCreate.model_validate(
        {"shippingAddress": {**ADDRESS, "country": "US", "line2": None}, "items": _body()["items"]}
    )
    assert request_hash(first) == request_hash(reordered)
    more = _body(items=[{"productId": str(uuid.UUID(int=1)), "quantity": 3}])
    assert request_hash(first) != request_hash(OrderCreate.model_validate(more))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_body(items=[]), "items"),
        (_body(items=[{"productId": str(uuid.UUID(int=1)), "quantity": 0}]), "items.0.quantity"),
        (_body(items=[{"productId": str(uuid.UUID(int=1)), "quantity": 101}]), "items.0.quantity"),
        (_body(items=[{"productId": str(uuid.UUID(int=1)), "quantity": "2"}]), "items.0.quantity"),
        (_body(items=[{"productId": str(uuid.UUID(int=1)), "quantity": True}]), "items.0.quantity"),
        (
            _body(items=[{"productId": str(uuid.UUID(int=1)), "quantity": 1, "unitPrice": 1}]),
            "items.0.unitPrice",
        ),
        (_body(status="confirmed"), "status"),
        (_body(shippingAddress={**ADDRESS, "country": "USA"}), "shippingAddress.country"),
        (
            _body(items=[{"productId": str(uuid.UUID(int=i)), "quantity": 1} for i in range(51)]),
            "items",
        ),
        (
            _body(items=[{"productId": str(uuid.UUID(int=1)), "quantity": 1}] * 2),
            "items",
        ),
    ],
)
def test_order_create_rejects(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OrderCreate.model_validate(body)
    locations = {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}
    assert field in locations


def test_fifty_lines_are_allowed() -> None:
    items = [{"productId": str(uuid.UUID(int=i + 1)), "quantity": 100} for i in range(50)]
    assert len(OrderCreate.model_validate(_body(items=items)).items) == 50


def test_insufficient_stock_names_the_lines() -> None:
    order = _order("pending")
    outcome = insufficient_stock_outcome(
        order, [{"productId": str(uuid.UUID(int=7)), "requested": 3, "available": 1}]
    )
    assert outcome.status_code == 409
    assert outcome.body["type"] == "urn:shopfleet:problem:insufficient-stock"
    assert outcome.body["lines"] == [
        {
            "productId": str(uuid.UUID(int=7)),
            "sku": "SKU-7",
            "name": "Seven",
            "requested": 3,
            "available": 1,
        }
    ]


def test_settled_orders_have_an_outcome_and_pending_ones_do_not() -> None:
    assert outcome_of(_order("confirmed")).status_code == 201
    assert outcome_of(_order("rejected")).status_code == 409
    assert outcome_of(_order("cancelled")).body["type"] == "urn:shopfleet:problem:order-cancelled"
    with pytest.raises(ValueError):
        outcome_of(_order("pending"))


def test_only_the_documented_transitions_exist() -> None:
    assert {
        ("confirmed", "shipped"),
        ("shipped", "delivered"),
        ("pending", "cancelled"),
        ("confirmed", "cancelled"),
    } == TRANSITIONS


def test_a_pending_order_prices_and_renders_as_the_stored_one() -> None:
    """The saga's plain PendingOrder and the ORM Order give the same answers."""
    data = OrderCreate.model_validate(
        _body(items=[{"productId": str(uuid.UUID(int=7)), "quantity": 3}])
    )
    pending = pending_order(user_id=uuid.UUID(int=9), data=data, currency="USD")
    assert (pending.status, pending.total_cents) == ("pending", 0)
    assert [(line.sku, line.unit_price_cents) for line in pending.lines] == [("", 0)]
    stored = _order("pending")
    stored.id, stored.user_id = pending.id, pending.user_id
    stored.shipping_address, stored.created_at = pending.shipping_address, pending.created_at
    stored.updated_at, stored.total_cents = pending.updated_at, 0
    catalog = {uuid.UUID(int=7): PricedLine("SKU-7", "Seven", Decimal("0.10"))}
    assert apply_prices(pending, catalog) and apply_prices(stored, catalog)
    now = utcnow()
    assert confirmed_outcome(pending, confirmed_at=now) == confirmed_outcome(
        stored, confirmed_at=now
    )
    assert confirmed_outcome(pending, confirmed_at=now).body["total"] == 0.3
    shortage = [{"productId": str(uuid.UUID(int=7)), "requested": 3, "available": 1}]
    assert (
        insufficient_stock_outcome(pending, shortage).body["lines"]
        == (insufficient_stock_outcome(stored, shortage).body["lines"])
    )
