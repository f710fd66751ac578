"""The tables, as SQLAlchemy Core metadata, and how model fields are held in columns.

Alembic revisions in `migrations/versions/` create these tables; `tests/store` checks that a
migrated database matches this metadata exactly. Times are integer Unix seconds. Scopes and
grant types are space-separated (RFC 6749 §3.3 scope syntax: no token contains a space).
Secrets, codes and refresh tokens appear only as the hashes the protocol core computes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

# A 64-bit key that is still SQLite's rowid alias (only INTEGER PRIMARY KEY autoincrements).
ROW_ID: Final = BigInteger().with_variant(Integer, "sqlite")

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

VERSION_TABLE: Final = "ostiary_schema_version"  # not `alembic_version`: never collide

REFRESH_STATES: Final = ("live", "rotated", "revoked")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

clients = Table(
    "clients",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("auth_method", Text, nullable=False),
    Column("secret_hash", Text),
    Column("redirect_uris", JSON, nullable=False),
    Column("grant_types", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("jwks", JSON),
    Column("token_format", Text, nullable=False),
    Column("legacy_password_grant", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("oidc", JSON),  # ClientOidc; NULL reads as its defaults
)

users = Table(
    "users",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("claims", JSON),  # OpenID Connect standard claims; NULL reads as none
)


# The protected resources tokens may be asked for (RFC 8707); `identifier` becomes `aud`.
apis = Table(
    "apis",
    metadata,
    Column("identifier", Text, primary_key=True),
    Column("scopes", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)


def _client_fk() -> ForeignKey:
    # Deleting a client removes everything issued to it (ClientStore.delete).
    return ForeignKey("clients.client_id", ondelete="CASCADE")


def _user_fk() -> ForeignKey:
    return ForeignKey("users.user_id", ondelete="CASCADE")


authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", Text, primary_key=True),
    Column("grant_id", Text, nullable=False),
    Column("client_id", Text, _client_fk(), nullable=False, index=True),
    Column("user_id", Text, _user_fk(), nullable=False, index=True),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", Text, nullable=False),
    Column("resources", JSON, nullable=False),
    Column("nonce", Text),
    Column("auth_time", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("used_at", BigInteger),  # set once, by the first redemption
    Column("claims", JSON),  # the `claims` request parameter (OpenID Connect Core §5.5)
    # the login session it was issued in (revision 0009), found by it (revision 0010)
    Column("sid", Text, index=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("grant_id", Text, nullable=False, index=True),
    Column("client_id", Text, _client_fk(), nullable=False, index=True),
    Column("user_id", Text, _user_fk(), index=True),
    Column("scope", Text, nullable=False),
    Column("resources", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("auth_time", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("changed_at", BigInteger),  # when it was rotated or revoked
    Column("jkt", Text),  # RFC 9449 §5: the DPoP key a public client's token is bound to
    Column("claims", JSON),  # the grant's `claims` request parameter, for the whole family
    # the login session its grant was made in (revision 0009), found by it (revision 0010)
    Column("sid", Text, index=True),
    CheckConstraint("state IN ('live', 'rotated', 'revoked')", name="state"),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("token_id", Text, primary_key=True),  # jti, or the hash of an opaque value
    Column("format", Text, nullable=False),
    Column("client_id", Text, _client_fk(), nullable=False, index=True),
    Column("grant_id", Text, index=True),
    Column("subject", Text, nullable=False, index=True),
    Column("scope", Text, nullable=False),
    Column("audience", JSON, nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("extra", JSON, nullable=False),
    CheckConstraint("format IN ('jwt', 'opaque')", name="format"),
)

# A revoked access token stays listed until it would have expired anyway (RFC 7009 §2.2),
# whether or not it was ever stored in `access_tokens`.
revoked_access_tokens = Table(
    "revoked_access_tokens",
    metadata,
    Column("token_id", Text, primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

# A revoked grant (a refresh family, or what a replayed code issued) stays revoked while a
# token of it may be presented, or written after the revocation by a racing request: the
# purge removes it only once every code and token of it expired (`_purge.py`).
revoked_grants = Table(
    "revoked_grants",
    metadata,
    Column("grant_id", Text, primary_key=True),
    Column("revoked_at", BigInteger),  # None when revoked because its client or user went
)

consents = Table(
    "consents",
    metadata,
    Column("user_id", Text, _user_fk(), nullable=False),
    Column("client_id", Text, _client_fk(), nullable=False, index=True),
    Column("scope", Text, nullable=False),
    Column("granted_at", BigInteger, nullable=False),
    Column("claims", Text),  # claims approved one by one (space-separated); NULL: none
    PrimaryKeyConstraint("user_id", "client_id"),
)

# A person's sign-in (OpenID Connect provider session), by the hash of its id: the browser
# cookie names it, logout and `ostiary users sign-out` end it.
login_sessions = Table(
    "login_sessions",
    metadata,
    Column("session_hash", Text, primary_key=True),
    Column("user_id", Text, _user_fk(), nullable=False, index=True),
    Column("auth_time", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("ended_at", BigInteger),
    # Back-Channel Logout 1.0 §2.1 `sid`: random, apart from the hash (revision 0009)
    Column("sid", Text),
    Index(None, "sid", unique=True),
)

# Which clients were issued a code in which login session: who hears when it ends.
session_clients = Table(
    "session_clients",
    metadata,
    Column(
        "session_hash",
        Text,
        ForeignKey("login_sessions.session_hash", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("client_id", Text, _client_fk(), nullable=False, index=True),
    Column("joined_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("session_hash", "client_id"),
)

# Logout tokens still to be posted (Back-Channel Logout 1.0 §2.5): written with the end of
# the session, sent by a running server, deleted once delivered or given up. No user foreign
# key: a deleted user's clients must still hear of it.
logout_deliveries = Table(
    "logout_deliveries",
    metadata,
    Column("delivery_id", ROW_ID, primary_key=True, autoincrement=True),
    Column("client_id", Text, _client_fk(), nullable=False, index=True),
    Column("user_id", Text, nullable=False),
    Column("sid", Text),
    Column("jti", Text, nullable=False, unique=True),
    Column("reason", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False, index=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("alg", Text, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("private_jwe", Text, nullable=False),  # the private JWK, encrypted by the server
    Column("created_at", BigInteger, nullable=False),
    Column("activates_at", BigInteger, nullable=False),
    Column("retires_at", BigInteger),
    Column("expires_at", BigInteger),
)

replay_entries = Table(
    "replay_entries",
    metadata,
    Column("key", Text, primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

throttle_hits = Table(
    "throttle_hits",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Index(None, "key", "at"),
)

# Requests per key (a client at the token endpoint) per fixed window, added in batches by
# every server process (`server/rate_limit.py`).
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("key", Text, primary_key=True),
    Column("window", BigInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

# The penalty of each key past a shared limit (`oauth/rate_limits.py`): a client past its
# token budget again and again, an address failing client authentication.
rate_penalties = Table(
    "rate_penalties",
    metadata,
    Column("key", Text, primary_key=True),
    Column("strikes", BigInteger, nullable=False),
    Column("struck_at", BigInteger, nullable=False),
    Column("until", BigInteger, nullable=False),
    Column("forget_at", BigInteger, nullable=False, index=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("event", Text, nullable=False),
    Column("at", BigInteger, nullable=False, index=True),
    Column("client_id", Text),  # no foreign keys: the record outlives what it names
    Column("user_id", Text),
    Column("grant_id", Text),
    Column("address", Text),
    Column("detail", JSON, nullable=False),
)


def words_text(words: Iterable[str]) -> str:
    """A set of scope tokens (or grant types) as one column value, in a stable order."""
    ordered = sorted(words)
    if any(not word or len(word.split()) != 1 or word.strip() != word for word in ordered):
        # RFC 6749 §3.3: a scope token is 1*NQCHAR, never empty and never with a space
        raise ValueError("a scope token or grant type is empty or holds whitespace")
    return " ".join(ordered)


def words_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


def json_copy(value: Mapping[str, Any]) -> dict[str, Any]:
    """A plain, JSON-safe copy: what the column will hold, checked before it is written."""
    try:
        copied: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"not JSON-serialisable: {exc}") from exc
    return copied
