"""JSON Web Tokens: `encode` and `decode`, with RFC 8725 defaults."""

from __future__ import annotations

from ._jwt import decode, decode_with_embedded_key, encode, unverified_header, validate_claims

__all__ = ["decode", "decode_with_embedded_key", "encode", "unverified_header", "validate_claims"]
