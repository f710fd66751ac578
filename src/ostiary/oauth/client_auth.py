"""Client authentication at the back-channel endpoints (RFC 6749 §2.3, RFC 7523 §3).

A request uses exactly one method: `client_secret_basic` (the Authorization header),
`client_secret_post` (`client_secret` in the body), `private_key_jwt` (a signed
`client_assertion`), or `none` (a public client names itself with `client_id`). The method must
be the one the client registered. Every failure of authentication itself is `InvalidClient`;
a request that is malformed or mixes methods is `InvalidRequest` (RFC 6749 §5.2).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_plus

from ostiary.jose import JoseError, JWKSet, jwt

from .client_secrets import verify_client_secret
from .context import Context
from .errors import InvalidClient, InvalidRequest, SlowDown
from .models import AuditEvent, AuthMethod, Client
from .rate_limits import ClientAuthWait
from .token_hash import hash_token
from .token_request import Form
from .unverified_claims import unverified_claims

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Asymmetric algorithms only: a client_secret_jwt (HMAC) assertion would turn the stored hash
# into the verification key, and "none" is never implemented (RFC 8725 §3.1, §3.2).
ASSERTION_ALGORITHMS: Final = (
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "RS256",
    "RS384",
    "RS512",
    "EdDSA",
)
ASSERTION_LEEWAY: Final = 10  # seconds of clock skew allowed on exp, nbf and iat
MAX_JTI_LENGTH: Final = 256
MAX_AUTHORIZATION_LENGTH: Final = 4096
CLIENT_AUTH_THROTTLED: Final = "client.auth_throttled"
# Spent on an unknown client so its answer takes what a known client's wrong secret takes.
_DUMMY_SECRET_HASH: Final = "sha256$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@dataclass(frozen=True, kw_only=True)
class ClientCredentials:
    """What a request presented to authenticate, before anything was checked."""

    method: AuthMethod
    client_id: str | None  # None only for an assertion without a client_id parameter
    secret: str | None = None
    assertion: str | None = None


def parse_client_credentials(form: Form, authorization: str | None) -> ClientCredentials:
    """Find the one authentication method a request uses (RFC 6749 §2.3: never more than one)."""
    form_id = form.get("client_id")
    secret = form.get("client_secret")
    assertion = form.get("client_assertion")
    assertion_type = form.get("client_assertion_type")
    used = [authorization is not None, secret is not None, assertion is not None]
    if sum(used) > 1:
        raise InvalidRequest("use exactly one client authentication method")
    if authorization is not None:
        client_id, basic_secret = parse_basic_authorization(authorization)
        if form_id is not None and form_id != client_id:
            raise InvalidRequest("client_id does not match the authenticated client")
        if assertion_type is not None:
            raise InvalidRequest("client_assertion_type without client_assertion")
        return ClientCredentials(
            method="client_secret_basic", client_id=client_id, secret=basic_secret
        )
    if assertion is not None:
        if assertion_type is None:
            raise InvalidRequest("client_assertion_type is required with client_assertion")
        if assertion_type != ASSERTION_TYPE:
            raise InvalidClient("unsupported client_assertion_type")
        return ClientCredentials(method="private_key_jwt", client_id=form_id, assertion=assertion)
    if assertion_type is not None:
        raise InvalidRequest("client_assertion is required with client_assertion_type")
    if form_id is None:
        # RFC 6749 §5.2: "no client authentication included" is invalid_client.
        raise InvalidClient("client authentication is required")
    if secret is not None:
        return ClientCredentials(method="client_secret_post", client_id=form_id, secret=secret)
    return ClientCredentials(method="none", client_id=form_id)


def parse_basic_authorization(header: str) -> tuple[str, str]:
    """Client id and secret from `Authorization: Basic ...` (RFC 6749 §2.3.1, RFC 7617).

    Both are form-urlencoded before base64, so a `:` inside an id or secret arrives as `%3A`.
    """
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient("only the Basic scheme authenticates a client here")
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        raise InvalidClient("malformed Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        raw_id, colon, raw_secret = decoded.partition(":")
        client_id = unquote_plus(raw_id, errors="strict")
        secret = unquote_plus(raw_secret, errors="strict")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidClient("malformed Basic credentials") from exc
    if not colon or not client_id or not secret:
        raise InvalidClient("malformed Basic credentials")
    if _has_control_characters(client_id) or _has_control_characters(secret):
        raise InvalidClient("malformed Basic credentials")
    return client_id, secret


async def authenticate_client(
    form: Form,
    authorization: str | None,
    ctx: Context,
    *,
    endpoint: str,
    address: str | None = None,
) -> Client:
    """The registered client a back-channel request authenticates as; `InvalidClient` if none.

    `endpoint` is the URL of the endpoint being called: a client assertion may name it, the
    token endpoint or the issuer as its audience. With `address` (where the request came
    from) and `ctx.client_auth_limits`, failures are counted per address, and an address
    past its budget gets `SlowDown` before any credential is checked (no oracle while it
    waits).
    """
    limits = ctx.client_auth_limits
    if limits is None or address is None:
        return await _authenticate(parse_client_credentials(form, authorization), ctx, endpoint)
    refused: InvalidClient | None = None
    claimed = ""  # the client id the request names, checked or not; "" when it names none
    try:
        credentials = parse_client_credentials(form, authorization)
        claimed = credentials.client_id or ""
    except InvalidClient as exc:
        refused = exc
    wait = limits.wait(address, claimed, now=ctx.now())
    if wait:
        raise SlowDown(
            "too many failed client authentications from this address; "
            "retry after Retry-After seconds",
            retry_after=wait,
            limit="client_auth",
        )
    try:
        if refused is not None:
            raise refused
        client = await _authenticate(credentials, ctx, endpoint)
    except InvalidClient:
        began = await limits.failed(address, claimed, now=ctx.now())
        if began is not None:
            await _record_throttled(began, address, claimed, ctx)
        raise
    await limits.succeeded(address, claimed, now=ctx.now())
    return client


async def _record_throttled(wait: ClientAuthWait, address: str, claimed: str, ctx: Context) -> None:
    """One `client.auth_throttled` event per wait begun, never per request refused during it,
    so refused requests cannot flood the audit log. The client id is named only when it is
    a registered client's (the request's own is untrusted text)."""
    client = await ctx.store.clients.get(claimed) if claimed else None
    await ctx.store.audit.record(
        AuditEvent(
            event=CLIENT_AUTH_THROTTLED,
            at=ctx.now(),
            client_id=client.client_id if client is not None else None,
            address=address,
            detail={"seconds": wait.seconds, "by": wait.by, "failures": wait.failures},
        )
    )


async def _authenticate(credentials: ClientCredentials, ctx: Context, endpoint: str) -> Client:
    if credentials.assertion is not None:
        return await _authenticate_assertion(
            credentials.assertion, credentials.client_id, ctx, endpoint=endpoint
        )
    if credentials.client_id is None:
        raise InvalidClient("client authentication is required")
    client = await ctx.store.clients.get(credentials.client_id)
    if credentials.secret is not None:
        stored = client.secret_hash if client is not None else None
        matches = verify_client_secret(credentials.secret, stored or _DUMMY_SECRET_HASH)
        if client is None or stored is None or not matches:
            raise InvalidClient("client authentication failed")
    elif client is None:
        raise InvalidClient("client authentication failed")
    # A client authenticates only the way it registered (RFC 7591 token_endpoint_auth_method):
    # a confidential client naming itself without its secret is not authenticated.
    if client.auth_method != credentials.method:
        raise InvalidClient(
            "client authentication failed",
            detail=f"registered {client.auth_method}, used {credentials.method}",
        )
    return client


async def _authenticate_assertion(
    assertion: str, form_client_id: str | None, ctx: Context, *, endpoint: str
) -> Client:
    # RFC 7523 §3: iss and sub are both the client_id. The unverified subject only chooses
    # whose keys to try; the signature check below then requires iss and sub to equal it.
    client_id = form_client_id or _unverified_subject(assertion)
    client = await ctx.store.clients.get(client_id)
    if client is None or client.auth_method != "private_key_jwt" or client.jwks is None:
        raise InvalidClient("client authentication failed")
    config = ctx.config
    now = ctx.now()
    audiences = [config.issuer, f"{config.issuer}/token", endpoint]
    try:
        keys = JWKSet.from_dict(client.jwks)
        claims = jwt.decode(
            assertion,
            keys,
            algorithms=ASSERTION_ALGORITHMS,
            audience=audiences,
            issuer=client_id,
            subject=client_id,
            required=("jti",),
            leeway=ASSERTION_LEEWAY,
            now=now,
        )
    except JoseError as exc:
        raise InvalidClient("the client assertion is not valid", detail=str(exc)) from exc
    # RFC 7523 §3 item 4 lets the server bound an assertion's life: a long-lived assertion
    # is a long-lived credential, and the replay cache must hold its jti that long. Clients
    # such as Authlib set exp an hour ahead, so the bound runs from iat: an assertion is
    # usable until exp or iat + client_assertion_max_age, whichever comes first.
    usable_until = claims["exp"]
    if usable_until > now + config.client_assertion_max_age:
        iat = claims.get("iat")
        if iat is None:
            raise InvalidClient("a client assertion with a distant exp needs an iat")
        usable_until = min(usable_until, iat + config.client_assertion_max_age)
        if now - ASSERTION_LEEWAY >= usable_until:
            raise InvalidClient("the client assertion is too old")
    jti = claims["jti"]
    if not 0 < len(jti) <= MAX_JTI_LENGTH or _has_control_characters(jti):
        raise InvalidClient("the client assertion has an unusable jti")
    # RFC 7523 §3 item 7: a jti is used once. Keyed by a hash so any client_id and jti fit.
    key = "client_assertion:" + hash_token(f"{client_id}\n{jti}")
    if not await ctx.store.replay.first_use(
        key, expires_at=int(usable_until) + ASSERTION_LEEWAY + 1, now=now
    ):
        raise InvalidClient("the client assertion was already used")
    return client


def _unverified_subject(assertion: str) -> str:
    claims = unverified_claims(assertion)
    if claims is None:
        raise InvalidClient("the client assertion is not a JWT")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_JTI_LENGTH:
        raise InvalidClient("the client assertion has no usable sub")
    if _has_control_characters(subject):
        raise InvalidClient("the client assertion has no usable sub")
    return subject


_CONTROL_CHARACTERS: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _has_control_characters(value: str) -> bool:
    return _CONTROL_CHARACTERS.search(value) is not None
