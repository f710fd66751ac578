"""ID tokens (OpenID Connect Core §2, §3.1.3.6, §12.2) and reading them back as hints.

An ID token is issued at the token endpoint when the granted scope holds `openid`: with the
authorization code (nonce echoed, `at_hash` over the access token) and again on every refresh
(§12.2: same `iss`, `sub`, `aud` and `auth_time`, a new `iat`, no nonce). It is signed with the
server's current key for the algorithm the client registered (`id_token_signed_response_alg`,
RS256 by default).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any, Final

from ostiary.jose import JoseError, jwt

from .claims import user_claims
from .claims_request import id_token_claims
from .context import Context
from .models import ID_TOKEN_ALGORITHMS, ClaimsRequest, Client
from .subject import subject_for
from .unverified_claims import unverified_claims

OPENID_SCOPE: Final = "openid"
# OpenID Connect Core §3.1.3.6; EdDSA: Core errata set 2, SHA-512 for Ed25519.
_HASHES: Final = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "EdDSA": hashlib.sha512}


def is_openid_request(scope: frozenset[str]) -> bool:
    """True when the grant is an OpenID Connect one (Core §3.1.2.1: scope holds `openid`)."""
    return OPENID_SCOPE in scope


def token_hash(value: str, alg: str) -> str:
    """`at_hash` / `c_hash`: base64url of the left half of the hash of the ASCII value."""
    digest = _HASHES[alg](value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


async def issue_id_token(
    ctx: Context,
    *,
    client: Client,
    user_id: str,
    auth_time: int,
    nonce: str | None = None,
    access_token: str | None = None,
    claims: Mapping[str, Any] | None = None,
    sid: str | None = None,
) -> str:
    """Sign an ID token for `user_id` at `client`.

    `access_token`, when one is issued with it, adds `at_hash`; `claims` adds user claims;
    `sid` names the login session the grant was made in.
    """
    alg = client.oidc.id_token_signed_response_alg
    now = ctx.now()
    body: dict[str, Any] = dict(claims or {})
    body.update(
        {
            "iss": ctx.config.issuer,
            "sub": subject_for(client, user_id, ctx.config),
            "aud": client.client_id,  # one audience, so `azp` is not needed (§2)
            "exp": now + ctx.config.id_token_ttl,
            "iat": now,
        }
    )
    if auth_time:
        body["auth_time"] = auth_time
    if nonce is not None:
        body["nonce"] = nonce  # §3.1.3.6: the authorization request's value, unchanged
    if sid is not None:
        # Back-Channel Logout 1.0 §2.1, Front-Channel Logout 1.0 §3: the logout token of this
        # session will carry the same sid
        body["sid"] = sid
    if access_token is not None:
        body["at_hash"] = token_hash(access_token, alg)
    key = await ctx.keys.signing_key(alg)
    return jwt.encode(body, key, alg=alg)


async def id_token_user_claims(
    ctx: Context, user_id: str, request: ClaimsRequest | None
) -> dict[str, Any]:
    """The user's values of the claims the `claims` parameter asked the ID token for (Core
    §5.5); a claim the user has no value for is left out. Read fresh at every issuance."""
    names = id_token_claims(request)
    if not names:
        return {}
    user = await ctx.store.users.get(user_id)
    return {} if user is None else user_claims(user, names)


async def read_id_token_hint(token: str, ctx: Context) -> dict[str, Any] | None:
    """The claims of an ID token this server signed, expired or not (a hint may be presented
    after its ID token expired: RP-Initiated Logout §2), or None when it is not one of ours."""
    peeked = unverified_claims(token)
    if peeked is None:
        return None
    exp, audience = peeked.get("exp"), peeked.get("aud")
    if type(exp) is not int or not isinstance(audience, str):
        return None
    # Checked as of a moment it was valid: the signature and issuer still prove it is ours.
    as_of = min(ctx.now(), exp - 1)
    try:
        # an access token (RFC 9068 `at+jwt`) is signed by the same keys: not an ID token
        if jwt.unverified_header(token).get("typ", "JWT") != "JWT":
            return None
        return jwt.decode(
            token,
            await ctx.keys.published(),
            algorithms=ID_TOKEN_ALGORITHMS,
            audience=audience,
            issuer=ctx.config.issuer,
            required=("sub", "iat"),
            now=as_of,
        )
    except JoseError:
        return None
