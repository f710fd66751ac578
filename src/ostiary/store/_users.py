"""`SqlUserStore`: resource owners (passwords only as the Argon2id hashes given)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, union
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import User

from ._database import Database
from ._schema import access_tokens, authorization_codes, refresh_tokens, users
from ._tokens import record_revoked_grants


class SqlUserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: str) -> User | None:
        return await self._one(select(users).where(users.c.user_id == user_id))

    async def by_username(self, username: str) -> User | None:
        return await self._one(select(users).where(users.c.username == username))

    async def add(self, user: User) -> None:
        values = {
            "user_id": user.user_id,
            "username": user.username,
            "password_hash": user.password_hash,
            "created_at": user.created_at,
        }
        try:
            async with self._db.write() as conn:
                await conn.execute(insert(users).values(values))
        except IntegrityError:
            raise ValueError(f"user {user.username!r} exists") from None

    async def list(self) -> Sequence[User]:
        async with self._db.read() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).mappings().all()
        return [_user(row) for row in rows]

    async def delete(self, user_id: str) -> bool:
        """Delete the user; their codes, refresh tokens and consents go too (ON DELETE
        CASCADE), and every grant they hold is revoked, so their access tokens read inactive."""
        grants = union(
            select(authorization_codes.c.grant_id).where(authorization_codes.c.user_id == user_id),
            select(refresh_tokens.c.grant_id).where(refresh_tokens.c.user_id == user_id),
            select(access_tokens.c.grant_id).where(
                access_tokens.c.subject == user_id, access_tokens.c.grant_id.is_not(None)
            ),
        )
        async with self._db.write() as conn:
            grant_ids = (await conn.execute(grants)).scalars().all()
            await record_revoked_grants(self._db, conn, grant_ids, revoked_at=None)
            result = await conn.execute(
                delete(users).where(users.c.user_id == user_id).returning(users.c.user_id)
            )
            return result.first() is not None

    async def _one(self, query: Any) -> User | None:
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _user(row)


def _user(row: RowMapping) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        password_hash=row["password_hash"],
        created_at=int(row["created_at"]),
    )
