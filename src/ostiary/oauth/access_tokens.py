"""Access tokens: RFC 9068 JWTs by default, opaque reference tokens for clients that ask.

A JWT is verified by resource servers on their own against the JWKS; it is recorded only when
it belongs to a grant, so revoking the grant (a replayed code, a reused refresh token) makes
introspection report it inactive. An opaque token is a random value the server finds again by
its hash, so it is always recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from ostiary.jose import JoseError, jwt

from .context import Context
from .models import Client, IssuedAccessToken, TokenFormat
from .scopes import format_scope
from .token_hash import hash_token, new_token_value
from .unverified_claims import unverified_claims

ACCESS_TOKEN_TYPE: Final = "at+jwt"  # RFC 9068 §2.1
# What the server itself signs with (ServerConfig.signing_alg): the allow-list for reading
# its own tokens back. A key's own `alg` then binds each key to one of them.
SERVER_SIGNING_ALGORITHMS: Final = ("ES256", "RS256", "EdDSA")
_HEADERS: Final = {"typ": ACCESS_TOKEN_TYPE}


@dataclass(frozen=True, kw_only=True)
class AccessToken:
    """A freshly minted access token: the value for the client, the record for the server."""

    value: str
    format: TokenFormat
    token_id: str  # the JWT's jti, or the hash of an opaque value
    scope: frozenset[str]
    audience: tuple[str, ...]
    issued_at: int
    expires_at: int
    record: IssuedAccessToken | None = None  # what the server must store to find it again

    @property
    def expires_in(self) -> int:
        return self.expires_at - self.issued_at


async def mint_access_token(
    ctx: Context,
    *,
    client: Client,
    subject: str,
    scope: frozenset[str],
    audience: Sequence[str],
    grant_id: str | None,
    auth_time: int | None = None,
    jkt: str | None = None,
    sub: str | None = None,
    userinfo_claims: frozenset[str] = frozenset(),
) -> AccessToken:
    """Mint an access token in the client's format, storing nothing: `record` is what the
    caller must write (in one unit of work with the rest of its grant) when the server must
    find the token again.

    `subject` is the user id, or the client_id for client_credentials (RFC 9068 §2.2); it is
    recorded. `sub`, when given, is what the JWT says instead (a pairwise subject, see
    `subject.py`). `userinfo_claims` are claims the `claims` parameter asked UserInfo for.
    """
    now = ctx.now()
    expires_at = now + ctx.config.access_token_ttl
    aud = tuple(audience)
    if client.token_format == "opaque":
        value = new_token_value()
        token_id = hash_token(value)
    else:
        token_id = new_token_value(16)
        value = await _sign(
            ctx, client, sub or subject, scope, aud, now, expires_at, token_id, auth_time, jkt
        )
    record = None
    if client.token_format == "opaque" or grant_id is not None:
        record = IssuedAccessToken(
            token_id=token_id,
            format=client.token_format,
            client_id=client.client_id,
            grant_id=grant_id,
            subject=subject,
            scope=scope,
            audience=aud,
            issued_at=now,
            expires_at=expires_at,
            extra=_extra(auth_time, jkt, userinfo_claims),
        )
    return AccessToken(
        value=value,
        format=client.token_format,
        token_id=token_id,
        scope=scope,
        audience=aud,
        issued_at=now,
        expires_at=expires_at,
        record=record,
    )


async def _sign(  # noqa: PLR0917 - private, called once
    ctx: Context,
    client: Client,
    subject: str,
    scope: frozenset[str],
    audience: tuple[str, ...],
    now: int,
    expires_at: int,
    jti: str,
    auth_time: int | None,
    jkt: str | None,
) -> str:
    # RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; §2.2.3: scope.
    claims: dict[str, Any] = {
        "iss": ctx.config.issuer,
        "sub": subject,
        "aud": audience[0] if len(audience) == 1 else list(audience),
        "exp": expires_at,
        "iat": now,
        "jti": jti,
        "client_id": client.client_id,
    }
    if scope:
        claims["scope"] = format_scope(scope)
    if auth_time:
        claims["auth_time"] = auth_time
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}  # RFC 9449 §6.1
    key = await ctx.keys.signing_key()
    return jwt.encode(claims, key, alg=key.alg or ctx.config.signing_alg, headers=_HEADERS)


def _extra(auth_time: int | None, jkt: str | None, claims: frozenset[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if auth_time:
        extra["auth_time"] = auth_time
    if jkt is not None:
        extra["cnf"] = {"jkt": jkt}
    if claims:
        extra["claims"] = sorted(claims)  # read back by UserInfo (OpenID Connect Core §5.5)
    return extra


def is_jwt(token: str) -> bool:
    """True when a presented token has the shape of a compact JWS (opaque values have no dot)."""
    return token.count(".") == 2


async def verify_access_token_jwt(token: str, ctx: Context) -> dict[str, Any] | None:
    """The claims of a JWT access token this server issued and that has not expired, or None.

    Checks the signature against every published key, `typ: at+jwt` (RFC 9068 §4), the issuer
    and the times; any audience is accepted, since the caller is not a resource server but
    reports the audience to one. Revocation is the caller's business.
    """
    peeked = unverified_claims(token)
    if peeked is None:
        return None
    audience = peeked.get("aud")
    if isinstance(audience, list):
        if not audience or not all(isinstance(a, str) for a in audience):
            return None
        accepted: str | list[str] = audience
    elif isinstance(audience, str):
        accepted = audience
    else:
        return None
    try:
        claims = jwt.decode(
            token,
            await ctx.keys.published(),
            algorithms=SERVER_SIGNING_ALGORITHMS,
            audience=accepted,
            issuer=ctx.config.issuer,
            typ=ACCESS_TOKEN_TYPE,
            required=("jti", "sub", "client_id"),
            now=ctx.now(),
        )
    except JoseError:
        return None
    if not isinstance(claims.get("client_id"), str):
        return None
    return claims
