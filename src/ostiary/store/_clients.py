"""`SqlClientStore`: registered applications.

Every token request looks its client up. On PostgreSQL that is a round trip for a row that
changes only when an operator edits the client, so each process caches clients while it
listens for changes (`_notifications.py`): every write here sends `NOTIFY` on
`CLIENTS_CHANNEL` in its transaction, and any notification, or a lost listening
connection, empties the cache. A write that changes clients anywhere else must notify too.
On SQLite, where every process shares one file, the cache follows `PRAGMA data_version`
(`DataVersion`): any commit by another connection empties it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Final, TypeVar

from sqlalchemy import bindparam, delete, func, insert, select, union, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import Client, ClientOidc

from ._database import Database
from ._fast import FastStatement
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

T = TypeVar("T")

CLIENTS_CHANNEL: Final = "ostiary_clients"
CACHE_SIZE: Final = 10_000  # clients kept per process; past it the cache starts over

_c = clients.c
# Statements are built once: building one costs more than running it on SQLite.
_GET: Final = select(clients).where(_c.client_id == bindparam("p_client"))
_GET_FAST: Final = FastStatement(_GET)  # every token request
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
_NOTIFY: Final = select(func.pg_notify(CLIENTS_CHANNEL, bindparam("p_client")))
_DELETE: Final = (
    delete(clients).where(_c.client_id == bindparam("p_client")).returning(_c.client_id)
)


class SqlClientStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._changes = db.changes(CLIENTS_CHANNEL)
        # client_id -> (generation, client)
        self._cache: dict[str, tuple[Hashable, Client]] = {}

    async def get(self, client_id: str) -> Client | None:
        if not is_storable(client_id):
            return None
        changes = self._changes
        changes.start()
        cached = self._cache.get(client_id)
        if cached is not None and changes.active and cached[0] == changes.generation:
            return cached[1]
        generation = changes.generation
        client = await self._read(client_id)
        # Unknown ids are never cached: a caller must not be able to fill the cache.
        if client is not None and changes.active and changes.generation == generation:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[client_id] = (generation, client)
        return client

    async def _read(self, client_id: str) -> Client | None:
        row = await self._db.fast_read(_GET_FAST, {"p_client": client_id})
        return None if row is None else _client(row)

    def _notify(self, conn: Connection, client_id: str) -> None:
        if self._db.is_postgresql:
            conn.execute(_NOTIFY, {"p_client": client_id})

    async def _write(self, work: Callable[[Connection], T], *, bulk: bool = False) -> T:
        """A write that changes clients. This process forgets its cache as soon as the
        write ends, without waiting for its own notification to come back; a lookup that
        began before then does not cache what it read (its generation has passed)."""
        try:
            return await self._db.write(work, bulk=bulk)
        finally:
            self._changes.changed_here()

    async def add(self, client: Client) -> None:
        values = _values(client)

        def work(conn: Connection) -> None:
            conn.execute(_ADD, values)
            self._notify(conn, client.client_id)

        try:
            await self._write(work)
        except IntegrityError:
            raise ValueError(f"client {client.client_id!r} exists") from None

    async def update(self, client: Client) -> bool:
        """Replace every field of the client with this client_id; False if unknown."""
        values = _values(client)
        values["p_client"] = values.pop("client_id")
        values.pop("created_at")

        def work(conn: Connection) -> bool:
            found = conn.execute(_UPDATE, values).first() is not None
            if found:
                self._notify(conn, client.client_id)
            return found

        return await self._write(work)

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
            deleted = conn.execute(_DELETE, params).first() is not None
            if deleted:
                self._notify(conn, client_id)
            return deleted

        return await self._write(work, bulk=True)


def _values(client: Client) -> dict[str, Any]:
    """The row of a client, every text in it checked storable first."""
    check_storable(
        client.client_id,
        client.name,
        client.secret_hash,
        client.oidc.sector_identifier,
        client.oidc.backchannel_logout_uri,
        client.oidc.frontchannel_logout_uri,
        more=(
            *client.redirect_uris,
            *client.grant_types,
            *client.scopes,
            *client.oidc.post_logout_redirect_uris,
        ),
    )
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


def _client(row: Mapping[Any, Any]) -> Client:
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
        "backchannel_logout_uri": oidc.backchannel_logout_uri,
        "backchannel_logout_session_required": oidc.backchannel_logout_session_required,
        "frontchannel_logout_uri": oidc.frontchannel_logout_uri,
        "frontchannel_logout_session_required": oidc.frontchannel_logout_session_required,
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
        backchannel_logout_uri=value.get("backchannel_logout_uri"),
        backchannel_logout_session_required=bool(
            value.get("backchannel_logout_session_required", False)
        ),
        # absent from rows written before Front-Channel Logout: the defaults
        frontchannel_logout_uri=value.get("frontchannel_logout_uri"),
        frontchannel_logout_session_required=bool(
            value.get("frontchannel_logout_session_required", False)
        ),
    )
