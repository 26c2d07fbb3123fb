"""idempotency records say "the last attempt gave up" in a column of its own

Until now `response_status = 503` meant "gave up, a repeat may resume", an HTTP status
used as a state flag; a stored 503 answer would have been indistinguishable from it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("gave_up", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE idempotency_keys SET gave_up = TRUE, response_status = NULL"
        " WHERE response_status = 503"
    )


def downgrade() -> None:
    op.execute("UPDATE idempotency_keys SET response_status = 503 WHERE gave_up")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("gave_up")
