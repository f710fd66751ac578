"""JSON Web Encryption (RFC 7516): encrypt and decrypt, compact and JSON serializations."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from ._jwe import MAX_RECIPIENTS, decrypt, decrypt_json, encrypt, encrypt_json, unverified_header
from ._jwe_content import CONTENT_ENCRYPTION, ContentEncryption
from ._jwe_keys import KEY_MANAGEMENT, KeyManagement

KEY_MANAGEMENT_ALGORITHMS: Final[MappingProxyType[str, KeyManagement]] = MappingProxyType(
    KEY_MANAGEMENT
)
"""Every supported `alg`, by name (RSA1_5 decrypts only, and only when named)."""

CONTENT_ENCRYPTION_ALGORITHMS: Final[MappingProxyType[str, ContentEncryption]] = MappingProxyType(
    CONTENT_ENCRYPTION
)
"""Every supported `enc`, by name."""

__all__ = [
    "CONTENT_ENCRYPTION_ALGORITHMS",
    "KEY_MANAGEMENT_ALGORITHMS",
    "MAX_RECIPIENTS",
    "decrypt",
    "decrypt_json",
    "encrypt",
    "encrypt_json",
    "unverified_header",
]
