"""reservation lines keep the sku, name and price they were reserved at

Orders prices an order from the reservation's answer (one call for both), and a
replay of the reservation (a lost answer, the sweeper) must answer the same prices.
Nullable: lines reserved before this revision have no snapshot.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 17:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reservation_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sku", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("unit_price_cents", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reservation_lines", schema=None) as batch_op:
        batch_op.drop_column("unit_price_cents")
        batch_op.drop_column("name")
        batch_op.drop_column("sku")
