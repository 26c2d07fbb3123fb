"""Products' tables: the catalog and the stock reservations of orders."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shopfleet.common.database import UTCDateTime, new_id, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        # Each sort walks its own index, with id as the tie-breaker keyset pagination needs;
        # the leading column also serves plain filters on name, price and creation time.
        Index("ix_products_created_at_id", "created_at", "id"),
        Index("ix_products_price_cents_id", "price_cents", "id"),
        Index("ix_products_name_id", "name", "id"),
        # A category's pages in each sort order (newest first also serves category_id
        # alone; price also a category's price range). The date and name walks carry the
        # price (PostgreSQL), so a price filter is judged in the index (reads.py).
        Index(
            "ix_products_category_id_created_at_id",
            "category_id",
            "created_at",
            "id",
            postgresql_include=["price_cents"],
        ),
        Index("ix_products_category_id_price_cents_id", "category_id", "price_cents", "id"),
        Index(
            "ix_products_category_id_name_id",
            "category_id",
            "name",
            "id",
            postgresql_include=["price_cents"],
        ),
        Index("ix_products_category_id_stock_price_cents", "category_id", "stock", "price_cents"),
        Index("ix_products_stock", "stock"),
        # `q` (a substring of the name): on PostgreSQL a trigram index serves ILIKE '%...%'.
        # SQLite cannot use an index for that, so there the index stays empty (WHERE 0).
        Index(
            "ix_products_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
            sqlite_where=text("0"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # Money is kept exact, in integer cents.
    price_cents: Mapped[int] = mapped_column(BigInteger)
    # Another service's id: no foreign key; products checks it over HTTP on write.
    category_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    stock: Mapped[int] = mapped_column(Integer)
    image: Mapped[str | None] = mapped_column(String(2048), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reservation(Base):
    """The stock an order holds, keyed by order id so reserve and release are idempotent.

    A `released` row without lines is a tombstone: the order was released before it
    was ever reserved, and a late reserve for it is refused.
    """

    __tablename__ = "reservations"
    __table_args__ = (CheckConstraint("status IN ('reserved', 'released')", name="status_known"),)

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReservationLine(Base):
    __tablename__ = "reservation_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reservations.order_id", ondelete="CASCADE"), primary_key=True
    )
    # No foreign key to products: a deleted product keeps its reservation history.
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    # What the product was called and cost when reserved: orders prices the order from it.
    sku: Mapped[str | None] = mapped_column(String(64), default=None)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    unit_price_cents: Mapped[int | None] = mapped_column(BigInteger, default=None)
