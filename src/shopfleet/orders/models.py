"""Orders' tables: orders, their lines (a price snapshot) and idempotency records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shopfleet.common.database import JSONType, UTCDateTime, new_id, new_metadata, utcnow

ORDER_STATUSES = ("pending", "confirmed", "rejected", "shipped", "delivered", "cancelled")


class Base(DeclarativeBase):
    metadata = new_metadata()


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in ORDER_STATUSES)),
            name="status_known",
        ),
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        Index("ix_orders_user_id_created_at", "user_id", "created_at"),
        # The sweeper looks for orders left `pending` the longest.
        Index("ix_orders_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    total_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.position", cascade="all, delete-orphan", lazy="raise"
    )


class OrderLine(Base):
    """One product of an order, with the name and price it had when ordered."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 100", name="quantity_range"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_not_negative"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    sku: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    line_total_cents: Mapped[int] = mapped_column(BigInteger)


class IdempotencyKey(Base):
    """A client's Idempotency-Key and the answer it got, so a repeat gets the same one.

    `response_status` is the final status code (with `response_body`) once the order left
    `pending`, NULL until then. `gave_up` is true while no request is working on a pending
    order because the last attempt ended before it was settled: a repeat may resume it.
    """

    __tablename__ = "idempotency_keys"

    # The primary key is the UNIQUE(user_id, key) that makes one of concurrent repeats win.
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    gave_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


@dataclass(slots=True)
class PendingLine:
    """An order line not stored yet; priced once products answers."""

    position: int
    product_id: uuid.UUID
    quantity: int
    sku: str = ""
    name: str = ""
    unit_price_cents: int = 0
    line_total_cents: int = 0


@dataclass(slots=True)
class PendingOrder:
    """A new order on its way through the saga, as plain objects.

    The request path builds, prices and renders it without ever loading it, so it skips
    the ORM's instrumented objects (7 % of an orders instance's samples under
    order-create). It has an Order's attributes: the saga and its answers take either.
    """

    id: uuid.UUID
    user_id: uuid.UUID
    currency: str
    shipping_address: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    lines: list[PendingLine] = field(default_factory=list)
    status: str = "pending"
    total_cents: int = 0


# What the saga settles: a new order, or one read back (a repeat that resumes, the sweeper).
SagaOrder = Order | PendingOrder
