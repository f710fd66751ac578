"""Helpers for the token, revocation and introspection tests: requests, codes, store snapshots."""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote_plus

from ostiary.jose.jwk import JWK
from ostiary.oauth.client_secrets import generate_client_secret, hash_client_secret
from ostiary.oauth.context import Context
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import AuthorizationCode, Client
from ostiary.oauth.pkce import s256_challenge
from ostiary.oauth.token_hash import hash_token, new_token_value
from ostiary.oauth.token_request import TokenRequest

FORM = "application/x-www-form-urlencoded"
REDIRECT_URI = "https://app.example/callback"
ALL_GRANTS = frozenset({"authorization_code", "refresh_token", "client_credentials"})
STORES = (
    "clients",
    "users",
    "apis",
    "codes",
    "tokens",
    "consents",
    "keys",
    "replay",
    "throttle",
    "audit",
    "sessions",
    "logouts",
    "rates",
    "penalties",
)


def basic(client_id: str, secret: str) -> str:
    """`Authorization: Basic` for a client, form-urlencoded first (RFC 6749 §2.3.1)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def token_request(
    params: Mapping[str, str | Sequence[str]],
    *,
    authorization: str | None = None,
    content_type: str | None = FORM,
    address: str | None = "192.0.2.7",
) -> TokenRequest:
    form = {k: [v] if isinstance(v, str) else list(v) for k, v in params.items()}
    return TokenRequest(
        form=form, authorization=authorization, content_type=content_type, address=address
    )


def snapshot(store: MemoryStore) -> dict[str, Any]:
    """Everything a `MemoryStore` holds, deep-copied, to check a refused request changed nothing.

    A store that refers to a sibling store (to purge its rows, say) is snapshotted once, at
    the top level; the reference is kept by name.
    """
    parts = {id(getattr(store, name)): name for name in STORES}
    return {
        name: {
            attr: f"<store {parts[id(value)]}>" if id(value) in parts else copy.deepcopy(value)
            for attr, value in vars(getattr(store, name)).items()
        }
        for name in STORES
    }


async def confidential_client(
    client_factory: Any, *, auth_method: str = "client_secret_basic", **fields: Any
) -> tuple[Client, str]:
    """A confidential client and its secret."""
    secret = generate_client_secret()
    fields.setdefault("grant_types", ALL_GRANTS)
    client = await client_factory(
        auth_method=auth_method, secret_hash=hash_client_secret(secret), **fields
    )
    return client, secret


async def put_code(
    ctx: Context,
    client: Client,
    *,
    user_id: str = "user-1",
    verifier: str | None = None,
    redirect_uri: str = REDIRECT_URI,
    scope: frozenset[str] = frozenset({"read"}),
    resources: tuple[str, ...] = (),
    ttl: int = 60,
) -> tuple[str, str, AuthorizationCode]:
    """Store an authorization code as `approve` would; return (code, verifier, stored code)."""
    verifier = verifier or secrets.token_urlsafe(48)
    value = new_token_value()
    now = ctx.now()
    code = AuthorizationCode(
        code_hash=hash_token(value),
        grant_id=new_token_value(16),
        client_id=client.client_id,
        user_id=user_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge=s256_challenge(verifier),
        resources=resources,
        auth_time=now - 5,
        created_at=now,
        expires_at=now + ttl,
    )
    await ctx.store.codes.put(code)
    return value, verifier, code


def code_params(code: str, verifier: str, **extra: str | Sequence[str]) -> dict[str, Any]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
        **extra,
    }


def client_jwks(*keys: JWK) -> dict[str, Any]:
    return {"keys": [key.public().to_dict() for key in keys]}
