"""DPoP (RFC 9449) at the authorization server: the token request's proof, and nonces.

A client that sends a `DPoP` header with its token request proves it holds a private key;
the access token is then bound to that key's thumbprint (`cnf.jkt`, §6) and is useless to
anyone who steals it without the key. A public client's refresh tokens are bound too (§5).
The proof's own checks are `ostiary.jose.dpop`'s; this server adds replay and nonces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from collections.abc import Sequence
from typing import Final

from ostiary.jose import dpop

from .context import Context
from .errors import InvalidDPoPProof, UseDPoPNonce
from .metadata import token_endpoint

NONCE_LIFETIME: Final = 300


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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


async def check_token_request_proof(values: Sequence[str], ctx: Context) -> dpop.DPoPProof | None:
    """The token request's DPoP proof, verified and spent; None when it sent none.

    §4.3: the proof is for POST to this server's token endpoint, made recently, used once;
    with nonces on (`ServerConfig.dpop_nonce_secret`) it must carry a fresh one of ours.
    """
    if not values:
        return None
    if len(values) > 1:
        raise InvalidDPoPProof("send one DPoP header")
    now = ctx.now()
    try:
        proof = dpop.verify_proof(values[0], method="POST", url=token_endpoint(ctx.config), now=now)
    except dpop.InvalidProof as exc:
        raise InvalidDPoPProof(str(exc)) from None
    secret = ctx.config.dpop_nonce_secret
    if secret is not None and not is_fresh_nonce(secret, proof.nonce, now):
        raise UseDPoPNonce(new_nonce(secret, now))
    # §11.1: a proof is single use
    replay_key = "dpop:" + proof.replay_key
    if not await ctx.store.replay.first_use(replay_key, expires_at=proof.replay_until, now=now):
        raise InvalidDPoPProof("the DPoP proof was already used: make a new one per request")
    return proof
