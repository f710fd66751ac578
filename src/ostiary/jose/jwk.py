"""JSON Web Keys and key sets: generate, import, export, thumbprints."""

from __future__ import annotations

from ._jwk import JWK, THUMBPRINT_URI_PREFIX, JWKSet, KeyInput, generate

__all__ = ["JWK", "THUMBPRINT_URI_PREFIX", "JWKSet", "KeyInput", "generate"]
