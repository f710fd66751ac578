"""Logout: a `sid` per login session (kept with codes and refresh tokens), which clients
each session reached, and the stored queue of back-channel logout tokens to post.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # nullable: sessions, codes and tokens from before this revision have no sid
    op.add_column("login_sessions", sa.Column("sid", sa.Text(), nullable=True))
    op.create_index("ix_login_sessions_sid", "login_sessions", ["sid"], unique=True)
    op.add_column("authorization_codes", sa.Column("sid", sa.Text(), nullable=True))
    op.add_column("refresh_tokens", sa.Column("sid", sa.Text(), nullable=True))
    op.create_table(
        "session_clients",
        sa.Column("session_hash", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("joined_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_hash"],
            ["login_sessions.session_hash"],
            name="fk_session_clients_session_hash_login_sessions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name="fk_session_clients_client_id_clients",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_hash", "client_id", name="pk_session_clients"),
    )
    op.create_index("ix_session_clients_client_id", "session_clients", ["client_id"])
    op.create_table(
        "logout_deliveries",
        sa.Column("delivery_id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("sid", sa.Text(), nullable=True),
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name="fk_logout_deliveries_client_id_clients",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_logout_deliveries"),
        sa.UniqueConstraint("jti", name="uq_logout_deliveries_jti"),
    )
    op.create_index("ix_logout_deliveries_client_id", "logout_deliveries", ["client_id"])
    op.create_index(
        "ix_logout_deliveries_next_attempt_at", "logout_deliveries", ["next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("logout_deliveries")
    op.drop_table("session_clients")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("sid")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("sid")
    op.drop_index("ix_login_sessions_sid", table_name="login_sessions")
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("sid")
