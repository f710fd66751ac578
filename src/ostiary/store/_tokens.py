"""`SqlTokenStore`: refresh tokens (rotating families), recorded access tokens, revocations.

A refresh token is `live`, then `rotated` (spent by a refresh) or `revoked`. Presenting a
rotated one again is what RFC 9700 §4.14.2 calls reuse: the caller then revokes the family.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from sqlalchemy import (
    CTE,
    ColumnElement,
    Table,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.claims_request import claims_request_from_json, claims_request_json
from ostiary.oauth.models import (
    ClaimsRequest,
    Issuance,
    IssuedAccessToken,
    Purged,
    RefreshToken,
    Rotation,
)

from ._audit import RECORD, audit_values, log_audit_line
from ._database import Database, FastConnection
from ._fast import BatchLookup, BatchStatement, BatchValue, FastStatement, json_text
from ._purge import SqlPurge
from ._schema import (
    access_tokens,
    audit_events,
    authorization_codes,
    refresh_tokens,
    revoked_access_tokens,
    revoked_grants,
    words_set,
    words_text,
)
from ._text import check_storable, is_storable

_refresh = refresh_tokens.c
_access = access_tokens.c
_revoked = revoked_access_tokens.c


def _is_live() -> ColumnElement[bool]:
    # exp == now is expired, as everywhere in Ostiary (RFC 7519 §4.1.4 "on or after")
    return (
        (_refresh.state == "live")
        & (_refresh.expires_at > bindparam("p_now"))
        & ~exists().where(revoked_grants.c.grant_id == _refresh.grant_id)
    )


_ADD_REFRESH: Final = insert(refresh_tokens)
_PEEK_REFRESH: Final = select(refresh_tokens).where(_refresh.token_hash == bindparam("p_hash"))
_FIND_REFRESH: Final = _PEEK_REFRESH.where(_is_live())
# As with codes, one conditional UPDATE decides which of several concurrent refreshes of one
# token wins; the replacement is written in the same transaction.
_CLAIM_REFRESH: Final = (
    update(refresh_tokens)
    .where(_refresh.token_hash == bindparam("p_hash"), _is_live())
    .values(state="rotated", changed_at=bindparam("p_now"))
    .returning(*refresh_tokens.c)
)
_REVOKE_REFRESH: Final = (
    update(refresh_tokens)
    .where(_refresh.token_hash == bindparam("p_hash"))
    .values(state="revoked", changed_at=bindparam("p_now"))
    .returning(*refresh_tokens.c)
)
_REVOKE_FAMILY: Final = (
    update(refresh_tokens)
    .where(_refresh.grant_id == bindparam("p_grant"), _refresh.state != "revoked")
    .values(state="revoked", changed_at=bindparam("p_now"))
    .returning(_refresh.token_hash)
)
# What one user holds at one client (grant_id IS NULL: client_credentials, whose subject is
# a client_id, never a user's).
_OF_USER_CLIENT: Final = {
    "code": (authorization_codes.c.user_id == bindparam("p_user"))
    & (authorization_codes.c.client_id == bindparam("p_client")),
    "refresh": (_refresh.user_id == bindparam("p_user"))
    & (_refresh.client_id == bindparam("p_client")),
    "access": (_access.subject == bindparam("p_user"))
    & (_access.client_id == bindparam("p_client"))
    & _access.grant_id.is_not(None),
}
_USER_CLIENT_GRANTS: Final = union(
    select(authorization_codes.c.grant_id).where(_OF_USER_CLIENT["code"]),
    select(_refresh.grant_id).where(_OF_USER_CLIENT["refresh"]),
    select(_access.grant_id).where(_OF_USER_CLIENT["access"]),
)
_DELETE_USER_CLIENT_CODES: Final = delete(authorization_codes).where(_OF_USER_CLIENT["code"])
_REVOKE_USER_CLIENT_REFRESH: Final = (
    update(refresh_tokens)
    .where(_OF_USER_CLIENT["refresh"], _refresh.state != "revoked")
    .values(state="revoked", changed_at=bindparam("p_now"))
    .returning(_refresh.token_hash)
)
_USER_CLIENT_ACCESS: Final = select(_access.token_id, _access.expires_at).where(
    _OF_USER_CLIENT["access"], ~exists().where(_revoked.token_id == _access.token_id)
)
_ADD_ACCESS: Final = insert(access_tokens)
_FIND_ACCESS: Final = select(access_tokens).where(_access.token_id == bindparam("p_token"))
_GRANT_ACCESS: Final = select(_access.token_id, _access.expires_at).where(
    _access.grant_id == bindparam("p_grant"),
    ~exists().where(_revoked.token_id == _access.token_id),
)
# The refresh grant's statements, on the driver's own connection (see `_fast.py`).
# peeked at before every refresh: on PostgreSQL, the peeks of one turn share a round trip
_PEEK_REFRESH_LOOKUP: Final = BatchLookup(
    select(refresh_tokens), _refresh.token_hash, param="p_hash"
)
_PEEK_REFRESH_FAST: Final = _PEEK_REFRESH_LOOKUP.one
_CLAIM_REFRESH_FAST: Final = FastStatement(_CLAIM_REFRESH)
_ADD_REFRESH_FAST: Final = FastStatement(
    _ADD_REFRESH, insert_columns=[column.key for column in refresh_tokens.c]
)
_ADD_ACCESS_FAST: Final = FastStatement(
    _ADD_ACCESS, insert_columns=[column.key for column in access_tokens.c]
)


def _rotation_statement(*, access: bool, audit: bool) -> FastStatement:
    """PostgreSQL: claim the token, store its replacement and record the issuance (the
    access token when it is kept, the audit event) in one statement, so one round trip.
    Its data-modifying CTEs run as one, at READ COMMITTED: a competing rotation makes the
    UPDATE wait and re-check, as `_CLAIM_REFRESH` alone; each INSERT writes only if the
    claim did."""
    claimed = _CLAIM_REFRESH.cte("claimed")
    if_claimed = exists(select(claimed.c.token_hash))

    def insert_if_claimed(table: Table, prefix: str, name: str) -> CTE:
        columns = [column for column in table.c if column.key != "id"]  # ids are generated
        params = (bindparam(f"{prefix}{column.key}", type_=column.type) for column in columns)
        return (
            insert(table)
            .from_select([column.key for column in columns], select(*params).where(if_claimed))
            .cte(name)
        )

    statement = select(claimed).add_cte(insert_if_claimed(refresh_tokens, "n_", "added"))
    if access:
        statement = statement.add_cte(insert_if_claimed(access_tokens, "a_", "recorded"))
    if audit:
        statement = statement.add_cte(insert_if_claimed(audit_events, "e_", "audited"))
    return FastStatement(statement)


_ROTATE_FAST: Final = {
    (access, audit): _rotation_statement(access=access, audit=audit)
    for access in (False, True)
    for audit in (False, True)
}


def _rotation_batch(*, access: bool, audit: bool) -> BatchStatement:
    """PostgreSQL: `_ROTATE_FAST` for all the refreshes of one turn of the event loop, in one
    statement (one round trip). Each refresh is claimed and written as alone: the UPDATE
    claims only live tokens, each INSERT writes the rows of the refreshes whose claim won.
    A token presented twice in one batch is claimed for its first presentation only
    (DISTINCT ON): the other finds it rotated, as the loser of a race does."""
    tables = [(refresh_tokens, "n_", "added")]
    tables += [(access_tokens, "a_", "recorded")] if access else []
    tables += [(audit_events, "e_", "audited")] if audit else []
    values = [
        BatchValue(name="p_hash", column=_refresh.token_hash),
        BatchValue(name="p_now", column=_refresh.expires_at),
    ]
    for table, prefix, _ in tables:
        values += [
            BatchValue(name=f"{prefix}{column.key}", column=column)
            for column in table.c
            if column.key != "id"  # ids are generated
        ]

    # names come from the schema, every value is a parameter: nothing here is user input
    def build(selected: Mapping[str, str]) -> str:
        returned = ", ".join(f"refresh_tokens.{column.name}" for column in refresh_tokens.c)
        parts = [
            "first AS (SELECT DISTINCT ON (p_hash) * FROM input ORDER BY p_hash, ord)",
            "claimed AS (UPDATE refresh_tokens SET state = 'rotated', changed_at = first.p_now"  # noqa: S608
            " FROM first WHERE refresh_tokens.token_hash = first.p_hash"
            " AND refresh_tokens.state = 'live' AND refresh_tokens.expires_at > first.p_now"
            " AND NOT EXISTS (SELECT 1 FROM revoked_grants"
            " WHERE revoked_grants.grant_id = refresh_tokens.grant_id)"
            f" RETURNING first.ord, {returned})",
        ]
        for table, prefix, name in tables:
            columns = [column for column in table.c if column.key != "id"]
            names = ", ".join(column.name for column in columns)
            picked = ", ".join(selected[f"{prefix}{column.key}"] for column in columns)
            parts.append(
                f"{name} AS (INSERT INTO {table.name} ({names}) SELECT {picked}"  # noqa: S608
                " FROM first AS input JOIN claimed ON claimed.ord = input.ord"
                " ORDER BY input.ord)"
            )
        return ", ".join(parts) + " SELECT claimed.* FROM claimed"  # noqa: S608

    return BatchStatement(_ROTATE_FAST[access, audit], values, build)


_ROTATE_BATCH: Final = {
    (access, audit): _rotation_batch(access=access, audit=audit)
    for access in (False, True)
    for audit in (False, True)
}
_TOKEN_REVOKED: Final = exists().where(_revoked.token_id == bindparam("p_token"))
_IS_REVOKED: Final = select(_TOKEN_REVOKED)
_IS_REVOKED_IN_GRANT: Final = select(
    or_(_TOKEN_REVOKED, exists().where(revoked_grants.c.grant_id == bindparam("p_grant")))
)


class SqlTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._purge = SqlPurge(db)
        insert = db.insert(revoked_access_tokens)
        self._revoke_access = insert.on_conflict_do_update(
            index_elements=[_revoked.token_id], set_={"expires_at": insert.excluded.expires_at}
        )
        self._list_grant_access = (
            db.insert(revoked_access_tokens)
            .from_select(["token_id", "expires_at"], _GRANT_ACCESS)
            .on_conflict_do_nothing(index_elements=[_revoked.token_id])
            .returning(_revoked.token_id)
        )
        self._list_user_client_access = (
            db.insert(revoked_access_tokens)
            .from_select(["token_id", "expires_at"], _USER_CLIENT_ACCESS)
            .on_conflict_do_nothing(index_elements=[_revoked.token_id])
            .returning(_revoked.token_id)
        )

    async def add_refresh(self, token: RefreshToken) -> None:
        values = _refresh_values(token)
        try:
            await self._db.write(lambda conn: conn.execute(_ADD_REFRESH, values))
        except IntegrityError:
            raise ValueError("refresh token exists, or names an unknown client or user") from None

    async def rotate_refresh(
        self,
        token_hash: str,
        replacement: RefreshToken,
        *,
        now: int,
        issuance: Issuance | None = None,
    ) -> Rotation:
        if not is_storable(token_hash):
            return Rotation(status="invalid")
        values = _refresh_values(replacement)
        params = {"p_hash": token_hash, "p_now": now}
        access = None if issuance is None or issuance.access is None else issuance.access
        access_values = None if access is None else _access_values(access)
        event_values = None if issuance is None else audit_values(issuance.event)

        async def work(conn: FastConnection) -> Rotation:
            row = await conn.one(_CLAIM_REFRESH_FAST, params)
            if row is None:
                return _not_rotated(await conn.one(_PEEK_REFRESH_FAST, params))
            await conn.run(_ADD_REFRESH_FAST, values)
            if access_values is not None:
                await conn.run(_ADD_ACCESS_FAST, access_values)
            if event_values is not None:
                await conn.run(RECORD, event_values)
            return Rotation(status="rotated", previous=_refresh_token(row))

        try:
            if not self._db.is_postgresql:
                rotation = await self._db.fast_write(work)
            else:
                rotation = await self._rotate_in_one_statement(
                    params, values, access_values, event_values
                )
        except IntegrityError:
            raise ValueError("the replacement refresh token or access token exists") from None
        if rotation.status == "rotated" and event_values is not None:
            log_audit_line(event_values)
        return rotation

    async def _rotate_in_one_statement(
        self,
        params: dict[str, Any],
        values: dict[str, Any],
        access_values: dict[str, Any] | None,
        event_values: dict[str, Any] | None,
    ) -> Rotation:
        # One statement, so one round trip instead of up to six (BEGIN, claim, add, record,
        # audit, COMMIT); shared with the other refreshes of this turn of the event loop.
        statement = _ROTATE_BATCH[access_values is not None, event_values is not None]
        bound = params | {f"n_{name}": value for name, value in values.items()}
        if access_values is not None:
            bound |= {f"a_{name}": value for name, value in access_values.items()}
        if event_values is not None:
            bound |= {f"e_{name}": value for name, value in event_values.items()}
        row = await self._db.fast_batch(statement, bound)
        if row is not None:
            return Rotation(status="rotated", previous=_refresh_token(row))
        return _not_rotated(await self._db.fast_read(_PEEK_REFRESH_FAST, params))

    async def find_refresh(self, token_hash: str, *, now: int) -> RefreshToken | None:
        if not is_storable(token_hash):
            return None
        return await self._one(_FIND_REFRESH, {"p_hash": token_hash, "p_now": now})

    async def peek_refresh(self, token_hash: str) -> RefreshToken | None:
        if not is_storable(token_hash):
            return None
        row = await self._db.fast_lookup(_PEEK_REFRESH_LOOKUP, token_hash)
        return None if row is None else _refresh_token(row)

    async def add_access(self, token: IssuedAccessToken) -> None:
        values = _access_values(token)
        try:
            await self._db.fast_execute(_ADD_ACCESS_FAST, values)
        except IntegrityError:
            raise ValueError("access token exists, or names an unknown client") from None

    async def find_access(self, token_id: str) -> IssuedAccessToken | None:
        if not is_storable(token_id):
            return None
        params = {"p_token": token_id}
        row = await self._db.read(
            lambda conn: conn.execute(_FIND_ACCESS, params).mappings().first()
        )
        return None if row is None else _access_token(row)

    async def revoke_access(self, token_id: str, *, expires_at: int, now: int) -> None:
        check_storable(token_id)
        values = {"token_id": token_id, "expires_at": expires_at}
        await self._db.write(lambda conn: conn.execute(self._revoke_access, values))

    async def revoke_refresh(self, token_hash: str, *, now: int) -> RefreshToken | None:
        if not is_storable(token_hash):
            return None
        params = {"p_hash": token_hash, "p_now": now}
        row = await self._db.write(
            lambda conn: conn.execute(_REVOKE_REFRESH, params).mappings().first()
        )
        return None if row is None else _refresh_token(row)

    async def revoke_grant(self, grant_id: str, *, now: int) -> int:
        check_storable(grant_id)
        params = {"p_grant": grant_id, "p_now": now}

        def work(conn: Connection) -> int:
            # The grant itself is recorded too: a request racing this one may still write a
            # token of the grant, and every read checks `revoked_grants`.
            record_revoked_grants(self._db, conn, [grant_id], revoked_at=now)
            refreshes = len(conn.execute(_REVOKE_FAMILY, params).all())
            return refreshes + len(conn.execute(self._list_grant_access, params).all())

        return await self._db.write(work)

    async def revoke_for_user_client(self, user_id: str, client_id: str, *, now: int) -> int:
        if not (is_storable(user_id) and is_storable(client_id)):
            return 0
        params = {"p_user": user_id, "p_client": client_id, "p_now": now}

        def work(conn: Connection) -> int:
            # Grants are recorded before their codes go: a code redeemed by a racing request
            # still yields only tokens that every read sees as revoked.
            grant_ids = conn.execute(_USER_CLIENT_GRANTS, params).scalars().all()
            record_revoked_grants(self._db, conn, grant_ids, revoked_at=now)
            conn.execute(_DELETE_USER_CLIENT_CODES, params)
            refreshes = len(conn.execute(_REVOKE_USER_CLIENT_REFRESH, params).all())
            return refreshes + len(conn.execute(self._list_user_client_access, params).all())

        return await self._db.write(work, bulk=True)

    async def is_revoked(self, token_id: str, grant_id: str | None) -> bool:
        if not is_storable(token_id) or (grant_id is not None and not is_storable(grant_id)):
            return True  # a value that cannot have been issued is no live token
        query = _IS_REVOKED if grant_id is None else _IS_REVOKED_IN_GRANT
        params = {"p_token": token_id, "p_grant": grant_id}
        return await self._db.read(lambda conn: bool(conn.execute(query, params).scalar()))

    async def purge_expired(
        self, *, before: int, limit: int = 1000, throttle_before: int | None = None
    ) -> Purged:
        return await self._purge.step(before=before, limit=limit, throttle_before=throttle_before)

    async def _one(self, query: Any, params: dict[str, Any]) -> RefreshToken | None:
        row = await self._db.read(lambda conn: conn.execute(query, params).mappings().first())
        return None if row is None else _refresh_token(row)


def record_revoked_grants(
    db: Database, conn: Connection, grant_ids: Iterable[str], *, revoked_at: int | None
) -> None:
    """Mark grants revoked for good, inside the caller's write transaction; `revoked_at`
    None (a deleted client or user) keeps them past any purge, also those revoked before."""
    # in one order, so that two transactions revoking the same grants never deadlock
    rows = [{"grant_id": grant_id, "revoked_at": revoked_at} for grant_id in sorted(set(grant_ids))]
    if rows:
        statement = db.insert(revoked_grants)
        index = [revoked_grants.c.grant_id]
        if revoked_at is None:
            statement = statement.on_conflict_do_update(
                index_elements=index, set_={"revoked_at": None}
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=index)
        conn.execute(statement, rows)


def _not_rotated(row: Mapping[str, Any] | None) -> Rotation:
    """Why a token was not rotated: spent before (reuse), or revoked, expired or unknown."""
    if row is None:
        return Rotation(status="invalid")
    if row["state"] == "rotated":
        return Rotation(status="reused", previous=_refresh_token(row))
    return Rotation(status="invalid", previous=_refresh_token(row))


def _refresh_values(token: RefreshToken) -> dict[str, Any]:
    check_storable(
        token.token_hash,
        token.grant_id,
        token.client_id,
        token.user_id,
        token.jkt,
        token.sid,
        more=(*token.scope, *token.resources),
    )
    return {
        "token_hash": token.token_hash,
        "grant_id": token.grant_id,
        "client_id": token.client_id,
        "user_id": token.user_id,
        "scope": words_text(token.scope),
        "resources": list(token.resources),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "auth_time": token.auth_time,
        "jkt": token.jkt,
        "sid": token.sid,
        "state": "live",
        "changed_at": None,
        "claims": None if token.claims is None else claims_request_json(token.claims),
    }


def _access_values(token: IssuedAccessToken) -> dict[str, Any]:
    check_storable(
        token.token_id,
        token.client_id,
        token.grant_id,
        token.subject,
        more=(*token.scope, *token.audience),
    )
    return {
        "token_id": token.token_id,
        "format": token.format,
        "client_id": token.client_id,
        "grant_id": token.grant_id,
        "subject": token.subject,
        "scope": words_text(token.scope),
        "audience": list(token.audience),
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "extra": json_text(dict(token.extra)),  # checked and encoded once, as written
    }


def _refresh_token(row: Mapping[Any, Any]) -> RefreshToken:
    return RefreshToken(
        token_hash=row["token_hash"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        scope=words_set(row["scope"]),
        resources=tuple(row["resources"]),
        created_at=int(row["created_at"]),
        expires_at=int(row["expires_at"]),
        auth_time=int(row["auth_time"]),
        jkt=row["jkt"],
        claims=_claims(row["claims"]),
        sid=row["sid"],
    )


def _claims(value: Mapping[str, Any] | None) -> ClaimsRequest | None:
    return None if value is None else claims_request_from_json(value)


def _access_token(row: RowMapping) -> IssuedAccessToken:
    return IssuedAccessToken(
        token_id=row["token_id"],
        format=row["format"],
        client_id=row["client_id"],
        grant_id=row["grant_id"],
        subject=row["subject"],
        scope=words_set(row["scope"]),
        audience=tuple(row["audience"]),
        issued_at=int(row["issued_at"]),
        expires_at=int(row["expires_at"]),
        extra=row["extra"],
    )
