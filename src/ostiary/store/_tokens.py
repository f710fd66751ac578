"""`SqlTokenStore`: refresh tokens (rotating families), recorded access tokens, revocations.

A refresh token is `live`, then `rotated` (spent by a refresh) or `revoked`. Presenting a
rotated one again is what RFC 9700 §4.14.2 calls reuse: the caller then revokes the family.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, delete, exists, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ostiary.oauth.models import IssuedAccessToken, RefreshToken, Rotation

from ._database import Database
from ._schema import (
    access_tokens,
    authorization_codes,
    json_copy,
    refresh_tokens,
    replay_entries,
    revoked_access_tokens,
    revoked_grants,
    words_set,
    words_text,
)

_refresh = refresh_tokens.c
_access = access_tokens.c


class SqlTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_refresh(self, token: RefreshToken) -> None:
        try:
            async with self._db.write() as conn:
                await _insert_refresh(conn, token)
        except IntegrityError:
            raise ValueError("refresh token exists, or names an unknown client or user") from None

    async def rotate_refresh(
        self, token_hash: str, replacement: RefreshToken, *, now: int
    ) -> Rotation:
        # As with codes, one conditional UPDATE decides which of several concurrent refreshes
        # with the same token wins; the replacement is written in the same transaction.
        claim = (
            update(refresh_tokens)
            .where(_refresh.token_hash == token_hash, _is_live(now))
            .values(state="rotated", changed_at=now)
            .returning(*refresh_tokens.c)
        )
        try:
            async with self._db.write() as conn:
                row = (await conn.execute(claim)).mappings().first()
                if row is not None:
                    await _insert_refresh(conn, replacement)
                    return Rotation(status="rotated", previous=_refresh_token(row))
                query = select(refresh_tokens).where(_refresh.token_hash == token_hash)
                row = (await conn.execute(query)).mappings().first()
        except IntegrityError:
            raise ValueError("the replacement refresh token exists") from None
        if row is None:
            return Rotation(status="invalid")
        if row["state"] == "rotated":
            return Rotation(status="reused", previous=_refresh_token(row))
        return Rotation(status="invalid", previous=_refresh_token(row))

    async def find_refresh(self, token_hash: str, *, now: int) -> RefreshToken | None:
        query = select(refresh_tokens).where(_refresh.token_hash == token_hash, _is_live(now))
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _refresh_token(row)

    async def peek_refresh(self, token_hash: str) -> RefreshToken | None:
        query = select(refresh_tokens).where(_refresh.token_hash == token_hash)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _refresh_token(row)

    async def add_access(self, token: IssuedAccessToken) -> None:
        values = {
            "token_id": token.token_id,
            "format": token.format,
            "client_id": token.client_id,
            "grant_id": token.grant_id,
            "subject": token.subject,
            "scope": words_text(token.scope),
            "audience": list(token.audience),
            "issued_at": token.issued_at,
            "expires_at": token.expires_at,
            "extra": json_copy(token.extra),
        }
        try:
            async with self._db.write() as conn:
                await conn.execute(insert(access_tokens).values(values))
        except IntegrityError:
            raise ValueError("access token exists, or names an unknown client") from None

    async def find_access(self, token_id: str) -> IssuedAccessToken | None:
        query = select(access_tokens).where(_access.token_id == token_id)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _access_token(row)

    async def revoke_access(self, token_id: str, *, expires_at: int, now: int) -> None:
        statement = self._db.insert(revoked_access_tokens).values(
            token_id=token_id, expires_at=expires_at
        )
        statement = statement.on_conflict_do_update(
            index_elements=[revoked_access_tokens.c.token_id],
            set_={"expires_at": statement.excluded.expires_at},
        )
        async with self._db.write() as conn:
            await conn.execute(statement)

    async def revoke_refresh(self, token_hash: str, *, now: int) -> RefreshToken | None:
        statement = (
            update(refresh_tokens)
            .where(_refresh.token_hash == token_hash)
            .values(state="revoked", changed_at=now)
            .returning(*refresh_tokens.c)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(statement)).mappings().first()
        return None if row is None else _refresh_token(row)

    async def revoke_grant(self, grant_id: str, *, now: int) -> int:
        # The grant itself is recorded too: a request racing this one may still write a
        # token of the grant, and every read checks `revoked_grants`.
        family = (
            update(refresh_tokens)
            .where(_refresh.grant_id == grant_id, _refresh.state != "revoked")
            .values(state="revoked", changed_at=now)
            .returning(_refresh.token_hash)
        )
        issued = select(_access.token_id, _access.expires_at).where(
            _access.grant_id == grant_id,
            ~exists().where(revoked_access_tokens.c.token_id == _access.token_id),
        )
        listed = (
            self._db.insert(revoked_access_tokens)
            .from_select(["token_id", "expires_at"], issued)
            .on_conflict_do_nothing(index_elements=[revoked_access_tokens.c.token_id])
            .returning(revoked_access_tokens.c.token_id)
        )
        async with self._db.write() as conn:
            await record_revoked_grants(self._db, conn, [grant_id], revoked_at=now)
            refreshes = len((await conn.execute(family)).all())
            accesses = len((await conn.execute(listed)).all())
        return refreshes + accesses

    async def is_revoked(self, token_id: str, grant_id: str | None) -> bool:
        revoked: ColumnElement[bool] = exists().where(revoked_access_tokens.c.token_id == token_id)
        if grant_id is not None:
            revoked = or_(revoked, exists().where(revoked_grants.c.grant_id == grant_id))
        async with self._db.read() as conn:
            return bool((await conn.execute(select(revoked))).scalar())

    async def purge_expired(self, *, now: int) -> int:
        """Delete expired codes, refresh and access tokens, revocations and replay entries.

        Revoked grants stay (see `revoked_grants`); throttle hits are pruned as they are hit.
        """
        tables = (
            (authorization_codes, authorization_codes.c.expires_at),
            (refresh_tokens, _refresh.expires_at),
            (access_tokens, _access.expires_at),
            (revoked_access_tokens, revoked_access_tokens.c.expires_at),
            (replay_entries, replay_entries.c.expires_at),
        )
        gone = 0
        async with self._db.write() as conn:
            for table, expires_at in tables:
                result = await conn.execute(delete(table).where(expires_at <= now))
                gone += result.rowcount
        return gone


async def record_revoked_grants(
    db: Database, conn: AsyncConnection, grant_ids: Iterable[str], *, revoked_at: int | None
) -> None:
    """Mark grants revoked for good, inside the caller's write transaction."""
    rows = [{"grant_id": grant_id, "revoked_at": revoked_at} for grant_id in set(grant_ids)]
    if rows:
        statement = db.insert(revoked_grants).on_conflict_do_nothing(
            index_elements=[revoked_grants.c.grant_id]
        )
        await conn.execute(statement, rows)


def _is_live(now: int) -> ColumnElement[bool]:
    # exp == now is expired, as everywhere in Ostiary (RFC 7519 §4.1.4 "on or after")
    return (
        (_refresh.state == "live")
        & (_refresh.expires_at > now)
        & ~exists().where(revoked_grants.c.grant_id == _refresh.grant_id)
    )


async def _insert_refresh(conn: AsyncConnection, token: RefreshToken) -> None:
    values = {
        "token_hash": token.token_hash,
        "grant_id": token.grant_id,
        "client_id": token.client_id,
        "user_id": token.user_id,
        "scope": words_text(token.scope),
        "resources": list(token.resources),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "auth_time": token.auth_time,
        "state": "live",
        "changed_at": None,
    }
    await conn.execute(insert(refresh_tokens).values(values))


def _refresh_token(row: RowMapping) -> RefreshToken:
    return RefreshToken(
        token_hash=row["token_hash"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        scope=words_set(row["scope"]),
        resources=tuple(row["resources"]),
        created_at=int(row["created_at"]),
        expires_at=int(row["expires_at"]),
        auth_time=int(row["auth_time"]),
    )


def _access_token(row: RowMapping) -> IssuedAccessToken:
    return IssuedAccessToken(
        token_id=row["token_id"],
        format=row["format"],
        client_id=row["client_id"],
        grant_id=row["grant_id"],
        subject=row["subject"],
        scope=words_set(row["scope"]),
        audience=tuple(row["audience"]),
        issued_at=int(row["issued_at"]),
        expires_at=int(row["expires_at"]),
        extra=row["extra"],
    )
