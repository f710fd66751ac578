"""`SqlConsentStore`: what each user approved for each client."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import Consent

from ._database import Database
from ._schema import consents, words_set, words_text


class SqlConsentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: str, client_id: str) -> Consent | None:
        query = select(consents).where(
            consents.c.user_id == user_id, consents.c.client_id == client_id
        )
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _consent(row)

    async def put(self, consent: Consent) -> None:
        statement = self._db.insert(consents).values(
            user_id=consent.user_id,
            client_id=consent.client_id,
            scope=words_text(consent.scope),
            granted_at=consent.granted_at,
        )
        statement = statement.on_conflict_do_update(
            index_elements=[consents.c.user_id, consents.c.client_id],
            set_={"scope": statement.excluded.scope, "granted_at": statement.excluded.granted_at},
        )
        try:
            async with self._db.write() as conn:
                await conn.execute(statement)
        except IntegrityError:
            raise ValueError("consent names an unknown client or user") from None

    async def revoke(self, user_id: str, client_id: str) -> bool:
        statement = (
            delete(consents)
            .where(consents.c.user_id == user_id, consents.c.client_id == client_id)
            .returning(consents.c.user_id)
        )
        async with self._db.write() as conn:
            return (await conn.execute(statement)).first() is not None

    async def list_for_user(self, user_id: str) -> Sequence[Consent]:
        query = select(consents).where(consents.c.user_id == user_id).order_by(consents.c.client_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_consent(row) for row in rows]


def _consent(row: RowMapping) -> Consent:
    return Consent(
        user_id=row["user_id"],
        client_id=row["client_id"],
        scope=words_set(row["scope"]),
        granted_at=int(row["granted_at"]),
    )
