"""`SqlUserStore`: resource owners (passwords only as the Argon2id hashes given)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import bindparam, delete, insert, select, union, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import User

from ._database import Database
from ._schema import access_tokens, authorization_codes, json_copy, refresh_tokens, users
from ._text import check_storable, is_storable
from ._tokens import record_revoked_grants

_u = users.c
_GET: Final = select(users).where(_u.user_id == bindparam("p_user"))
_BY_USERNAME: Final = select(users).where(_u.username == bindparam("p_username"))
_ADD: Final = insert(users)
_UPDATE: Final = update(users).where(_u.user_id == bindparam("p_user")).returning(_u.user_id)
_LIST: Final = select(users).order_by(_u.username)
_GRANTS: Final = union(
    select(authorization_codes.c.grant_id).where(
        authorization_codes.c.user_id == bindparam("p_user")
    ),
    select(refresh_tokens.c.grant_id).where(refresh_tokens.c.user_id == bindparam("p_user")),
    select(access_tokens.c.grant_id).where(
        access_tokens.c.subject == bindparam("p_user"), access_tokens.c.grant_id.is_not(None)
    ),
)
_DELETE: Final = delete(users).where(_u.user_id == bindparam("p_user")).returning(_u.user_id)


class SqlUserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: str) -> User | None:
        if not is_storable(user_id):
            return None
        return await self._one(_GET, {"p_user": user_id})

    async def by_username(self, username: str) -> User | None:
        if not is_storable(username):
            return None
        return await self._one(_BY_USERNAME, {"p_username": username})

    async def add(self, user: User) -> None:
        check_storable(user.user_id, user.username, user.password_hash)
        values = {
            "user_id": user.user_id,
            "username": user.username,
            "password_hash": user.password_hash,
            "created_at": user.created_at,
            "claims": _claims_value(user),
        }
        try:
            await self._db.write(lambda conn: conn.execute(_ADD, values))
        except IntegrityError:
            raise ValueError(f"user {user.username!r} exists") from None

    async def update(self, user: User) -> bool:
        """Replace the password hash and claims of `user.user_id`; False if unknown."""
        check_storable(user.user_id, user.password_hash)
        values = {
            "p_user": user.user_id,
            "password_hash": user.password_hash,
            "claims": _claims_value(user),
        }
        found = await self._db.write(lambda conn: conn.execute(_UPDATE, values).first())
        return found is not None

    async def list(self) -> Sequence[User]:
        rows = await self._db.read(lambda conn: conn.execute(_LIST).mappings().all())
        return [_user(row) for row in rows]

    async def delete(self, user_id: str) -> bool:
        """Delete the user; their codes, refresh tokens and consents go too (ON DELETE
        CASCADE), and every grant they hold is revoked, so their access tokens read inactive."""
        if not is_storable(user_id):
            return False
        params = {"p_user": user_id}

        def work(conn: Connection) -> bool:
            grant_ids = conn.execute(_GRANTS, params).scalars().all()
            record_revoked_grants(self._db, conn, grant_ids, revoked_at=None)
            return conn.execute(_DELETE, params).first() is not None

        return await self._db.write(work, bulk=True)

    async def _one(self, query: Any, params: dict[str, str]) -> User | None:
        row = await self._db.read(lambda conn: conn.execute(query, params).mappings().first())
        return None if row is None else _user(row)


def _user(row: RowMapping) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        password_hash=row["password_hash"],
        created_at=int(row["created_at"]),
        claims=row["claims"] or {},
    )


def _claims_value(user: User) -> dict[str, Any] | None:
    return json_copy(user.claims) if user.claims else None
