"""`SqlKeyStore`: the server's signing keys (private parts only as the server's JWE)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import SigningKey

from ._database import Database
from ._schema import json_copy, signing_keys
from ._text import check_storable

_k = signing_keys.c
_ADD: Final = insert(signing_keys)
_LIST: Final = select(signing_keys).order_by(_k.created_at.desc(), _k.kid.desc())
_UPDATE: Final = update(signing_keys).where(_k.kid == bindparam("p_kid")).returning(_k.kid)


class SqlKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, key: SigningKey) -> None:
        check_storable(key.kid, key.alg, key.private_jwe)
        values = {"kid": key.kid, **_values(key)}
        try:
            await self._db.write(lambda conn: conn.execute(_ADD, values))
        except IntegrityError:
            raise ValueError(f"key {key.kid!r} exists") from None

    async def list(self) -> Sequence[SigningKey]:
        rows = await self._db.read(lambda conn: conn.execute(_LIST).mappings().all())
        return [_signing_key(row) for row in rows]

    async def update(self, key: SigningKey) -> None:
        check_storable(key.kid, key.alg, key.private_jwe)
        statement = _UPDATE.values(_values(key))
        params = {"p_kid": key.kid}
        found = await self._db.write(
            lambda conn: conn.execute(statement, params).first() is not None
        )
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
