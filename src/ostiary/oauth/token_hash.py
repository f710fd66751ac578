"""Random token values and the hashes they are stored under.

Codes, refresh tokens and opaque access tokens have 256 bits of entropy, so a plain SHA-256
is a safe, fast lookup key: there is nothing to brute-force, and a database leak yields no
usable token (RFC 9700 §4.14.2 recommends storing only hashes).
"""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_token_value(nbytes: int = 32) -> str:
    """A fresh random token value, base64url (43 characters for 32 bytes)."""
    return secrets.token_urlsafe(nbytes)


def hash_token(value: str) -> str:
    """The lookup hash of a token value: base64url(SHA-256(value))."""
    digest = hashlib.sha256(value.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
