"""`SqlApiStore`: the protected resources (APIs) tokens may be asked for (RFC 8707)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import Api

from ._database import Database
from ._schema import apis, words_set, words_text
from ._text import check_storable, is_storable

_a = apis.c
_GET: Final = select(apis).where(_a.identifier == bindparam("p_identifier"))
_ADD: Final = insert(apis)
_LIST: Final = select(apis).order_by(_a.identifier)
_DELETE: Final = (
    delete(apis).where(_a.identifier == bindparam("p_identifier")).returning(_a.identifier)
)


class SqlApiStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, identifier: str) -> Api | None:
        if not is_storable(identifier):
            return None
        params = {"p_identifier": identifier}
        row = await self._db.read(lambda conn: conn.execute(_GET, params).mappings().first())
        return None if row is None else _api(row)

    async def add(self, api: Api) -> None:
        check_storable(api.identifier, more=tuple(api.scopes))
        values = {
            "identifier": api.identifier,
            "scopes": words_text(api.scopes),
            "created_at": api.created_at,
        }
        try:
            await self._db.write(lambda conn: conn.execute(_ADD, values))
        except IntegrityError:
            raise ValueError(f"API {api.identifier!r} exists") from None

    async def list(self) -> Sequence[Api]:
        rows = await self._db.read(lambda conn: conn.execute(_LIST).mappings().all())
        return [_api(row) for row in rows]

    async def delete(self, identifier: str) -> bool:
        if not is_storable(identifier):
            return False
        params = {"p_identifier": identifier}
        return await self._db.write(lambda conn: conn.execute(_DELETE, params).first() is not None)


def _api(row: RowMapping) -> Api:
    return Api(
        identifier=row["identifier"],
        scopes=words_set(row["scopes"]),
        created_at=int(row["created_at"]),
    )
