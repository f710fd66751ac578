"""`SqlKeyStore`: the server's signing keys (private parts only as the server's JWE)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import SigningKey

from ._database import Database
from ._schema import json_copy, signing_keys

_key = signing_keys.c


class SqlKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, key: SigningKey) -> None:
        try:
            async with self._db.write() as conn:
                await conn.execute(insert(signing_keys).values(kid=key.kid, **_values(key)))
        except IntegrityError:
            raise ValueError(f"key {key.kid!r} exists") from None

    async def list(self) -> Sequence[SigningKey]:
        query = select(signing_keys).order_by(_key.created_at.desc(), _key.kid.desc())
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_signing_key(row) for row in rows]

    async def update(self, key: SigningKey) -> None:
        statement = (
            update(signing_keys).where(_key.kid == key.kid).values(_values(key)).returning(_key.kid)
        )
        async with self._db.write() as conn:
            found = (await conn.execute(statement)).first() is not None
        if not found:
            raise ValueError(f"key {key.kid!r} does not exist")


def _values(key: SigningKey) -> dict[str, Any]:
    return {
        "alg": key.alg,
        "public_jwk": json_copy(key.public_jwk),
        "private_jwe": key.private_jwe,
        "created_at": key.created_at,
        "activates_at": key.activates_at,
        "retires_at": key.retires_at,
        "expires_at": key.expires_at,
    }


def _signing_key(row: RowMapping) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        alg=row["alg"],
        public_jwk=row["public_jwk"],
        private_jwe=row["private_jwe"],
        created_at=int(row["created_at"]),
        activates_at=int(row["activates_at"]),
        retires_at=None if row["retires_at"] is None else int(row["retires_at"]),
        expires_at=None if row["expires_at"] is None else int(row["expires_at"]),
    )
