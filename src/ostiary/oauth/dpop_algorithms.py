"""The signature algorithms a DPoP proof may use (RFC 9449 §4.2): asymmetric only, never
`none` or a MAC. Apart from `dpop.py` so the metadata can name them without importing it."""

from __future__ import annotations

from typing import Final

DPOP_ALGORITHMS: Final = (
    "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
)  # fmt: skip
