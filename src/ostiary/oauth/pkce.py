"""Proof Key for Code Exchange (RFC 7636), S256 only.

`plain` is refused: it sends the verifier in the front channel, so it protects nothing against
an attacker who can read the authorization request (RFC 9700 §2.1.1, OAuth 2.1 §4.1.1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

from .errors import InvalidGrant, InvalidRequest

S256: Final = "S256"

# RFC 7636 §4.1: code-verifier = 43*128unreserved (ALPHA / DIGIT / "-" / "." / "_" / "~")
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# RFC 7636 §4.2: an S256 challenge is BASE64URL(SHA256(verifier)) without padding: 43 characters.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{42}[AEIMQUYcgkosw048]")


def is_code_verifier(value: str) -> bool:
    """True when `value` has the syntax of a code verifier (RFC 7636 §4.1)."""
    return _VERIFIER.fullmatch(value) is not None


def is_s256_challenge(value: str) -> bool:
    """True when `value` could be an S256 code challenge: 32 bytes, canonical base64url.

    The last of 43 characters carries 2 bits of padding that must be zero, which leaves 16
    possible letters; anything else is not what SHA-256 and base64url produce.
    """
    return _S256_CHALLENGE.fullmatch(value) is not None


def s256_challenge(code_verifier: str) -> str:
    """The S256 challenge of a verifier: BASE64URL(SHA256(ASCII(code_verifier))) (§4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def parse_code_challenge(code_challenge: str | None, method: str | None) -> str:
    """Check an authorization request's PKCE parameters; return the challenge.

    Both parameters are required: a missing method means `plain` (RFC 7636 §4.3), refused.
    """
    if not code_challenge:
        raise InvalidRequest("code_challenge is required (PKCE with S256)")
    if method is None:
        raise InvalidRequest("code_challenge_method is required and must be S256")
    if method != S256:
        raise InvalidRequest("code_challenge_method must be S256")
    if not is_s256_challenge(code_challenge):
        raise InvalidRequest("code_challenge is not a valid S256 challenge")
    return code_challenge


def verify_code_verifier(code_verifier: str | None, code_challenge: str) -> None:
    """Raise `InvalidGrant` unless `code_verifier` hashes to `code_challenge` (RFC 7636 §4.6).

    A missing, malformed or wrong verifier all read the same, so the error is no oracle.
    """
    if code_verifier is None or not is_code_verifier(code_verifier):
        raise InvalidGrant("code_verifier does not match the code challenge")
    expected = s256_challenge(code_verifier).encode("ascii")
    if not hmac.compare_digest(expected, code_challenge.encode("utf-8")):
        raise InvalidGrant("code_verifier does not match the code challenge")
