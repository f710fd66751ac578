"""JOSE: JWS, JWE, JWK and JWT on pyca/cryptography, hardened by default.

from ostiary.jose import jwk, jwt

key = jwk.JWK.generate("EC", crv="P-256", kid="2026-11")
token = jwt.encode({"sub": "u_123", "aud": "billing", "exp": exp}, key, alg="ES256")
claims = jwt.decode(token, key, algorithms=["ES256"], audience="billing")
"""

from __future__ import annotations

import importlib

from . import dpop, jwk, jws, jwt
from ._errors import (
    BadSignature,
    DecryptionFailed,
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaims,
    InvalidHeader,
    InvalidIssuer,
    InvalidKey,
    InvalidType,
    JoseError,
    KeyNotFound,
    MalformedToken,
    MissingClaim,
    TokenTooLarge,
    UnsupportedAlgorithm,
)
from ._jwk import JWK, JWKSet

__all__ = [
    "JWK",
    "BadSignature",
    "DecryptionFailed",
    "ExpiredToken",
    "ImmatureToken",
    "InvalidAudience",
    "InvalidClaims",
    "InvalidHeader",
    "InvalidIssuer",
    "InvalidKey",
    "InvalidType",
    "JWKSet",
    "JoseError",
    "KeyNotFound",
    "MalformedToken",
    "MissingClaim",
    "TokenTooLarge",
    "UnsupportedAlgorithm",
    "dpop",
    "jwe",
    "jwk",
    "jws",
    "jwt",
]


def __getattr__(name: str) -> object:
    # JWE pulls in more of cryptography; load it on first use to keep `import` fast.
    if name == "jwe":
        return importlib.import_module(f"{__name__}.jwe")
    raise AttributeError(f"module 'ostiary.jose' has no attribute {name!r}")
