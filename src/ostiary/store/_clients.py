"""`SqlClientStore`: registered applications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import bindparam, delete, insert, select, union, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import Client, ClientOidc

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
from ._text import check_storable, is_storable
from ._tokens import record_revoked_grants

_c = clients.c
# Statements are built once: building one costs more than running it on SQLite.
_GET: Final = select(clients).where(_c.client_id == bindparam("p_client"))
_ADD: Final = insert(clients)
_UPDATE: Final = (
    update(clients).where(_c.client_id == bindparam("p_client")).returning(_c.client_id)
)
_LIST: Final = select(clients).order_by(_c.created_at, _c.client_id)
_GRANTS: Final = union(
    select(authorization_codes.c.grant_id).where(
        authorization_codes.c.client_id == bindparam("p_client")
    ),
    select(refresh_tokens.c.grant_id).where(refresh_tokens.c.client_id == bindparam("p_client")),
    select(access_tokens.c.grant_id).where(
        access_tokens.c.client_id == bindparam("p_client"), access_tokens.c.grant_id.is_not(None)
    ),
)
_DELETE: Final = (
    delete(clients).where(_c.client_id == bindparam("p_client")).returning(_c.client_id)
)


class SqlClientStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, client_id: str) -> Client | None:
        if not is_storable(client_id):
            return None
        params = {"p_client": client_id}
        row = await self._db.read(lambda conn: conn.execute(_GET, params).mappings().first())
        return None if row is None else _client(row)

    async def add(self, client: Client) -> None:
        check_storable(
            client.client_id,
            client.name,
            client.secret_hash,
            client.oidc.sector_identifier,
            more=(
                *client.redirect_uris,
                *client.grant_types,
                *client.scopes,
                *client.oidc.post_logout_redirect_uris,
            ),
        )
        values = _values(client)
        try:
            await self._db.write(lambda conn: conn.execute(_ADD, values))
        except IntegrityError:
            raise ValueError(f"client {client.client_id!r} exists") from None

    async def update(self, client: Client) -> bool:
        """Replace every field of the client with this client_id; False if unknown."""
        check_storable(
            client.client_id,
            client.name,
            client.secret_hash,
            client.oidc.sector_identifier,
            more=(
                *client.redirect_uris,
                *client.grant_types,
                *client.scopes,
                *client.oidc.post_logout_redirect_uris,
            ),
        )
        values = _values(client)
        values["p_client"] = values.pop("client_id")
        values.pop("created_at")
        found = await self._db.write(lambda conn: conn.execute(_UPDATE, values).first())
        return found is not None

    async def list(self) -> Sequence[Client]:
        rows = await self._db.read(lambda conn: conn.execute(_LIST).mappings().all())
        return [_client(row) for row in rows]

    async def delete(self, client_id: str) -> bool:
        """Delete the client; its codes, tokens and consents go with it (ON DELETE CASCADE)."""
        if not is_storable(client_id):
            return False
        params = {"p_client": client_id}

        def work(conn: Connection) -> bool:
            # A JWT of a deleted client may still be presented for introspection.
            grant_ids = conn.execute(_GRANTS, params).scalars().all()
            record_revoked_grants(self._db, conn, grant_ids, revoked_at=None)
            return conn.execute(_DELETE, params).first() is not None

        return await self._db.write(work, bulk=True)


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
        "oidc": _oidc_values(client.oidc),
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
        oidc=_oidc(row["oidc"]),
    )


def _oidc_values(oidc: ClientOidc) -> dict[str, Any] | None:
    if oidc == ClientOidc():
        return None
    return {
        "id_token_signed_response_alg": oidc.id_token_signed_response_alg,
        "userinfo_signed_response_alg": oidc.userinfo_signed_response_alg,
        "subject_type": oidc.subject_type,
        "sector_identifier": oidc.sector_identifier,
        "post_logout_redirect_uris": list(oidc.post_logout_redirect_uris),
        "registration_token_hash": oidc.registration_token_hash,
    }


def _oidc(value: dict[str, Any] | None) -> ClientOidc:
    if not value:
        return ClientOidc()
    return ClientOidc(
        id_token_signed_response_alg=value["id_token_signed_response_alg"],
        userinfo_signed_response_alg=value["userinfo_signed_response_alg"],
        subject_type=value["subject_type"],
        sector_identifier=value["sector_identifier"],
        post_logout_redirect_uris=tuple(value["post_logout_redirect_uris"]),
        registration_token_hash=value.get("registration_token_hash"),
    )
