"""`SqlCodeStore`: authorization codes, redeemable once (RFC 6749 §4.1.2, §10.5)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.claims_request import claims_request_from_json, claims_request_json
from ostiary.oauth.models import AuthorizationCode, CodeConsumption

from ._database import Database
from ._schema import authorization_codes as codes
from ._schema import login_sessions, words_set, words_text
from ._text import check_storable, is_storable

_c = codes.c
_PUT: Final = insert(codes)
_PEEK: Final = select(codes).where(_c.code_hash == bindparam("p_hash"))
# One conditional UPDATE is the whole race: of any number of concurrent redemptions, exactly
# one finds `used_at IS NULL` (PostgreSQL re-checks it on the committed row; SQLite runs
# writers one at a time).
_CLAIM: Final = (
    update(codes)
    .where(_c.code_hash == bindparam("p_hash"), _c.used_at.is_(None))
    .where(_c.expires_at > bindparam("p_now"))
    .values(used_at=bindparam("p_now"))
    .returning(*codes.c)
)

# The session a code names, locked until the code is stored (PostgreSQL FOR SHARE; SQLite
# runs one writer at a time): a session ending meanwhile either waits for the code, and then
# finds and revokes its grant, or has ended first, and the code is refused.
_SESSION_ENDED: Final = (
    select(login_sessions.c.ended_at.is_not(None))
    .where(login_sessions.c.sid == bindparam("p_sid"))
    .with_for_update(read=True)
)


class SqlCodeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, code: AuthorizationCode) -> bool:
        check_storable(
            code.code_hash,
            code.grant_id,
            code.client_id,
            code.user_id,
            code.redirect_uri,
            code.code_challenge,
            code.nonce,
            code.sid,
            more=(*code.scope, *code.resources),
        )
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
            "claims": None if code.claims is None else claims_request_json(code.claims),
            "sid": code.sid,
        }

        def work(conn: Connection) -> bool:
            if code.sid is not None:
                ended = conn.execute(_SESSION_ENDED, {"p_sid": code.sid}).scalar()
                if ended:
                    return False
            conn.execute(_PUT, values)
            return True

        try:
            return await self._db.write(work)
        except IntegrityError:
            raise ValueError("code exists, or names an unknown client or user") from None

    async def peek(self, code_hash: str) -> AuthorizationCode | None:
        if not is_storable(code_hash):
            return None
        params = {"p_hash": code_hash}
        row = await self._db.read(lambda conn: conn.execute(_PEEK, params).mappings().first())
        return None if row is None else _code(row)

    async def consume(self, code_hash: str, *, now: int) -> CodeConsumption:
        if not is_storable(code_hash):
            return CodeConsumption(code=None)
        params = {"p_hash": code_hash, "p_now": now}

        def work(conn: Connection) -> CodeConsumption:
            row = conn.execute(_CLAIM, params).mappings().first()
            if row is not None:
                return CodeConsumption(code=_code(row))
            # A second redemption must be told apart from an unknown code: RFC 6749 §4.1.2
            # says the server should then revoke what the first one issued.
            row = conn.execute(_PEEK, params).mappings().first()
            if row is not None and row["used_at"] is not None:
                return CodeConsumption(code=_code(row), replayed=True)
            return CodeConsumption(code=None)

        return await self._db.write(work)


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
        claims=None if row["claims"] is None else claims_request_from_json(row["claims"]),
        sid=row["sid"],
    )
