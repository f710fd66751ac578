"""OpenID Connect: a client's OIDC registration metadata, a user's standard claims.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: rows written before this revision read as the defaults
    op.add_column("clients", sa.Column("oidc", sa.JSON(), nullable=True))
    op.add_column("users", sa.Column("claims", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("claims")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("oidc")
