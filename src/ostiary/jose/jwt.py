"""JSON Web Tokens: `encode` and `decode`, with RFC 8725 defaults."""

from __future__ import annotations

from ._jwt import decode, encode, unverified_header, validate_claims

__all__ = ["decode", "encode", "unverified_header", "validate_claims"]
