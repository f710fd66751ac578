"""`SqlConsentStore`: what each user approved for each client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import Consent

from ._database import Database
from ._schema import consents, words_set, words_text
from ._text import check_storable, is_storable

_k = consents.c
_THIS: Final = (_k.user_id == bindparam("p_user")) & (_k.client_id == bindparam("p_client"))
_GET: Final = select(consents).where(_THIS)
_REVOKE: Final = delete(consents).where(_THIS).returning(_k.user_id)
_FOR_USER: Final = select(consents).where(_k.user_id == bindparam("p_user")).order_by(_k.client_id)


class SqlConsentStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        insert = db.insert(consents)
        self._put = insert.on_conflict_do_update(
            index_elements=[_k.user_id, _k.client_id],
            set_={
                "scope": insert.excluded.scope,
                "granted_at": insert.excluded.granted_at,
                "claims": insert.excluded.claims,
            },
        )

    async def get(self, user_id: str, client_id: str) -> Consent | None:
        if not (is_storable(user_id) and is_storable(client_id)):
            return None
        params = {"p_user": user_id, "p_client": client_id}
        row = await self._db.read(lambda conn: conn.execute(_GET, params).mappings().first())
        return None if row is None else _consent(row)

    async def put(self, consent: Consent) -> None:
        check_storable(consent.user_id, consent.client_id, more=(*consent.scope, *consent.claims))
        values = {
            "user_id": consent.user_id,
            "client_id": consent.client_id,
            "scope": words_text(consent.scope),
            "granted_at": consent.granted_at,
            "claims": words_text(consent.claims) if consent.claims else None,
        }
        try:
            await self._db.write(lambda conn: conn.execute(self._put, values))
        except IntegrityError:
            raise ValueError("consent names an unknown client or user") from None

    async def revoke(self, user_id: str, client_id: str) -> bool:
        if not (is_storable(user_id) and is_storable(client_id)):
            return False
        params = {"p_user": user_id, "p_client": client_id}
        return await self._db.write(lambda conn: conn.execute(_REVOKE, params).first() is not None)

    async def list_for_user(self, user_id: str) -> Sequence[Consent]:
        if not is_storable(user_id):
            return []
        params = {"p_user": user_id}
        rows = await self._db.read(lambda conn: conn.execute(_FOR_USER, params).mappings().all())
        return [_consent(row) for row in rows]


def _consent(row: RowMapping) -> Consent:
    return Consent(
        user_id=row["user_id"],
        client_id=row["client_id"],
        scope=words_set(row["scope"]),
        granted_at=int(row["granted_at"]),
        claims=words_set(row["claims"]) if row["claims"] else frozenset(),
    )
