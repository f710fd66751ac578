"""DPoP proofs (RFC 9449): `verify_proof` checks one proof against one HTTP request."""

from __future__ import annotations

from ._dpop import (
    DPOP_ALGORITHMS,
    IAT_WINDOW,
    MAX_JTI_LENGTH,
    MAX_NONCE_LENGTH,
    MAX_PROOF_SIZE,
    PROOF_TYPE,
    DPoPProof,
    InvalidProof,
    access_token_hash,
    is_request_url,
    normalize_htu,
    verify_proof,
)

__all__ = [
    "DPOP_ALGORITHMS",
    "IAT_WINDOW",
    "MAX_JTI_LENGTH",
    "MAX_NONCE_LENGTH",
    "MAX_PROOF_SIZE",
    "PROOF_TYPE",
    "DPoPProof",
    "InvalidProof",
    "access_token_hash",
    "is_request_url",
    "normalize_htu",
    "verify_proof",
]
