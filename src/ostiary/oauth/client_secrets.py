"""Client secrets: generated with 256 bits of entropy, stored only as a fast hash.

A slow password hash (Argon2, bcrypt) exists to make guessing a low-entropy human password
expensive. A generated secret has 256 random bits: no amount of hashing speed helps anyone
guess it, while a slow hash on every token request would cap the token endpoint's throughput
for no security gain. SHA-256 keeps a leaked database useless and the check cheap
(RFC 9700 §4.14.2 asks for secrets to be stored hashed, not slowly).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

_SCHEME: Final = "sha256$"
# A secret longer than this is not one we generated; refusing early bounds the hashing work.
MAX_SECRET_LENGTH: Final = 512


def generate_client_secret() -> str:
    """A new client secret: 32 random bytes, base64url (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    """The stored form of a secret: `"sha256$" + base64url(SHA-256(secret))`."""
    if not isinstance(secret, str) or not secret:
        raise ValueError("a client secret is a non-empty string")
    return _SCHEME + _digest(secret)


def verify_client_secret(secret: str, stored: str) -> bool:
    """True when `secret` hashes to `stored`; compared in constant time, never raises."""
    if not isinstance(secret, str) or not isinstance(stored, str):
        return False
    if not stored.startswith(_SCHEME) or not secret or len(secret) > MAX_SECRET_LENGTH:
        return False
    expected = stored[len(_SCHEME) :].encode("ascii", "replace")
    return hmac.compare_digest(_digest(secret).encode("ascii"), expected)


def _digest(secret: str) -> str:
    # "surrogatepass": a lone surrogate from a decoded form must not crash the check.
    digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
