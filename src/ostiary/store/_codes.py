"""`SqlCodeStore`: authorization codes, redeemable once (RFC 6749 §4.1.2, §10.5)."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import AuthorizationCode, CodeConsumption

from ._database import Database
from ._schema import authorization_codes as codes
from ._schema import words_set, words_text


class SqlCodeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, code: AuthorizationCode) -> None:
        values = {
            "code_hash": code.code_hash,
            "grant_id": code.grant_id,
            "client_id": code.client_id,
            "user_id": code.user_id,
            "redirect_uri": code.redirect_uri,
            "scope": words_text(code.scope),
            "code_challenge": code.code_challenge,
            "resources": list(code.resources),
            "nonce": code.nonce,
            "auth_time": code.auth_time,
            "created_at": code.created_at,
            "expires_at": code.expires_at,
            "used_at": None,
        }
        try:
            async with self._db.write() as conn:
                await conn.execute(insert(codes).values(values))
        except IntegrityError:
            raise ValueError("code exists, or names an unknown client or user") from None

    async def peek(self, code_hash: str) -> AuthorizationCode | None:
        query = select(codes).where(codes.c.code_hash == code_hash)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _code(row)

    async def consume(self, code_hash: str, *, now: int) -> CodeConsumption:
        # One conditional UPDATE is the whole race: of any number of concurrent redemptions,
        # exactly one finds `used_at IS NULL` (PostgreSQL re-checks it on the committed row;
        # SQLite runs writers one at a time). A second redemption must be told apart from an
        # unknown code: RFC 6749 §4.1.2 says the server should then revoke what it issued.
        claim = (
            update(codes)
            .where(codes.c.code_hash == code_hash, codes.c.used_at.is_(None))
            .where(codes.c.expires_at > now)
            .values(used_at=now)
            .returning(*codes.c)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(claim)).mappings().first()
            if row is not None:
                return CodeConsumption(code=_code(row))
            query = select(codes).where(codes.c.code_hash == code_hash)
            row = (await conn.execute(query)).mappings().first()
        if row is not None and row["used_at"] is not None:
            return CodeConsumption(code=_code(row), replayed=True)
        return CodeConsumption(code=None)


def _code(row: RowMapping) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=row["code_hash"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        redirect_uri=row["redirect_uri"],
        scope=words_set(row["scope"]),
        code_challenge=row["code_challenge"],
        resources=tuple(row["resources"]),
        nonce=row["nonce"],
        auth_time=int(row["auth_time"]),
        created_at=int(row["created_at"]),
        expires_at=int(row["expires_at"]),
    )
