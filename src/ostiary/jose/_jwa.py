"""Signature algorithms for JWS (RFC 7518 §3, RFC 8037, RFC 8812, RFC 9864)."""

from __future__ import annotations

from hmac import compare_digest
from typing import Final, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ._errors import InvalidKey
from ._jwk import JWK, MIN_RSA_BITS


class SignatureAlgorithm:
    """One JWS `alg`: the key type it needs, and how it signs and verifies."""

    __slots__ = ("kty", "name")

    name: str
    kty: str

    def sign(self, key: JWK, data: bytes) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def verify(self, key: JWK, data: bytes, signature: bytes) -> bool:  # pragma: no cover
        raise NotImplementedError

    def check_key(self, key: JWK) -> None:
        """Raise `InvalidKey` when the key cannot serve this algorithm at all."""
        if key.kty != self.kty:
            raise InvalidKey(f"{self.name} needs a {self.kty} key, not {key.kty}")

    def accepts(self, key: JWK) -> bool:
        """Whether the key's type (and curve) fits this algorithm."""
        return key.kty == self.kty


class HMACAlgorithm(SignatureAlgorithm):
    """HS256/384/512. The secret must be at least as long as the hash (RFC 7518 §3.2)."""

    __slots__ = ("hash", "size")

    def __init__(self, name: str, hash_alg: hashes.HashAlgorithm) -> None:
        self.name, self.kty, self.hash, self.size = name, "oct", hash_alg, hash_alg.digest_size

    def _mac(self, key: JWK, signing: bool) -> hmac.HMAC:
        secret = key._secret
        if secret is None:
            raise InvalidKey(f"{self.name} needs a symmetric key, not {key.kty}")
        if len(secret) < self.size and (signing or not key.legacy_short_secret):
            raise InvalidKey(
                f"{self.name} needs a secret of at least {self.size} bytes; "
                "to verify tokens made with a legacy short secret, import it with "
                "JWK.from_secret(..., legacy_short_secret=True)"
            )
        # A keyed context is copied per message: keying costs more than the MAC itself.
        cached = key._mac
        if cached is not None and cached[0] == self.name:
            ctx = cached[1]
        else:
            ctx = hmac.HMAC(secret, self.hash)
            key._mac = (self.name, ctx)
        mac: hmac.HMAC = ctx.copy()
        return mac

    def sign(self, key: JWK, data: bytes) -> bytes:
        mac = self._mac(key, True)
        mac.update(data)
        return mac.finalize()

    def verify(self, key: JWK, data: bytes, signature: bytes) -> bool:
        mac = self._mac(key, False)
        mac.update(data)
        return compare_digest(mac.finalize(), signature)


class RSAAlgorithm(SignatureAlgorithm):
    """RS* (PKCS#1 v1.5) and PS* (PSS, salt length equal to the hash, RFC 7518 §3.5)."""

    __slots__ = ("hash", "pss")

    def __init__(self, name: str, hash_alg: hashes.HashAlgorithm, pss: bool) -> None:
        self.name, self.kty, self.hash = name, "RSA", hash_alg
        self.pss: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
            if pss
            else padding.PKCS1v15()
        )

    def sign(self, key: JWK, data: bytes) -> bytes:
        private = key.private_key()
        if not isinstance(private, rsa.RSAPrivateKey):
            raise InvalidKey(f"{self.name} needs an RSA key")
        if private.key_size < MIN_RSA_BITS:  # pragma: no cover - refused at import
            raise InvalidKey(f"RSA keys must have at least {MIN_RSA_BITS} bits")
        return private.sign(data, self.pss, self.hash)

    def verify(self, key: JWK, data: bytes, signature: bytes) -> bool:
        if key.kty != "RSA":
            raise InvalidKey(f"{self.name} needs an RSA key")
        # kty RSA guarantees an RSA public key; an ABC isinstance check costs a microsecond.
        public = cast(rsa.RSAPublicKey, key._public)
        if len(signature) != (public.key_size + 7) // 8:
            return False
        try:
            public.verify(signature, data, self.pss, self.hash)
        except InvalidSignature:
            return False
        return True


class ECDSAAlgorithm(SignatureAlgorithm):
    """ES256/384/512 and ES256K: signatures are raw r||s (RFC 7518 §3.4), never DER."""

    __slots__ = ("crv", "ecdsa", "order", "size")

    def __init__(
        self, name: str, crv: str, hash_alg: hashes.HashAlgorithm, size: int, order: int
    ) -> None:
        self.name, self.kty, self.crv, self.size, self.order = name, "EC", crv, size, order
        self.ecdsa = ec.ECDSA(hash_alg)

    def check_key(self, key: JWK) -> None:
        super().check_key(key)
        if key.crv != self.crv:
            raise InvalidKey(f"{self.name} needs a {self.crv} key, not {key.crv}")

    def accepts(self, key: JWK) -> bool:
        return key.kty == "EC" and key.crv == self.crv

    def sign(self, key: JWK, data: bytes) -> bytes:
        self.check_key(key)
        private = key.private_key()
        if not isinstance(private, ec.EllipticCurvePrivateKey):  # pragma: no cover
            raise InvalidKey(f"{self.name} needs an EC key")
        r, s = decode_dss_signature(private.sign(data, self.ecdsa))
        return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")

    def verify(self, key: JWK, data: bytes, signature: bytes) -> bool:
        if len(signature) != 2 * self.size or key.crv != self.crv:
            return False
        r = int.from_bytes(signature[: self.size], "big")
        s = int.from_bytes(signature[self.size :], "big")
        # r and s outside [1, n-1] are never valid (the "psychic signatures" class of bugs).
        if not (0 < r < self.order and 0 < s < self.order):
            return False
        public = cast(ec.EllipticCurvePublicKey, key._public)  # crv checked above
        try:
            public.verify(encode_dss_signature(r, s), data, self.ecdsa)
        except InvalidSignature:
            return False
        return True


class EdDSAAlgorithm(SignatureAlgorithm):
    """EdDSA (RFC 8037, either curve) and the fully specified Ed25519 / Ed448 (RFC 9864)."""

    __slots__ = ("curves",)

    def __init__(self, name: str, curves: frozenset[str]) -> None:
        self.name, self.kty, self.curves = name, "OKP", curves

    def check_key(self, key: JWK) -> None:
        super().check_key(key)
        if key.crv not in self.curves:
            raise InvalidKey(f"{self.name} needs an {' or '.join(sorted(self.curves))} key")

    def accepts(self, key: JWK) -> bool:
        return key.kty == "OKP" and key.crv in self.curves

    def sign(self, key: JWK, data: bytes) -> bytes:
        self.check_key(key)
        private = key.private_key()
        if not isinstance(private, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
            raise InvalidKey(f"{self.name} needs an Ed25519 or Ed448 key")  # pragma: no cover
        return private.sign(data)

    def verify(self, key: JWK, data: bytes, signature: bytes) -> bool:
        if key.crv not in self.curves:
            return False
        public = cast(ed25519.Ed25519PublicKey | ed448.Ed448PublicKey, key._public)
        try:
            public.verify(signature, data)
        except InvalidSignature:
            return False
        return True


_P256_N: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P384_N: Final = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)
_P521_N: Final = int(
    "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
    "A51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
    16,
)
_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

SIGNATURE_ALGORITHMS: Final[dict[str, SignatureAlgorithm]] = {
    alg.name: alg
    for alg in (
        HMACAlgorithm("HS256", hashes.SHA256()),
        HMACAlgorithm("HS384", hashes.SHA384()),
        HMACAlgorithm("HS512", hashes.SHA512()),
        RSAAlgorithm("RS256", hashes.SHA256(), pss=False),
        RSAAlgorithm("RS384", hashes.SHA384(), pss=False),
        RSAAlgorithm("RS512", hashes.SHA512(), pss=False),
        RSAAlgorithm("PS256", hashes.SHA256(), pss=True),
        RSAAlgorithm("PS384", hashes.SHA384(), pss=True),
        RSAAlgorithm("PS512", hashes.SHA512(), pss=True),
        ECDSAAlgorithm("ES256", "P-256", hashes.SHA256(), 32, _P256_N),
        ECDSAAlgorithm("ES384", "P-384", hashes.SHA384(), 48, _P384_N),
        ECDSAAlgorithm("ES512", "P-521", hashes.SHA512(), 66, _P521_N),
        ECDSAAlgorithm("ES256K", "secp256k1", hashes.SHA256(), 32, _SECP256K1_N),
        EdDSAAlgorithm("EdDSA", frozenset({"Ed25519", "Ed448"})),
        EdDSAAlgorithm("Ed25519", frozenset({"Ed25519"})),
        EdDSAAlgorithm("Ed448", frozenset({"Ed448"})),
    )
}
"""Every JWS algorithm implemented. `none` is deliberately absent: it cannot be enabled."""
