"""JSON Web Signature: compact and JSON serializations, detached and unencoded payloads."""

from __future__ import annotations

from ._jwa import SIGNATURE_ALGORITHMS
from ._jws import sign, sign_json, unverified_header, verify, verify_json, verify_json_detailed

__all__ = [
    "SIGNATURE_ALGORITHMS",
    "sign",
    "sign_json",
    "unverified_header",
    "verify",
    "verify_json",
    "verify_json_detailed",
]
