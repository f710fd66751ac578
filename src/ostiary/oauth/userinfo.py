"""The UserInfo endpoint (OpenID Connect Core §5.3) with RFC 6750 bearer token errors.

GET or POST; the access token comes in the `Authorization: Bearer` header (RFC 6750 §2.1)
or, on a POST, in a form body's `access_token` (§2.2), never both and never in the query.
The answer is the claims the token's scope releases (§5.4) and those its grant's `claims`
request parameter asked UserInfo for (§5.5), as JSON, or as a JWT signed with the client's
`userinfo_signed_response_alg` (§5.3.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from ostiary.jose import jwt

from .access_tokens import is_jwt, verify_access_token_jwt
from .claims import STANDARD_CLAIMS, claims_for_scope, user_claims
from .context import Context
from .id_token import is_openid_request
from .models import Client, IssuedAccessToken
from .subject import subject_for
from .token_hash import hash_token
from .token_request import NO_STORE, TokenRequest, is_form_content_type

JWT_CONTENT_TYPE: Final = "application/jwt"
MAX_TOKEN_LENGTH: Final = 16 * 1024
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*) *", re.IGNORECASE)  # RFC 6750 §2.1
_NOT_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class BearerError(Exception):
    """An RFC 6750 §3.1 error: sent in `WWW-Authenticate`, never with the token's details."""

    def __init__(self, error: str | None, status: int, description: str = "") -> None:
        super().__init__(error or "no token")
        self.error = error  # None: no credentials at all, §3.1 says send no error code
        self.status = status
        self.description = description


def invalid_request(description: str) -> BearerError:
    return BearerError("invalid_request", 400, description)


def _invalid_token(
    description: str = "the access token is invalid, expired or revoked",
) -> BearerError:
    return BearerError("invalid_token", 401, description)


@dataclass(frozen=True)
class UserInfoResponse:
    """JSON claims (`body`), a signed JWT (`jwt`), or an error (`body` None, `jwt` None)."""

    status: int
    body: dict[str, Any] | None = None
    jwt: str | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(NO_STORE))


def bearer_challenge(error: BearerError) -> str:
    """The RFC 6750 §3 `WWW-Authenticate` value for `error`."""
    if error.error is None:
        return 'Bearer realm="ostiary"'
    description = _NOT_DESCRIPTION.sub("", error.description)[:256]
    challenge = f'Bearer realm="ostiary", error="{error.error}"'
    if description:
        challenge += f', error_description="{description}"'
    if error.error == "insufficient_scope":
        challenge += ', scope="openid"'
    return challenge


async def handle_userinfo_request(
    req: TokenRequest, ctx: Context, *, method: str
) -> UserInfoResponse:
    """Answer a GET or POST to the UserInfo endpoint. For a GET, `req.form` is empty."""
    try:
        token = _presented_token(req, method)
        client, record = await _resolve(token, ctx)
        return await _answer(client, record.subject, _released(record), ctx)
    except BearerError as exc:
        return bearer_error_response(exc)


def bearer_error_response(error: BearerError) -> UserInfoResponse:
    """The challenge in `WWW-Authenticate` and, when there is an error code, the same as JSON."""
    headers = dict(NO_STORE)
    headers["WWW-Authenticate"] = bearer_challenge(error)
    body = None if error.error is None else {"error": error.error}
    if body is not None and error.description:
        body["error_description"] = _NOT_DESCRIPTION.sub("", error.description)[:256]
    return UserInfoResponse(status=error.status, body=body, headers=headers)


def _presented_token(req: TokenRequest, method: str) -> str:
    in_header: str | None = None
    if req.authorization is not None:
        match = _BEARER.fullmatch(req.authorization)
        if match is None:
            raise invalid_request("the Authorization header must be Bearer and a token")
        in_header = match.group(1)
    in_body: str | None = None
    if method == "POST" and is_form_content_type(req.content_type):
        values = req.form.get("access_token", ())
        if len(values) > 1:
            raise invalid_request("access_token must not be repeated")
        in_body = values[0] if values and values[0] else None
    # RFC 6750 §2: a client must not use more than one method to send the token
    if in_header is not None and in_body is not None:
        raise invalid_request("send the access token in the header or the body, not both")
    token = in_header or in_body
    if token is None:
        raise BearerError(None, 401)
    if len(token) > MAX_TOKEN_LENGTH:
        raise _invalid_token("the access token is too long")
    return token


async def _resolve(token: str, ctx: Context) -> tuple[Client, IssuedAccessToken]:
    """The client and the record of a live access token issued to a user."""
    now = ctx.now()
    if is_jwt(token):
        claims = await verify_access_token_jwt(token, ctx)
        if claims is None:
            raise _invalid_token()
        record = await ctx.store.tokens.find_access(claims["jti"])
    else:
        record = await ctx.store.tokens.find_access(hash_token(token))
        if record is not None and (record.format != "opaque" or record.expires_at <= now):
            record = None
    # Tokens issued to a user belong to a grant and are recorded; client_credentials
    # tokens are not, and have no user to describe.
    if record is None or record.grant_id is None:
        raise _invalid_token()
    if await ctx.store.tokens.is_revoked(record.token_id, record.grant_id):
        raise _invalid_token()
    # RFC 9449 §7.1: a DPoP-bound token must come with a proof, which this endpoint does not
    # take; sent as a plain bearer token it is refused, never accepted without its key.
    if "cnf" in record.extra:
        raise _invalid_token("a DPoP-bound access token is not accepted as a bearer token here")
    client = await ctx.store.clients.get(record.client_id)
    if client is None:
        raise _invalid_token()
    if not is_openid_request(record.scope):
        raise BearerError(
            "insufficient_scope", 403, "the access token was not granted the openid scope"
        )
    return client, record


def _released(record: IssuedAccessToken) -> frozenset[str]:
    """The claim names this token may see: its scope's, and those asked for one by one
    (recorded by `mint_access_token`'s caller from the grant's `claims` request)."""
    asked = record.extra.get("claims")
    individual = frozenset(asked) if isinstance(asked, list) else frozenset()
    return claims_for_scope(record.scope) | (individual & STANDARD_CLAIMS)


async def _answer(
    client: Client, user_id: str, names: frozenset[str], ctx: Context
) -> UserInfoResponse:
    user = await ctx.store.users.get(user_id)
    if user is None:
        raise _invalid_token()
    body = user_claims(user, names)
    body["sub"] = subject_for(client, user_id, ctx.config)  # §5.3.2: always, as in the ID token
    alg = client.oidc.userinfo_signed_response_alg
    if alg is None:
        return UserInfoResponse(status=200, body=body)
    # §5.3.2: a signed response SHOULD carry iss and aud
    body.update({"iss": ctx.config.issuer, "aud": client.client_id})
    key = await ctx.keys.signing_key(alg)
    signed = jwt.encode(body, key, alg=alg)
    return UserInfoResponse(status=200, jwt=signed)
