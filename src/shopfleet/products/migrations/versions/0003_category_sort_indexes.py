"""a category's pages sorted by price or by name walk an index of their own

A category's page sorted by price or name (the storefront's filtered browsing) had no
index in that order: PostgreSQL read every product of the category in the price range
and sorted them (1.3-2.2 ms on a 100,000-product catalog), or walked the whole catalog's
name index filtering by category. With (category_id, price_cents, id) and
(category_id, name, id) each such page is an ordered index walk (0.2-0.35 ms), and a
category's total within a price range is an index-only range count.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 23:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_products_category_id_price_cents_id",
        "products",
        ["category_id", "price_cents", "id"],
    )
    op.create_index("ix_products_category_id_name_id", "products", ["category_id", "name", "id"])


def downgrade() -> None:
    op.drop_index("ix_products_category_id_name_id", table_name="products")
    op.drop_index("ix_products_category_id_price_cents_id", table_name="products")
