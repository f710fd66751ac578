"""Keys for the JOSE unit tests: generated once per process, shared by every test file.

Keys carry no `alg`, so one RSA key serves RS* and PS* alike; tests that need `alg`, `kid`,
`use` or `key_ops` build their own key from these with `with_members`.
"""

from __future__ import annotations

import functools
from typing import Any

from ostiary.jose.jwk import JWK

# Every JWS algorithm -> (kty, arguments for JWK.generate). A test pins this against the
# library's registry, so a new algorithm cannot land without these tests covering it.
SIGNATURE_KEY_SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "HS256": ("oct", {"size": 256}),
    "HS384": ("oct", {"size": 384}),
    "HS512": ("oct", {"size": 512}),
    "RS256": ("RSA", {"size": 2048}),
    "RS384": ("RSA", {"size": 2048}),
    "RS512": ("RSA", {"size": 2048}),
    "PS256": ("RSA", {"size": 2048}),
    "PS384": ("RSA", {"size": 2048}),
    "PS512": ("RSA", {"size": 2048}),
    "ES256": ("EC", {"crv": "P-256"}),
    "ES384": ("EC", {"crv": "P-384"}),
    "ES512": ("EC", {"crv": "P-521"}),
    "ES256K": ("EC", {"crv": "secp256k1"}),
    "EdDSA": ("OKP", {"crv": "Ed25519"}),
    "Ed25519": ("OKP", {"crv": "Ed25519"}),
    "Ed448": ("OKP", {"crv": "Ed448"}),
}
SIGNATURE_ALGS: tuple[str, ...] = tuple(SIGNATURE_KEY_SPECS)

# Every key type and curve the library supports, by a readable id.
KEY_SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "RSA-2048": ("RSA", {"size": 2048}),
    "EC-P-256": ("EC", {"crv": "P-256"}),
    "EC-P-384": ("EC", {"crv": "P-384"}),
    "EC-P-521": ("EC", {"crv": "P-521"}),
    "EC-secp256k1": ("EC", {"crv": "secp256k1"}),
    "OKP-Ed25519": ("OKP", {"crv": "Ed25519"}),
    "OKP-Ed448": ("OKP", {"crv": "Ed448"}),
    "OKP-X25519": ("OKP", {"crv": "X25519"}),
    "OKP-X448": ("OKP", {"crv": "X448"}),
    "oct-256": ("oct", {"size": 256}),
}
ASYMMETRIC_KEY_IDS: tuple[str, ...] = tuple(k for k in KEY_SPECS if not k.startswith("oct"))


@functools.cache
def _generate(kty: str, spec: tuple[tuple[str, Any], ...], slot: int) -> JWK:
    del slot  # only distinguishes a second, independent key of the same kind
    return JWK.generate(kty, **dict(spec))


def key_of(key_id: str, slot: int = 0) -> JWK:
    """A private key of the kind named in `KEY_SPECS`; `slot=1` gives a different one."""
    kty, args = KEY_SPECS[key_id]
    return _generate(kty, tuple(sorted(args.items())), slot)


def key_for(alg: str, slot: int = 0) -> JWK:
    """A private key (without `alg`) that can sign `alg`; `slot=1` gives a different one."""
    kty, args = SIGNATURE_KEY_SPECS[alg]
    return _generate(kty, tuple(sorted(args.items())), slot)


def with_members(key: JWK, *, private: bool = True, **members: Any) -> JWK:
    """A copy of `key` with JWK members added, replaced, or removed (value None)."""
    data = key.to_dict(private=private)
    for name, value in members.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return JWK.from_dict(data)
