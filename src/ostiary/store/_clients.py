"""`SqlClientStore`: registered applications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, union
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import Client

from ._database import Database
from ._schema import (
    access_tokens,
    authorization_codes,
    clients,
    json_copy,
    refresh_tokens,
    words_set,
    words_text,
)
from ._tokens import record_revoked_grants


class SqlClientStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, client_id: str) -> Client | None:
        async with self._db.read() as conn:
            result = await conn.execute(select(clients).where(clients.c.client_id == client_id))
            row = result.mappings().first()
        return None if row is None else _client(row)

    async def add(self, client: Client) -> None:
        try:
            async with self._db.write() as conn:
                await conn.execute(insert(clients).values(_values(client)))
        except IntegrityError:
            raise ValueError(f"client {client.client_id!r} exists") from None

    async def list(self) -> Sequence[Client]:
        query = select(clients).order_by(clients.c.created_at, clients.c.client_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_client(row) for row in rows]

    async def delete(self, client_id: str) -> bool:
        """Delete the client; its codes, tokens and consents go with it (ON DELETE CASCADE)."""
        grants = union(
            select(authorization_codes.c.grant_id).where(
                authorization_codes.c.client_id == client_id
            ),
            select(refresh_tokens.c.grant_id).where(refresh_tokens.c.client_id == client_id),
            select(access_tokens.c.grant_id).where(
                access_tokens.c.client_id == client_id, access_tokens.c.grant_id.is_not(None)
            ),
        )
        async with self._db.write() as conn:
            grant_ids = (await conn.execute(grants)).scalars().all()
            # A JWT of a deleted client may still be presented for introspection.
            await record_revoked_grants(self._db, conn, grant_ids, revoked_at=None)
            result = await conn.execute(
                delete(clients)
                .where(clients.c.client_id == client_id)
                .returning(clients.c.client_id)
            )
            return result.first() is not None


def _values(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "auth_method": client.auth_method,
        "secret_hash": client.secret_hash,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": words_text(client.grant_types),
        "scopes": words_text(client.scopes),
        "jwks": None if client.jwks is None else json_copy(client.jwks),
        "token_format": client.token_format,
        "legacy_password_grant": client.legacy_password_grant,
        "created_at": client.created_at,
    }


def _client(row: RowMapping) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        auth_method=row["auth_method"],
        secret_hash=row["secret_hash"],
        redirect_uris=tuple(row["redirect_uris"]),
        grant_types=words_set(row["grant_types"]),
        scopes=words_set(row["scopes"]),
        jwks=row["jwks"],
        token_format=row["token_format"],
        legacy_password_grant=bool(row["legacy_password_grant"]),
        created_at=int(row["created_at"]),
    )
