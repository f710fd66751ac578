"""Rate-limit penalties shared by every server process: exponential back-off per key.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_penalties",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("strikes", sa.BigInteger(), nullable=False),
        sa.Column("struck_at", sa.BigInteger(), nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=False),
        sa.Column("forget_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_penalties"),
    )
    op.create_index("ix_rate_penalties_forget_at", "rate_penalties", ["forget_at"])


def downgrade() -> None:
    op.drop_index("ix_rate_penalties_forget_at", table_name="rate_penalties")
    op.drop_table("rate_penalties")
