"""DPoP (RFC 9449) at the authorization server: proofs at the token endpoint, and nonces.

A client that sends a `DPoP` header with its token request proves it holds a private key;
the access token is then bound to that key's thumbprint (`cnf.jkt`, §6) and is useless to
anyone who steals it without the key. A public client's refresh tokens are bound too (§5).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from ostiary.jose import ImmatureToken, JoseError, jwt

from .context import Context
from .dpop_algorithms import DPOP_ALGORITHMS
from .errors import InvalidDPoPProof, UseDPoPNonce
from .metadata import token_endpoint

PROOF_TYPE: Final = "dpop+jwt"  # RFC 9449 §4.2
IAT_WINDOW: Final = 60  # seconds a proof's iat may differ from now (§11.1)
MAX_JTI_LENGTH: Final = 256
MAX_NONCE_LENGTH: Final = 256
NONCE_LIFETIME: Final = 300


@dataclass(frozen=True, kw_only=True)
class DPoPProof:
    """A verified proof: the key's RFC 7638 thumbprint, and what replay and nonce checks use."""

    jkt: str
    jti: str
    iat: int
    nonce: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(access_token: str) -> str:
    """The `ath` claim: base64url(SHA-256(access token)) (RFC 9449 §4.2)."""
    return _b64(hashlib.sha256(access_token.encode("ascii")).digest())


def normalize_htu(url: str) -> str:
    """The URL a proof's `htu` is compared as (§4.3): scheme and host lowercased, a default
    port dropped, no query or fragment."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("https", 443), ("http", 80))
        else (f"{host}:{port}")
    )
    return f"{scheme}://{netloc}{parts.path or '/'}"


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: int,
    access_token: str | None = None,
    window: int = IAT_WINDOW,
) -> DPoPProof:
    """Check a DPoP proof JWT for one request (RFC 9449 §4.3); `InvalidDPoPProof` if it fails.

    Replay (`jti`) and nonces are the caller's, since they need storage or a secret.
    """
    try:
        claims, key = jwt.decode_with_embedded_key(
            proof, algorithms=DPOP_ALGORITHMS, typ=PROOF_TYPE, leeway=window, now=now
        )
    except ImmatureToken:
        raise InvalidDPoPProof("the DPoP proof's iat is too far from the server's time") from None
    except (JoseError, ValueError):
        raise InvalidDPoPProof(
            "the DPoP proof is malformed or its signature does not verify"
        ) from None
    htm, htu, iat, jti = claims.get("htm"), claims.get("htu"), claims.get("iat"), claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidDPoPProof("the DPoP proof needs a jti")
    if type(iat) is not int:
        raise InvalidDPoPProof("the DPoP proof needs an integer iat")
    if abs(now - iat) > window:
        raise InvalidDPoPProof("the DPoP proof's iat is too far from the server's time")
    if htm != method:
        raise InvalidDPoPProof("the DPoP proof's htm is not this request's method")
    if not isinstance(htu, str) or normalize_htu(htu) != normalize_htu(url):
        raise InvalidDPoPProof("the DPoP proof's htu is not this request's URL")
    if access_token is not None and not (
        isinstance(claims.get("ath"), str)
        and hmac.compare_digest(claims["ath"], access_token_hash(access_token))
    ):
        raise InvalidDPoPProof("the DPoP proof's ath does not match the access token")
    nonce = claims.get("nonce")
    if nonce is not None and (not isinstance(nonce, str) or len(nonce) > MAX_NONCE_LENGTH):
        raise InvalidDPoPProof("the DPoP proof's nonce is malformed")
    return DPoPProof(jkt=key.thumbprint(), jti=jti, iat=iat, nonce=nonce)


def new_nonce(secret: bytes, now: int) -> str:
    """A nonce the server can check later without storing it: the time, and its MAC."""
    stamp = struct.pack(">Q", now)
    return _b64(stamp + hmac.new(secret, b"dpop-nonce" + stamp, hashlib.sha256).digest()[:16])


def is_fresh_nonce(secret: bytes, nonce: str | None, now: int) -> bool:
    """True for a nonce this server made within the last `NONCE_LIFETIME` seconds."""
    if nonce is None or len(nonce) != 32:
        return False
    try:
        raw = base64.urlsafe_b64decode(nonce + "==")
    except ValueError:
        return False
    if len(raw) != 24:
        return False
    stamp, mac = raw[:8], raw[8:]
    expected = hmac.new(secret, b"dpop-nonce" + stamp, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(mac, expected):
        return False
    made: int = struct.unpack(">Q", stamp)[0]
    return made <= now + 1 and now - made <= NONCE_LIFETIME


async def check_token_request_proof(values: Sequence[str], ctx: Context) -> DPoPProof | None:
    """The token request's DPoP proof, verified and spent; None when it sent none.

    §4.3: the proof is for POST to this server's token endpoint, made recently, used once;
    with nonces on (`ServerConfig.dpop_nonce_secret`) it must carry a fresh one of ours.
    """
    if not values:
        return None
    if len(values) > 1:
        raise InvalidDPoPProof("send one DPoP header")
    now = ctx.now()
    proof = verify_proof(values[0], method="POST", url=token_endpoint(ctx.config), now=now)
    secret = ctx.config.dpop_nonce_secret
    if secret is not None and not is_fresh_nonce(secret, proof.nonce, now):
        raise UseDPoPNonce(new_nonce(secret, now))
    # §11.1: a proof is single use; the key and jti together name it.
    replay_key = "dpop:" + _b64(hashlib.sha256(f"{proof.jkt}.{proof.jti}".encode()).digest())
    if not await ctx.store.replay.first_use(replay_key, expires_at=now + 2 * IAT_WINDOW, now=now):
        raise InvalidDPoPProof("the DPoP proof was already used: make a new one per request")
    return proof
