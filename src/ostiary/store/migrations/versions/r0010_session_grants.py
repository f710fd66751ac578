"""Ending a login session revokes the grants made in it (Back-Channel Logout 1.0 §2.7): the
codes and refresh tokens of a session are found by its `sid`.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_authorization_codes_sid", "authorization_codes", ["sid"])
    op.create_index("ix_refresh_tokens_sid", "refresh_tokens", ["sid"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_sid", table_name="refresh_tokens")
    op.drop_index("ix_authorization_codes_sid", table_name="authorization_codes")
