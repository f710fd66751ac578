"""The first schema: clients, users, codes, tokens, consents, keys, replay, throttle, audit.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=nullable)


def _owner_fks(table: str, *, user: bool) -> list[sa.ForeignKeyConstraint]:
    fks = [
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=f"fk_{table}_client_id_clients",
            ondelete="CASCADE",
        )
    ]
    if user:
        fks.append(
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.user_id"], name=f"fk_{table}_user_id_users", ondelete="CASCADE"
            )
        )
    return fks


def _indexes(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    op.create_table(
        "clients",
        _text("client_id"),
        _text("name"),
        _text("auth_method"),
        _text("secret_hash", nullable=True),
        _json("redirect_uris"),
        _text("grant_types"),
        _text("scopes"),
        _json("jwks", nullable=True),
        _text("token_format"),
        sa.Column("legacy_password_grant", sa.Boolean(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("client_id", name="pk_clients"),
    )
    op.create_table(
        "users",
        _text("user_id"),
        _text("username"),
        _text("password_hash"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("user_id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "authorization_codes",
        _text("code_hash"),
        _text("grant_id"),
        _text("client_id"),
        _text("user_id"),
        _text("redirect_uri"),
        _text("scope"),
        _text("code_challenge"),
        _json("resources"),
        _text("nonce", nullable=True),
        _time("auth_time"),
        _time("created_at"),
        _time("expires_at"),
        _time("used_at", nullable=True),
        *_owner_fks("authorization_codes", user=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_authorization_codes"),
    )
    _indexes("authorization_codes", "client_id", "expires_at", "user_id")
    op.create_table(
        "refresh_tokens",
        _text("token_hash"),
        _text("grant_id"),
        _text("client_id"),
        _text("user_id", nullable=True),
        _text("scope"),
        _json("resources"),
        _time("created_at"),
        _time("expires_at"),
        _time("auth_time"),
        _text("state"),
        _time("changed_at", nullable=True),
        sa.CheckConstraint(
            "state IN ('live', 'rotated', 'revoked')", name="ck_refresh_tokens_state"
        ),
        *_owner_fks("refresh_tokens", user=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
    )
    _indexes("refresh_tokens", "client_id", "expires_at", "grant_id", "user_id")
    op.create_table(
        "access_tokens",
        _text("token_id"),
        _text("format"),
        _text("client_id"),
        _text("grant_id", nullable=True),
        _text("subject"),
        _text("scope"),
        _json("audience"),
        _time("issued_at"),
        _time("expires_at"),
        _json("extra"),
        sa.CheckConstraint("format IN ('jwt', 'opaque')", name="ck_access_tokens_format"),
        *_owner_fks("access_tokens", user=False),
        sa.PrimaryKeyConstraint("token_id", name="pk_access_tokens"),
    )
    _indexes("access_tokens", "client_id", "expires_at", "grant_id", "subject")
    op.create_table(
        "revoked_access_tokens",
        _text("token_id"),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("token_id", name="pk_revoked_access_tokens"),
    )
    _indexes("revoked_access_tokens", "expires_at")
    op.create_table(
        "revoked_grants",
        _text("grant_id"),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("grant_id", name="pk_revoked_grants"),
    )
    op.create_table(
        "consents",
        _text("user_id"),
        _text("client_id"),
        _text("scope"),
        _time("granted_at"),
        *_owner_fks("consents", user=True),
        sa.PrimaryKeyConstraint("user_id", "client_id", name="pk_consents"),
    )
    _indexes("consents", "client_id")
    op.create_table(
        "signing_keys",
        _text("kid"),
        _text("alg"),
        _json("public_jwk"),
        _text("private_jwe"),
        _time("created_at"),
        _time("activates_at"),
        _time("retires_at", nullable=True),
        _time("expires_at", nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
    )
    op.create_table(
        "replay_entries",
        _text("key"),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("key", name="pk_replay_entries"),
    )
    _indexes("replay_entries", "expires_at")
    op.create_table(
        "throttle_hits",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        _text("key"),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_throttle_hits"),
    )
    op.create_index("ix_throttle_hits_key_at", "throttle_hits", ["key", "at"])
    op.create_table(
        "audit_events",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        _text("event"),
        _time("at"),
        _text("client_id", nullable=True),
        _text("user_id", nullable=True),
        _text("grant_id", nullable=True),
        _text("address", nullable=True),
        _json("detail"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    _indexes("audit_events", "at")


def downgrade() -> None:
    for table in (
        "audit_events",
        "throttle_hits",
        "replay_entries",
        "signing_keys",
        "consents",
        "revoked_grants",
        "revoked_access_tokens",
        "access_tokens",
        "refresh_tokens",
        "authorization_codes",
        "users",
        "clients",
    ):
        op.drop_table(table)
