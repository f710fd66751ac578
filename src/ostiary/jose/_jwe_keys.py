"""JWE key management (RFC 7518 §4, RFC 8037 §3.2): how each `alg` gets the CEK across.

Key operations checked against a JWK's `use`/`key_ops` (RFC 7517 §4.3):

| alg                               | encrypt     | decrypt     |
|-----------------------------------|-------------|-------------|
| RSA-OAEP*, RSA1_5, A*KW, A*GCMKW  | `wrapKey`   | `unwrapKey` |
| ECDH-ES*, PBES2-*                 | `deriveKey` | `deriveKey` |
| dir                               | `encrypt`   | `decrypt`   |
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, Final, Protocol, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import _limits
from ._b64 import b64decode, b64encode
from ._errors import DecryptionFailed, InvalidHeader, InvalidKey, MalformedToken
from ._jwe_content import ContentEncryption, aesgcm_for
from ._jwk import JWK


class EphemeralKey:
    """The sender's ephemeral public key (`epk`), checked to lie on its curve."""

    __slots__ = ("crv", "kty", "public")

    def __init__(self, kty: str, crv: str, public: Any) -> None:
        self.kty = kty
        self.crv = crv
        self.public = public


class Params:
    """The per-algorithm header members of one recipient, checked and decoded."""

    __slots__ = ("apu", "apv", "epk", "iv", "p2c", "p2s", "tag")

    def __init__(
        self,
        *,
        epk: EphemeralKey | None = None,
        apu: bytes = b"",
        apv: bytes = b"",
        iv: bytes = b"",
        tag: bytes = b"",
        p2s: bytes = b"",
        p2c: int = 0,
    ) -> None:
        self.epk = epk
        self.apu = apu
        self.apv = apv
        self.iv = iv
        self.tag = tag
        self.p2s = p2s
        self.p2c = p2c


NO_PARAMS: Final = Params()


class KeyManagement(Protocol):
    """An `alg` for JWE: wraps (or agrees on) the CEK for one recipient."""

    @property
    def name(self) -> str: ...
    @property
    def key_types(self) -> tuple[str, ...]: ...
    @property
    def wrap_op(self) -> str:
        """The JWK key operation that encrypting needs."""
        ...

    @property
    def unwrap_op(self) -> str:
        """The JWK key operation that decrypting needs."""
        ...

    @property
    def direct(self) -> bool:
        """The CEK is the key or is agreed on: the encrypted key is empty."""
        ...

    @property
    def reuses_key(self) -> bool:
        """The CEK outlives one message (only `dir`)."""
        ...

    @property
    def adds_header(self) -> bool:
        """Encrypting writes members (`epk`, `iv`, `p2s`, ...) into the header."""
        ...

    def unfit(self, key: JWK, enc: ContentEncryption, params: Params | None) -> str | None:
        """Why this key cannot serve (size, curve), or None when it can."""
        ...

    def read(self, header: Mapping[str, Any], max_pbes2_count: int) -> Params:
        """Check and decode this algorithm's header members (`InvalidHeader` when bad)."""
        ...

    def wrap(
        self,
        key: JWK,
        enc: ContentEncryption,
        cek: bytes | None,
        params: Mapping[str, Any],
        out: dict[str, Any],
    ) -> tuple[bytes, bytes]:
        """Return `(cek, encrypted_key)`, writing new header members into `out`.

        `cek` is None for the first (or only) recipient: a key-wrapping algorithm then draws a
        random one. `params` holds the caller's headers (`apu`, `p2c`, ...).
        """
        ...

    def unwrap(
        self, key: JWK, enc: ContentEncryption, params: Params, encrypted_key: bytes
    ) -> bytes:
        """Recover the CEK; `DecryptionFailed` on any failure."""
        ...


def _header_bytes(
    header: Mapping[str, Any], name: str, *, required: bool, where: str = "JWE header"
) -> bytes:
    value = header.get(name)
    if value is None:
        if required:
            raise InvalidHeader(f"{where} needs {name!r}")
        return b""
    if not isinstance(value, str):
        raise InvalidHeader(f"{where} member {name!r} must be a base64url string")
    try:
        return b64decode(value, f"{where} member {name!r}")
    except MalformedToken as exc:
        raise InvalidHeader(str(exc)) from None


def _caller_bytes(params: Mapping[str, Any], name: str) -> bytes | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"header {name!r} must be a base64url string")
    try:
        return b64decode(value, f"header {name!r}")
    except MalformedToken as exc:
        raise ValueError(str(exc)) from None


def _random_cek(enc: ContentEncryption, cek: bytes | None) -> bytes:
    return cek if cek is not None else os.urandom(enc.key_size)


class RsaKeyManagement:
    """RSA-OAEP, RSA-OAEP-256/384/512 (RFC 7518 §4.3) and RSA1_5 (§4.2, decrypt only)."""

    __slots__ = ("_padding", "name")

    key_types: Final = ("RSA",)
    wrap_op: Final = "wrapKey"
    unwrap_op: Final = "unwrapKey"
    direct: Final = False
    reuses_key: Final = False
    adds_header: Final = False

    def __init__(self, name: str, pad: padding.AsymmetricPadding) -> None:
        self.name = name
        self._padding = pad

    def unfit(self, key: JWK, enc: ContentEncryption, params: Params | None) -> str | None:
        return None

    def read(self, header: Mapping[str, Any], max_pbes2_count: int) -> Params:
        return NO_PARAMS

    def wrap(
        self,
        key: JWK,
        enc: ContentEncryption,
        cek: bytes | None,
        params: Mapping[str, Any],
        out: dict[str, Any],
    ) -> tuple[bytes, bytes]:
        if self.name == "RSA1_5":  # pragma: no cover - refused before any key is touched
            raise InvalidKey("RSA1_5 never encrypts")
        public = cast(rsa.RSAPublicKey, key.public_key())  # kty is checked before: no ABC check
        cek = _random_cek(enc, cek)
        return cek, public.encrypt(cek, self._padding)

    def unwrap(
        self, key: JWK, enc: ContentEncryption, params: Params, encrypted_key: bytes
    ) -> bytes:
        private = cast(rsa.RSAPrivateKey, key.private_key())
        if self.name == "RSA1_5":
            return self._unwrap_pkcs1(private, enc, encrypted_key)
        try:
            return private.decrypt(encrypted_key, self._padding)
        except ValueError:
            raise DecryptionFailed() from None

    def _unwrap_pkcs1(
        self, private: rsa.RSAPrivateKey, enc: ContentEncryption, encrypted_key: bytes
    ) -> bytes:
        # RFC 7516 §11.5 (Bleichenbacher): on a padding or length error carry on with a random
        # CEK, so the failure shows up at the content tag exactly as a wrong CEK would.
        fallback = os.urandom(enc.key_size)
        try:
            cek = private.decrypt(encrypted_key, padding.PKCS1v15())
        except ValueError:
            return fallback
        return cek if len(cek) == enc.key_size else fallback


class _SymmetricKeyWrap:
    """What AES Key Wrap and AES-GCM key wrap share: an `oct` key of exactly the KEK size."""

    __slots__ = ("kek_size", "name")

    key_types: Final = ("oct",)
    wrap_op: Final = "wrapKey"
    unwrap_op: Final = "unwrapKey"
    direct: Final = False
    reuses_key: Final = False

    def __init__(self, name: str, kek_size: int) -> None:
        self.name = name
        self.kek_size = kek_size

    def unfit(self, key: JWK, enc: ContentEncryption, params: Params | None) -> str | None:
        if key.key_size != self.kek_size * 8:
            return f"{self.name} needs a {self.kek_size * 8}-bit key, not {key.key_size} bits"
        return None


class AesKeyWrap(_SymmetricKeyWrap):
    """A128KW, A192KW, A256KW (RFC 7518 §4.4, RFC 3394)."""

    __slots__ = ()

    adds_header: Final = False

    def read(self, header: Mapping[str, Any], max_pbes2_count: int) -> Params:
        return NO_PARAMS

    def wrap(
        self,
        key: JWK,
        enc: ContentEncryption,
        cek: bytes | None,
        params: Mapping[str, Any],
        out: dict[str, Any],
    ) -> tuple[bytes, bytes]:
        cek = _random_cek(enc, cek)
        return cek, aes_key_wrap(key.secret(), cek)

    def unwrap(
        self, key: JWK, enc: ContentEncryption, params: Params, encrypted_key: bytes
    ) -> bytes:
        return _key_unwrap(key.secret(), encrypted_key)


def _key_unwrap(kek: bytes, encrypted_key: bytes) -> bytes:
    try:
        return aes_key_unwrap(kek, encrypted_key)
    except (InvalidUnwrap, ValueError):
        raise DecryptionFailed() from None


class AesGcmKeyWrap(_SymmetricKeyWrap):
    """A128GCMKW, A192GCMKW, A256GCMKW (RFC 7518 §4.7): `iv` and `tag` in the header."""

    __slots__ = ()

    adds_header: Final = True

    def read(self, header: Mapping[str, Any], max_pbes2_count: int) -> Params:
        iv = _header_bytes(header, "iv", required=True)
        tag = _header_bytes(header, "tag", required=True)
        if len(iv) != 12:
            raise InvalidHeader(f"{self.name} needs a 96-bit 'iv'")
        if len(tag) != 16:
            raise InvalidHeader(f"{self.name} needs a 128-bit 'tag'")
        return Params(iv=iv, tag=tag)

    def wrap(
        self,
        key: JWK,
        enc: ContentEncryption,
        cek: bytes | None,
        params: Mapping[str, Any],
        out: dict[str, Any],
    ) -> tuple[bytes, bytes]:
        if "iv" in params or "tag" in params:
            raise ValueError(f"{self.name} chooses 'iv' and 'tag' itself")
        cek = _random_cek(enc, cek)
        iv = os.urandom(12)
        sealed = aesgcm_for(key.secret()).encrypt(iv, cek, None)
        out["iv"] = b64encode(iv)
        out["tag"] = b64encode(sealed[-16:])
        return cek, sealed[:-16]

    def unwrap(
        self, key: JWK, enc: ContentEncryption, params: Params, encrypted_key: bytes
    ) -> bytes:
        try:
            return aesgcm_for(key.secret()).decrypt(params.iv, encrypted_key + params.tag, None)
        except (InvalidTag, ValueError):
            raise DecryptionFailed() from None


class DirectEncryption:
    """`dir` (RFC 7518 §4.5): the shared symmetric key is the CEK."""

    __slots__ = ()

    name: Final = "dir"
    key_types: Final = ("oct",)
    wrap_op: Final = "encrypt"
    unwrap_op: Final = "decrypt"
    direct: Final = True
    reuses_key: Final = True
    adds_header: Final = False

    def unfit(self, key: JWK, enc: ContentEncryption, params: Params | None) -> str | None:
        if key.key_size != enc.key_size * 8:
            return f"dir with {enc.name} needs a {enc.key_size * 8}-bit key, not {key.key_size}"
        return None

    def read(self, header: Mapping[str, Any], max_pbes2_count: int) -> Params:
        return NO_PARAMS

    def wrap(
        self,
        key: JWK,
        enc: ContentEncryption,
        cek: bytes | None,
        params: Mapping[str, Any],
        out: dict[str, Any],
    ) -> tuple[bytes, bytes]:
        return key.secret(), b""

    def unwrap(
        self, key: JWK, enc: ContentEncryption, params: Params, encrypted_key: bytes
    ) -> bytes:
        return key.secret()


# RFC 7518 §4.6 (P-256/384/521) and RFC 8037 §3.2 (X25519/X448).
_EC_CURVES: Final[dict[str, ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}
_EC_SIZES: Final = {"P-256": 32, "P-384": 48, "P-521": 66}
_OKP_CURVES: Final[dict[str, tuple[Any, int]]] = {
    "X25519": (x25519.X25519PublicKey, 32),
    "X448": (x448.X448PublicKey, 56),
}
_ECDH: Final = ec.ECDH()


def concat_kdf(shared: bytes, algorithm_id: str, apu: bytes, apv: bytes, size: int) -> bytes:
    """RFC 7518 §4.6.2: NIST SP 800-56A Concat KDF with SHA-256, `size` bytes of output."""
    alg = algorithm_id.encode("ascii")
    other_info = b"".join(
        (
            len(alg).to_bytes(4, "big"),
            alg,
            len(apu).to_bytes(4, "big"),
            apu,
            len(apv).to_bytes(4, "big"),
            apv,
            (size * 8).to_bytes(4, "big"),  # SuppPubInfo: keydatalen in bits
        )
    )
    out = b""
    counter = 1
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(4, "big") + shared + other_info).digest()
        counter += 1
    return out[:size]


def _agree(private: Any, public: Any) -> bytes:
    """The ECDH shared secret Z, refusing an all-zero result (RFC 7748 §6.1)."""
    try:
        if isinstance(private, ec.EllipticCurvePrivateKey):
            shared: bytes = private.exchange(_ECDH, public)
        else:
            shared = private.exchange(public)  # X25519 / X448
    except (ValueError, TypeError, AttributeError):
        raise DecryptionFailed() from None
    if not any(shared):
        raise DecryptionFailed()
    return shared


def _epk_member(raw: Mapping[str, Any], name: str, size: int) -> bytes:
    value = _header_bytes(raw, name, required=True, where="'epk'")
    if len(value) != size:
        raise InvalidHeader(f"'epk' member {name!r} must be {size} bytes for {raw['crv']}")
    return value


def _ephemeral_key(raw: Mapping[str, Any]) -> EphemeralKey:
    """Import `epk`, refusing points off the named curve (the invalid-curve attack)."""
    kty, crv = raw.get("kty"), raw.get("crv")
    if kty == "EC" and isinstance(crv, str) and crv in _EC_CURVES:
        size = _EC_SIZES[crv]
        point = b"\x04" + _epk_member(raw, "x", size) + _epk_member(raw, "y", size)
        try:
            # from_encoded_point checks that the point lies on the curve.
            public: Any = ec.EllipticCurvePublicKey.from_encoded_point(_EC_CURVES[crv], point)
        except ValueError:
            raise InvalidHeader(f"'epk' is not a point on curve {crv}") from None
        return EphemeralKey("EC", crv, public)
    if kty == "OKP" and isinstance(crv, str) and crv in _OKP_CURVES and "y" not in raw:
        public_class, size = _OKP_CURVES[crv]
        try:
            public = public_class.from_public_bytes(_epk_member(raw, "x", size))
        except ValueError:
            raise InvalidHeader(f"'epk' is not a valid {crv} public key") from None
        return EphemeralKey("OKP", crv, public)
    raise InvalidHeader("'epk' must be an EC key on P-256, P-384 or P-521, or an X25519/X448 key")


class EcdhEs:
    """ECDH-ES and ECDH-ES+A128KW/A192KW/A256KW (RFC 7518 §4.6, RFC 8037 §3.2)."""

    __slots__ = ("direct", "kek_size", "name")

    key_types: Final = ("EC", "OKP")
    wrap_op: Final = "deriveKey"
    unwrap_op: Final = "deriveKey"
    reuses_key: Final = False
    adds_header: Final = True

    def __init__(self, name: str, kek_size: int) -> None:
        self.name = name
        self.kek_size = kek_size  # 0 for direct key agreement
        self.direct = kek_size == 0

    def unfit(self, key: JWK, enc: ContentEncryption, params: Params | None) -> str | None:
        crv = key.crv or ""
        if crv not in _EC_CURVES and crv not in _OKP_CURVES:
            return f"{self.name} works on P-256, P-384, P-521, X25519 and X448, not {crv}"
        if params is not None and params.epk is not None and params.epk.crv != crv:
            return f"the key is on {crv}, but the token's 'epk' is on {params.epk.crv}"
        return None

    def read(self, header: Mapping[str, Any], max_pbes2_count: int) -> Params:
        raw = header.get("epk")
        if not isinstance(raw, Mapping):
            raise InvalidHeader(f"{self.name} needs an 'epk' JWK object in the header")
        if "d" in raw:
            raise InvalidHeader("'epk' must be a public key")
        epk = _ephemeral_key(raw)
        apu = _header_bytes(header, "apu", required=False)
        apv = _header_bytes(header, "apv", required=False)
        return Params(epk=epk, apu=apu, apv=apv)

    def _derive(self, shared: bytes, enc: ContentEncryption, apu: bytes, apv: bytes) -> bytes:
        # Direct agreement binds the KDF to `enc`, key wrapping to `alg` (RFC 7518 §4.6.2).
        if self.direct:
            return concat_kdf(shared, enc.name, apu, apv, enc.key_size)
        return concat_kdf(shared, self.name, apu, apv, self.kek_size)

    def wrap(
        self,
        key: JWK,
        enc: ContentEncryption,
        cek: bytes | None,
        params: Mapping[str, Any],
        out: dict[str, Any],
    ) -> tuple[bytes, bytes]:
        if "epk" in params:
            raise ValueError(f"{self.name} makes its own ephemeral key; do not pass 'epk'")
        if self.direct and cek is not None:
            raise ValueError("ECDH-ES agrees on the CEK and so serves only one recipient")
        apu = _caller_bytes(params, "apu") or b""
        apv = _caller_bytes(params, "apv") or b""
        public = key.public_key()
        crv = key.crv or ""
        ephemeral: Any
        if key.kty == "EC":
            ephemeral = ec.generate_private_key(_EC_CURVES[crv])
            point = ephemeral.public_key().public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint
            )
            size = (len(point) - 1) // 2
            out["epk"] = {
                "kty": "EC",
                "crv": key.crv,
                "x": b64encode(point[1 : 1 + size]),
                "y": b64encode(point[1 + size :]),
            }
        else:
            ephemeral = (
                x25519.X25519PrivateKey.generate()
                if crv == "X25519"
                else x448.X448PrivateKey.generate()
            )
            raw = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            out["epk"] = {"kty": "OKP", "crv": key.crv, "x": b64encode(raw)}
        try:
            derived = self._derive(_agree(ephemeral, public), enc, apu, apv)
        except DecryptionFailed:
            raise InvalidKey(
                "the recipient's public key gives a degenerate shared secret"
            ) from None
        if self.direct:
            return derived, b""
        cek = _random_cek(enc, cek)
        return cek, aes_key_wrap(derived, cek)

    def unwrap(
        self, key: JWK, enc: ContentEncryption, params: Params, encrypted_key: bytes
    ) -> bytes:
        epk = params.epk
        if epk is None:  # pragma: no cover - read() requires it
            raise DecryptionFailed()
        shared = _agree(key.private_key(), epk.public)
        derived = self._derive(shared, enc, params.apu, params.apv)
        if self.direct:
            return derived
        return _key_unwrap(derived, encrypted_key)


class Pbes2:
    """PBES2-HS256+A128KW, PBES2-HS384+A192KW, PBES2-HS512+A256KW (RFC 7518 §4.8)."""

    __slots__ = ("_hash", "kek_size", "name")

    key_types: Final = ("oct",)
    wrap_op: Final = "deriveKey"
    unwrap_op: Final = "deriveKey"
    direct: Final = False
    reuses_key: Final = False
    adds_header: Final = True

    def __init__(self, name: str, hash_name: str, kek_size: int) -> None:
        self.name = name
        self._hash = hash_name
        self.kek_size = kek_size

    def unfit(self, key: JWK, enc: ContentEncryption, params: Params | None) -> str | None:
        return None

    def read(self, header: Mapping[str, Any], max_pbes2_count: int) -> Params:
        p2s = _header_bytes(header, "p2s", required=True)
        if len(p2s) < 8:  # RFC 7518 §4.8.1.1
            raise InvalidHeader("'p2s' must be at least 8 bytes")
        p2c = header.get("p2c")
        if not isinstance(p2c, int) or isinstance(p2c, bool):
            raise InvalidHeader(f"{self.name} needs an integer 'p2c'")
        # Each unit of p2c is an HMAC the sender makes us compute: bound it both ways.
        if not _limits.MIN_PBES2_COUNT <= p2c <= max_pbes2_count:
            raise InvalidHeader(
                f"'p2c' must be between {_limits.MIN_PBES2_COUNT} and {max_pbes2_count}"
            )
        return Params(p2s=p2s, p2c=p2c)

    def _kek(self, password: bytes, p2s: bytes, p2c: int) -> bytes:
        salt = self.name.encode("ascii") + b"\x00" + p2s  # RFC 7518 §4.8.1.1
        return hashlib.pbkdf2_hmac(self._hash, password, salt, p2c, self.kek_size)

    def wrap(
        self,
        key: JWK,
        enc: ContentEncryption,
        cek: bytes | None,
        params: Mapping[str, Any],
        out: dict[str, Any],
    ) -> tuple[bytes, bytes]:
        p2s = _caller_bytes(params, "p2s")
        if p2s is None:
            p2s = os.urandom(16)
            out["p2s"] = b64encode(p2s)
        elif len(p2s) < 8:
            raise ValueError("'p2s' must be at least 8 bytes")
        p2c = params.get("p2c")
        if p2c is None:
            p2c = _limits.DEFAULT_PBES2_COUNT
            out["p2c"] = p2c
        elif not isinstance(p2c, int) or isinstance(p2c, bool) or p2c < _limits.MIN_PBES2_COUNT:
            raise ValueError(f"'p2c' must be an integer of at least {_limits.MIN_PBES2_COUNT}")
        cek = _random_cek(enc, cek)
        return cek, aes_key_wrap(self._kek(key.secret(), p2s, p2c), cek)

    def unwrap(
        self, key: JWK, enc: ContentEncryption, params: Params, encrypted_key: bytes
    ) -> bytes:
        return _key_unwrap(self._kek(key.secret(), params.p2s, params.p2c), encrypted_key)


def _oaep(digest: hashes.HashAlgorithm) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)


KEY_MANAGEMENT: Final[dict[str, KeyManagement]] = {
    "RSA1_5": RsaKeyManagement("RSA1_5", padding.PKCS1v15()),
    "RSA-OAEP": RsaKeyManagement("RSA-OAEP", _oaep(hashes.SHA1())),  # noqa: S303 - RFC 7518 §4.3
    "RSA-OAEP-256": RsaKeyManagement("RSA-OAEP-256", _oaep(hashes.SHA256())),
    "RSA-OAEP-384": RsaKeyManagement("RSA-OAEP-384", _oaep(hashes.SHA384())),
    "RSA-OAEP-512": RsaKeyManagement("RSA-OAEP-512", _oaep(hashes.SHA512())),
    "A128KW": AesKeyWrap("A128KW", 16),
    "A192KW": AesKeyWrap("A192KW", 24),
    "A256KW": AesKeyWrap("A256KW", 32),
    "dir": DirectEncryption(),
    "ECDH-ES": EcdhEs("ECDH-ES", 0),
    "ECDH-ES+A128KW": EcdhEs("ECDH-ES+A128KW", 16),
    "ECDH-ES+A192KW": EcdhEs("ECDH-ES+A192KW", 24),
    "ECDH-ES+A256KW": EcdhEs("ECDH-ES+A256KW", 32),
    "A128GCMKW": AesGcmKeyWrap("A128GCMKW", 16),
    "A192GCMKW": AesGcmKeyWrap("A192GCMKW", 24),
    "A256GCMKW": AesGcmKeyWrap("A256GCMKW", 32),
    "PBES2-HS256+A128KW": Pbes2("PBES2-HS256+A128KW", "sha256", 16),
    "PBES2-HS384+A192KW": Pbes2("PBES2-HS384+A192KW", "sha384", 24),
    "PBES2-HS512+A256KW": Pbes2("PBES2-HS512+A256KW", "sha512", 32),
}
"""Every supported JWE `alg`, by name; RSA1_5 is here only for decryption."""

DECRYPT_ONLY: Final = frozenset({"RSA1_5"})
"""Algorithms that never encrypt (RFC 7516 §11.5: RSA1_5 invites Bleichenbacher attacks)."""
