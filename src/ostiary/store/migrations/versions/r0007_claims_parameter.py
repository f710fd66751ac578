"""The `claims` request parameter (OpenID Connect Core §5.5): kept with the authorization
code and the refresh-token family; claims approved one by one kept with the consent.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: rows written before this revision read as "no claims asked for"
    op.add_column("authorization_codes", sa.Column("claims", sa.JSON(), nullable=True))
    op.add_column("refresh_tokens", sa.Column("claims", sa.JSON(), nullable=True))
    op.add_column("consents", sa.Column("claims", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("claims")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("claims")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("claims")
