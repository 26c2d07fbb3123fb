"""a category's date and name walks carry the price, so a price filter reads no rows

A category's page sorted by date or name within a price range walks the sort order's
index and filters by price. Without the price in the index, every row walked was
fetched from the table just to be rejected (232 rows walked: 0.36 ms). With
INCLUDE (price_cents) the walk is index-only and fetches only the page's rows by id
(0.18 ms). PostgreSQL only; SQLite has no INCLUDE and keeps its indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 05:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WALKS = {
    "ix_products_category_id_created_at_id": ["category_id", "created_at", "id"],
    "ix_products_category_id_name_id": ["category_id", "name", "id"],
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns in _WALKS.items():
        op.drop_index(name, table_name="products")
        op.create_index(name, "products", columns, postgresql_include=["price_cents"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns in _WALKS.items():
        op.drop_index(name, table_name="products")
        op.create_index(name, "products", columns)
