"""JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037), key sets, thumbprints (RFC 7638, 9278)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from ._b64 import b64decode, b64encode, uint_b64encode
from ._errors import InvalidKey, MalformedToken
from ._json import loads_object

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | x25519.X25519PrivateKey
    | x448.X448PrivateKey
)
PublicKey: TypeAlias = (
    rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
    | x25519.X25519PublicKey
    | x448.X448PublicKey
)

MIN_RSA_BITS: Final = 2048

# RFC 7518 §6.2.1.1 and RFC 8812 §3.1: curve name -> (curve class, field size in bytes)
_EC_CURVES: Final[dict[str, tuple[type[ec.EllipticCurve], int]]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
    "P-521": (ec.SECP521R1, 66),
    "secp256k1": (ec.SECP256K1, 32),
}
_EC_NAME_BY_CURVE: Final = {
    "secp256r1": "P-256",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
    "secp256k1": "secp256k1",
}

# RFC 8037 §2: OKP curves -> (private class, public class, key length)
_OKP_CURVES: Final[dict[str, tuple[Any, Any, int]]] = {
    "Ed25519": (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey, 32),
    "Ed448": (ed448.Ed448PrivateKey, ed448.Ed448PublicKey, 57),
    "X25519": (x25519.X25519PrivateKey, x25519.X25519PublicKey, 32),
    "X448": (x448.X448PrivateKey, x448.X448PublicKey, 56),
}

_KEY_OPS: Final = frozenset(
    {"sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"}
)
# RFC 7517 §4.3: the use value each operation belongs to.
_USE_OF_OP: Final = {
    "sign": "sig",
    "verify": "sig",
    "encrypt": "enc",
    "decrypt": "enc",
    "wrapKey": "enc",
    "unwrapKey": "enc",
    "deriveKey": "enc",
    "deriveBits": "enc",
}
_PRIVATE_MEMBERS: Final = {
    "RSA": ("d", "p", "q", "dp", "dq", "qi", "oth"),
    "EC": ("d",),
    "OKP": ("d",),
    "oct": ("k",),
}
_THUMBPRINT_MEMBERS: Final = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}
THUMBPRINT_URI_PREFIX: Final = "urn:ietf:params:oauth:jwk-thumbprint:"
_HASHES: Final = {"sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512"}

# Byte strings that are a key in some other form: they must never serve as an HMAC secret
# (CVE-2015-9235 / CVE-2022-29217 style algorithm confusion).
_KEY_LIKE_PREFIXES: Final = (
    b"-----BEGIN",
    b"ssh-rsa",
    b"ssh-ed25519",
    b"ssh-ed448",
    b"ssh-dss",
    b"ecdsa-sha2-",
    b"sk-ecdsa-",
    b"sk-ssh-",
    b"x509",
)


def is_key_like_secret(secret: bytes) -> bool:
    """True when bytes look like a PEM, OpenSSH, DER or JWK-JSON key, not a random secret."""
    stripped = secret.lstrip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if stripped[:40].startswith(_KEY_LIKE_PREFIXES):
        return True
    if stripped.startswith((b"{", b"[")):
        # Any JSON object with a kty, however its member names are spelled or escaped.
        try:
            parsed = json.loads(stripped)
        except (ValueError, RecursionError):
            return b"kty" in secret
        return _holds_jwk(parsed)
    # A DER SEQUENCE whose length covers the whole input may be an encoded key or
    # certificate; only one that actually parses as such is refused.
    if len(secret) >= 16 and secret[0] == 0x30 and _der_length_fits(secret):
        return _parses_as_der_key(secret)
    return False


def _der_length_fits(secret: bytes) -> bool:
    length_byte = secret[1]
    if length_byte < 0x80:
        return length_byte + 2 == len(secret)
    n = length_byte & 0x7F
    return (
        1 <= n <= 4
        and len(secret) > 2 + n
        and (int.from_bytes(secret[2 : 2 + n], "big") + 2 + n == len(secret))
    )


def _parses_as_der_key(secret: bytes) -> bool:
    from cryptography import x509  # noqa: PLC0415 - rare path

    loaders = (
        serialization.load_der_public_key,
        lambda data: serialization.load_der_private_key(data, password=None),
        x509.load_der_x509_certificate,
    )
    for load in loaders:
        try:
            load(secret)
        except TypeError:
            return True  # an encrypted private key: it parsed far enough to ask for a password
        except (ValueError, _CryptoUnsupported):
            continue
        return True
    return False


def _holds_jwk(value: object, depth: int = 0) -> bool:
    if depth > 16:
        return True
    if isinstance(value, dict):
        return "kty" in value or any(_holds_jwk(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_holds_jwk(v, depth + 1) for v in value)
    return False


class JWK:
    """One key, public or private, with the metadata that limits how it may be used."""

    __slots__ = (
        "_d",
        "_mac",
        "_private",
        "_public",
        "_secret",
        "_thumbprint",
        "_verified_alg",
        "alg",
        "crv",
        "key_ops",
        "kid",
        "kty",
        "legacy_short_secret",
        "use",
    )

    kty: str
    crv: str | None
    kid: str | None
    alg: str | None
    use: str | None
    key_ops: frozenset[str] | None
    legacy_short_secret: bool
    _public: PublicKey | None
    _private: PrivateKey | None
    _secret: bytes | None
    _d: dict[str, Any]
    _thumbprint: str | None
    _mac: tuple[str, Any] | None
    _verified_alg: str | None

    def __init__(
        self,
        kty: str,
        *,
        public: PublicKey | None = None,
        private: PrivateKey | None = None,
        secret: bytes | None = None,
        crv: str | None = None,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
        key_ops: Iterable[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        legacy_short_secret: bool = False,
    ) -> None:
        """Prefer the `from_*` constructors and `generate`; this one trusts its arguments."""
        self.kty = kty
        self.crv = crv
        self.kid = kid
        self.alg = alg
        self.use = use
        self.key_ops = frozenset(key_ops) if key_ops is not None else None
        self.legacy_short_secret = legacy_short_secret
        self._private = private
        self._public = public if public is not None or private is None else private.public_key()
        self._secret = secret
        self._d = dict(extra) if extra else {}
        self._thumbprint = None
        self._mac = None  # (alg, keyed HMAC context), kept by the HMAC algorithms
        self._verified_alg = None  # the alg this key last passed the verification checks for

    # -- construction -------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        kty: str,
        *,
        crv: str | None = None,
        size: int | None = None,
        alg: str | None = None,
        kid: str | None = None,
        use: str | None = None,
        key_ops: Iterable[str] | None = None,
    ) -> JWK:
        """Create a random key: `RSA` or `oct` (size in bits), `EC` or `OKP` (crv)."""
        key = cls._generate(kty, crv=crv, size=size, alg=alg, kid=kid, use=use, key_ops=key_ops)
        if alg is not None:
            _check_key_fits_alg(key, alg)
        return key

    @classmethod
    def _generate(
        cls,
        kty: str,
        *,
        crv: str | None,
        size: int | None,
        alg: str | None,
        kid: str | None,
        use: str | None,
        key_ops: Iterable[str] | None,
    ) -> JWK:
        private: PrivateKey
        if kty == "RSA":
            bits = size or 2048
            if bits < MIN_RSA_BITS:
                raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
            private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
            return cls("RSA", private=private, alg=alg, kid=kid, use=use, key_ops=key_ops)
        if kty == "EC":
            crv = crv or _default_curve(alg) or "P-256"
            if crv not in _EC_CURVES:
                raise ValueError(f"unknown EC curve {crv!r}; use one of {sorted(_EC_CURVES)}")
            private = ec.generate_private_key(_EC_CURVES[crv][0]())
            return cls("EC", private=private, crv=crv, alg=alg, kid=kid, use=use, key_ops=key_ops)
        if kty == "OKP":
            crv = crv or {"ECDH-ES": "X25519"}.get((alg or "")[:7], "Ed25519")
            if crv not in _OKP_CURVES:
                raise ValueError(f"unknown OKP curve {crv!r}; use one of {sorted(_OKP_CURVES)}")
            private = _OKP_CURVES[crv][0].generate()
            return cls("OKP", private=private, crv=crv, alg=alg, kid=kid, use=use, key_ops=key_ops)
        if kty == "oct":
            bits = size or _default_secret_bits(alg)
            if bits < 8 or bits % 8:
                raise ValueError("oct key size must be a positive multiple of 8 bits")
            return cls(
                "oct",
                secret=secrets.token_bytes(bits // 8),
                alg=alg,
                kid=kid,
                use=use,
                key_ops=key_ops,
            )
        raise ValueError(f"unknown key type {kty!r}; use RSA, EC, OKP or oct")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JWK:
        """Import a JWK given as a dict; refuses malformed, inconsistent or weak keys."""
        if not isinstance(data, Mapping):
            raise InvalidKey("a JWK must be a JSON object")
        kty = data.get("kty")
        meta = _parse_metadata(data)
        extra = {k: v for k, v in data.items() if k not in _KNOWN_MEMBERS}
        if kty == "RSA":
            public, private = _rsa_from_dict(data)
            return cls("RSA", public=public, private=private, extra=extra, **meta)
        if kty == "EC":
            crv, ec_public, ec_private = _ec_from_dict(data)
            return cls("EC", public=ec_public, private=ec_private, crv=crv, extra=extra, **meta)
        if kty == "OKP":
            crv, okp_public, okp_private = _okp_from_dict(data)
            return cls("OKP", public=okp_public, private=okp_private, crv=crv, extra=extra, **meta)
        if kty == "oct":
            k = data.get("k")
            if not isinstance(k, str):
                raise InvalidKey("oct JWK needs a base64url string member 'k'")
            try:
                secret = b64decode(k, "JWK member 'k'")
            except MalformedToken as exc:
                raise InvalidKey(str(exc)) from None
            if not secret:
                raise InvalidKey("an empty secret is not a key")
            if is_key_like_secret(secret):
                raise InvalidKey("this oct key's 'k' holds an encoded key, not a secret")
            return cls("oct", secret=secret, extra=extra, **meta)
        if not isinstance(kty, str):
            raise InvalidKey("JWK member 'kty' is missing or not a string")
        raise InvalidKey(f"unsupported JWK key type {kty!r}")

    @classmethod
    def from_json(cls, text: str | bytes) -> JWK:
        """Import a JWK from its JSON text."""
        try:
            return cls.from_dict(loads_object(text, "JWK"))
        except MalformedToken as exc:
            raise InvalidKey(str(exc)) from None

    @classmethod
    def from_pem(
        cls,
        data: bytes | str,
        *,
        password: bytes | None = None,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
    ) -> JWK:
        """Import a PEM private key, public key (SPKI or PKCS#1) or X.509 certificate."""
        try:
            pem = data.encode("ascii") if isinstance(data, str) else bytes(data)
        except (UnicodeEncodeError, TypeError):
            raise InvalidKey("a PEM key is ASCII text or bytes") from None
        key: Any
        try:
            if b"PRIVATE KEY-----" in pem:
                key = serialization.load_pem_private_key(pem, password=password)
            elif b"CERTIFICATE-----" in pem:
                from cryptography import x509  # noqa: PLC0415 - only certificates need it

                key = x509.load_pem_x509_certificate(pem).public_key()
            else:
                key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, _CryptoUnsupported) as exc:
            raise InvalidKey(f"not a usable PEM key: {exc}") from None
        return cls._from_loaded(key, kid=kid, alg=alg, use=use)

    @classmethod
    def from_der(
        cls,
        data: bytes,
        *,
        password: bytes | None = None,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
    ) -> JWK:
        """Import a DER private key (PKCS#8 or traditional) or public key (SPKI)."""
        key: Any
        try:
            key = serialization.load_der_private_key(data, password=password)
        except (ValueError, TypeError, _CryptoUnsupported):
            try:
                key = serialization.load_der_public_key(data)
            except (ValueError, TypeError, _CryptoUnsupported) as exc:
                raise InvalidKey(f"not a usable DER key: {exc}") from None
        return cls._from_loaded(key, kid=kid, alg=alg, use=use)

    @classmethod
    def _from_loaded(cls, key: object, **meta: str | None) -> JWK:
        try:
            return cls.from_key(key, **meta)
        except TypeError:
            # Parsed fine, but a type JOSE cannot use (DSA, DH): untrusted input, so ours.
            raise InvalidKey(f"unsupported key type {type(key).__name__}") from None

    @classmethod
    def from_key(
        cls,
        key: object,
        *,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
    ) -> JWK:
        """Wrap a `cryptography` key object."""
        meta: dict[str, Any] = {"kid": kid, "alg": alg, "use": use}
        if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise InvalidKey(f"RSA keys must have at least {MIN_RSA_BITS} bits")
            public_numbers = (
                key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
            ).public_numbers()
            if _has_roca_fingerprint(public_numbers.n):
                raise InvalidKey("this RSA key has the ROCA flaw (CVE-2017-15361)")
            if isinstance(key, rsa.RSAPrivateKey):
                return cls("RSA", private=key, **meta)
            return cls("RSA", public=key, **meta)
        if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            crv = _EC_NAME_BY_CURVE.get(key.curve.name)
            if crv is None:
                raise InvalidKey(f"unsupported EC curve {key.curve.name}")
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return cls("EC", private=key, crv=crv, **meta)
            return cls("EC", public=key, crv=crv, **meta)
        for crv, (priv_cls, pub_cls, _) in _OKP_CURVES.items():
            if isinstance(key, priv_cls):
                return cls("OKP", private=key, crv=crv, **meta)
            if isinstance(key, pub_cls):
                return cls("OKP", public=key, crv=crv, **meta)
        raise TypeError(f"not a supported cryptography key object: {type(key).__name__}")

    @classmethod
    def from_secret(
        cls,
        secret: bytes,
        *,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
        legacy_short_secret: bool = False,
    ) -> JWK:
        """Wrap a symmetric secret (HMAC, AES key or PBES2 password).

        Bytes that hold a PEM, DER, OpenSSH or JWK-JSON key are refused: a public key must
        never become an HMAC secret. `legacy_short_secret=True` lets a secret shorter than the
        hash length *verify* HMAC tokens (never sign), for migrating old deployments.
        """
        if not isinstance(secret, bytes | bytearray):
            raise TypeError("a secret must be bytes")
        secret = bytes(secret)
        if not secret:
            raise InvalidKey("an empty secret is not a key")
        if is_key_like_secret(secret):
            raise InvalidKey(
                "these bytes hold an encoded key (PEM, DER, OpenSSH or JWK), not a secret; "
                "import it with JWK.from_pem/from_der/from_dict instead"
            )
        return cls(
            "oct",
            secret=secret,
            kid=kid,
            alg=alg,
            use=use,
            legacy_short_secret=legacy_short_secret,
        )

    # -- views --------------------------------------------------------------------------

    @property
    def is_private(self) -> bool:
        """True for a private asymmetric key or any symmetric key."""
        return self._private is not None or self._secret is not None

    @property
    def is_symmetric(self) -> bool:
        """True for an `oct` key."""
        return self.kty == "oct"

    @property
    def key_size(self) -> int:
        """Size in bits: RSA modulus, curve field, or secret length."""
        if self._secret is not None:
            return len(self._secret) * 8
        pub = self._public
        if isinstance(pub, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            return pub.key_size
        return _OKP_CURVES[self.crv or ""][2] * 8

    def public_key(self) -> PublicKey:
        """The `cryptography` public key object; `InvalidKey` for a symmetric key."""
        if self._public is None:
            raise InvalidKey("a symmetric key has no public key")
        return self._public

    def private_key(self) -> PrivateKey:
        """The `cryptography` private key object; `InvalidKey` when this key is public only."""
        if self._private is None:
            raise InvalidKey("this operation needs a private key, but the key is public only")
        return self._private

    def secret(self) -> bytes:
        """The symmetric secret; `InvalidKey` for an asymmetric key."""
        if self._secret is None:
            raise InvalidKey(f"this operation needs a symmetric key, but the key is {self.kty}")
        return self._secret

    def public(self) -> JWK:
        """The public half of this key as a new JWK (a symmetric key has none)."""
        if self._secret is not None:
            raise InvalidKey("a symmetric key has no public half")
        return JWK(
            self.kty,
            public=self._public,
            crv=self.crv,
            kid=self.kid,
            alg=self.alg,
            use=self.use,
            key_ops=self.key_ops,
            extra=self._d,
        )

    def allows(self, op: str) -> bool:
        """Whether `use` and `key_ops` permit an operation such as `verify` or `unwrapKey`."""
        if self.key_ops is not None and op not in self.key_ops:
            return False
        return self.use is None or self.use == _USE_OF_OP[op]

    def to_dict(self, private: bool = False) -> dict[str, Any]:
        """This key as a JWK dict; private members only when `private=True`."""
        out: dict[str, Any] = {"kty": self.kty}
        out.update(self._public_members())
        if private:
            if not self.is_private:
                raise InvalidKey("this key has no private part to export")
            out.update(self._private_members())
        elif self.kty == "oct":
            raise InvalidKey("a symmetric key is secret: export it with to_dict(private=True)")
        for name in ("kid", "alg", "use"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.key_ops is not None:
            out["key_ops"] = sorted(self.key_ops)
        for name, value in self._d.items():
            out.setdefault(name, value)
        return out

    def to_json(self, private: bool = False) -> str:
        """This key as JWK JSON text."""
        return json.dumps(self.to_dict(private=private), separators=(",", ":"))

    def to_pem(self, private: bool = False, password: bytes | None = None) -> bytes:
        """PEM: PKCS#8 for private keys, SPKI for public keys."""
        return self._serialize(serialization.Encoding.PEM, private, password)

    def to_der(self, private: bool = False, password: bytes | None = None) -> bytes:
        """DER: PKCS#8 for private keys, SPKI for public keys."""
        return self._serialize(serialization.Encoding.DER, private, password)

    def thumbprint(self, hash_name: str = "sha-256") -> str:
        """RFC 7638 thumbprint, base64url; hash one of sha-256, sha-384, sha-512."""
        if hash_name == "sha-256" and self._thumbprint is not None:
            return self._thumbprint
        algorithm = _HASHES.get(hash_name)
        if algorithm is None:
            raise ValueError(f"unsupported thumbprint hash {hash_name!r}")
        members = {"kty": self.kty, **self._public_members(include_secret=True)}
        required = {name: members[name] for name in _THUMBPRINT_MEMBERS[self.kty]}
        canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
        value = b64encode(hashlib.new(algorithm, canonical.encode("utf-8")).digest())
        if hash_name == "sha-256":
            self._thumbprint = value
        return value

    def thumbprint_uri(self, hash_name: str = "sha-256") -> str:
        """RFC 9278 JWK thumbprint URI."""
        return f"{THUMBPRINT_URI_PREFIX}{hash_name}:{self.thumbprint(hash_name)}"

    def __repr__(self) -> str:
        kind = "private" if self.is_private else "public"
        crv = f" {self.crv}" if self.crv else ""
        return f"<JWK {self.kty}{crv} {kind} kid={self.kid!r} alg={self.alg!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JWK):
            return NotImplemented
        if self.kty != other.kty or self.is_private != other.is_private:
            return False
        if self._secret is not None:
            return other._secret is not None and hmac.compare_digest(self._secret, other._secret)
        return self.thumbprint() == other.thumbprint()

    def __hash__(self) -> int:
        return hash((self.kty, self.thumbprint()))

    # -- internals ----------------------------------------------------------------------

    def _public_members(self, include_secret: bool = False) -> dict[str, str]:
        if self._secret is not None:
            return {"k": b64encode(self._secret)} if include_secret else {}
        pub = self._public
        if isinstance(pub, rsa.RSAPublicKey):
            nums = pub.public_numbers()
            return {"n": uint_b64encode(nums.n), "e": uint_b64encode(nums.e)}
        if isinstance(pub, ec.EllipticCurvePublicKey):
            size = _EC_CURVES[self.crv or ""][1]
            point = pub.public_numbers()
            return {
                "crv": self.crv or "",
                "x": uint_b64encode(point.x, size),
                "y": uint_b64encode(point.y, size),
            }
        if pub is None:  # pragma: no cover - every non-oct JWK holds a public key
            raise InvalidKey("the key has no public part")
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": self.crv or "", "x": b64encode(raw)}

    def _private_members(self) -> dict[str, str]:
        if self._secret is not None:
            return {"k": b64encode(self._secret)}
        priv = self._private
        if isinstance(priv, rsa.RSAPrivateKey):
            n = priv.private_numbers()
            return {
                "d": uint_b64encode(n.d),
                "p": uint_b64encode(n.p),
                "q": uint_b64encode(n.q),
                "dp": uint_b64encode(n.dmp1),
                "dq": uint_b64encode(n.dmq1),
                "qi": uint_b64encode(n.iqmp),
            }
        if isinstance(priv, ec.EllipticCurvePrivateKey):
            size = _EC_CURVES[self.crv or ""][1]
            return {"d": uint_b64encode(priv.private_numbers().private_value, size)}
        if priv is None:  # pragma: no cover - callers check is_private first
            raise InvalidKey("the key has no private part")
        raw = priv.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return {"d": b64encode(raw)}

    def _serialize(
        self, encoding: serialization.Encoding, private: bool, password: bytes | None
    ) -> bytes:
        if self._secret is not None:
            raise InvalidKey("a symmetric key has no PEM or DER form")
        if private:
            encryption: serialization.KeySerializationEncryption = (
                serialization.BestAvailableEncryption(password)
                if password
                else serialization.NoEncryption()
            )
            return self.private_key().private_bytes(
                encoding, serialization.PrivateFormat.PKCS8, encryption
            )
        return self.public_key().public_bytes(
            encoding, serialization.PublicFormat.SubjectPublicKeyInfo
        )


_KNOWN_MEMBERS: Final = frozenset(
    {"kty", "kid", "alg", "use", "key_ops", "crv", "x", "y", "d", "n", "e", "p", "q"}
    | {"dp", "dq", "qi", "oth", "k", "ext"}
)


_SIGNING_FITS: Final[dict[str, tuple[str, frozenset[str] | None, int]]] = {
    # alg -> (kty, curves or None, minimum bits; exact for AES key wrapping)
    **{f"HS{n}": ("oct", None, n) for n in (256, 384, 512)},
    **{f"{p}{n}": ("RSA", None, MIN_RSA_BITS) for p in ("RS", "PS") for n in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"}), 0),
    "ES384": ("EC", frozenset({"P-384"}), 0),
    "ES512": ("EC", frozenset({"P-521"}), 0),
    "ES256K": ("EC", frozenset({"secp256k1"}), 0),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"}), 0),
    "Ed25519": ("OKP", frozenset({"Ed25519"}), 0),
    "Ed448": ("OKP", frozenset({"Ed448"}), 0),
    **dict.fromkeys(("RSA-OAEP", "RSA-OAEP-256", "RSA-OAEP-384"), ("RSA", None, MIN_RSA_BITS)),
    "RSA-OAEP-512": ("RSA", None, MIN_RSA_BITS),
    "dir": ("oct", None, 128),
    **{f"PBES2-HS{h}+A{k}KW": ("oct", None, 8) for h, k in ((256, 128), (384, 192), (512, 256))},
}
_EXACT_FITS: Final = {
    **{f"A{n}KW": n for n in (128, 192, 256)},
    **{f"A{n}GCMKW": n for n in (128, 192, 256)},
    **{f"A{n}GCM": n for n in (128, 192, 256)},
    "A128CBC-HS256": 256,
    "A192CBC-HS384": 384,
    "A256CBC-HS512": 512,
}
_ECDH_CURVES: Final = frozenset({"P-256", "P-384", "P-521", "X25519", "X448"})


def _check_key_fits_alg(key: JWK, alg: str) -> None:
    """Refuse to make a key its own `alg` could never use (e.g. an ES256 key on P-384)."""
    if alg in _EXACT_FITS:
        if key.kty != "oct" or key.key_size != _EXACT_FITS[alg]:
            raise ValueError(f"{alg} needs an oct key of exactly {_EXACT_FITS[alg]} bits")
        return
    if alg.startswith("ECDH-ES"):
        if key.crv not in _ECDH_CURVES:
            raise ValueError(f"{alg} needs an EC P-256/384/521 or OKP X25519/X448 key")
        return
    fit = _SIGNING_FITS.get(alg)
    if fit is None:
        raise ValueError(f"unknown alg {alg!r}")
    kty, curves, bits = fit
    if key.kty != kty or (curves is not None and key.crv not in curves):
        where = f" on {' or '.join(sorted(curves))}" if curves else ""
        raise ValueError(f"{alg} needs an {kty} key{where}, not {key.kty} {key.crv or ''}".strip())
    if key.key_size < bits:
        raise ValueError(f"{alg} needs a key of at least {bits} bits")


def _default_curve(alg: str | None) -> str | None:
    return {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "secp256k1"}.get(
        alg or ""
    )


def _default_secret_bits(alg: str | None) -> int:
    if alg is None:
        return 256
    table = {
        "HS256": 256,
        "HS384": 384,
        "HS512": 512,
        "A128KW": 128,
        "A192KW": 192,
        "A256KW": 256,
        "A128GCMKW": 128,
        "A192GCMKW": 192,
        "A256GCMKW": 256,
        "A128GCM": 128,
        "A192GCM": 192,
        "A256GCM": 256,
        "A128CBC-HS256": 256,
        "A192CBC-HS384": 384,
        "A256CBC-HS512": 512,
    }
    if alg not in table:
        raise ValueError(f"cannot size an oct key for alg {alg!r}; pass size=")
    return table[alg]


def _parse_metadata(data: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for name in ("kid", "alg", "use"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidKey(f"JWK member {name!r} must be a string")
        meta[name] = value
    use = meta["use"]
    if use is not None and use not in ("sig", "enc"):
        raise InvalidKey(f"JWK member 'use' must be 'sig' or 'enc', not {use!r}")
    ops = data.get("key_ops")
    if ops is not None:
        if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
            raise InvalidKey("JWK member 'key_ops' must be an array of strings")
        if len(set(ops)) != len(ops):
            raise InvalidKey("JWK member 'key_ops' must not repeat a value")  # RFC 7517 §4.3
        unknown = set(ops) - _KEY_OPS
        if unknown:
            raise InvalidKey(f"JWK member 'key_ops' has unknown operations {sorted(unknown)}")
        # RFC 7517 §4.3: when both are present they must agree.
        if use is not None and any(_USE_OF_OP[op] != use for op in ops):
            raise InvalidKey("JWK members 'use' and 'key_ops' disagree")
        meta["key_ops"] = ops
    return meta


def _member_bytes(data: Mapping[str, Any], name: str, kty: str) -> bytes:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidKey(f"{kty} JWK needs a base64url string member {name!r}")
    try:
        return b64decode(value, f"JWK member {name!r}")
    except MalformedToken as exc:
        raise InvalidKey(str(exc)) from None


def _member_uint(data: Mapping[str, Any], name: str, kty: str) -> int:
    return int.from_bytes(_member_bytes(data, name, kty), "big")


def _rsa_from_dict(
    data: Mapping[str, Any],
) -> tuple[rsa.RSAPublicKey, rsa.RSAPrivateKey | None]:
    n = _member_uint(data, "n", "RSA")
    e = _member_uint(data, "e", "RSA")
    if n.bit_length() < MIN_RSA_BITS:
        raise InvalidKey(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    if e < 3 or e % 2 == 0:
        raise InvalidKey("RSA public exponent must be odd and at least 3")
    if _has_roca_fingerprint(n):
        raise InvalidKey("this RSA key was made by a generator with the ROCA flaw (CVE-2017-15361)")
    try:
        public_numbers = rsa.RSAPublicNumbers(e, n)
        if "d" not in data:
            if any(name in data for name in ("p", "q", "dp", "dq", "qi")):
                raise InvalidKey("RSA JWK has CRT members but no 'd'")
            return public_numbers.public_key(), None
        if "oth" in data:
            raise InvalidKey("multi-prime RSA keys ('oth') are not supported")
        d = _member_uint(data, "d", "RSA")
        crt = ("p", "q", "dp", "dq", "qi")
        present = [name in data for name in crt]
        if any(present) and not all(present):
            raise InvalidKey("RSA JWK must have all of p, q, dp, dq, qi or none of them")
        if all(present):
            p, q, dp, dq, qi = (_member_uint(data, name, "RSA") for name in crt)
        else:
            p, q = rsa.rsa_recover_prime_factors(n, e, d)
            dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
        private = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public_numbers).private_key()
    except ValueError as exc:
        raise InvalidKey(f"inconsistent RSA key: {exc}") from None
    return private.public_key(), private


# ROCA (CVE-2017-15361): moduli made by a flawed Infineon generator are n = k*M + (65537^a mod M)
# for a primorial M, so n mod each small prime p lies in the subgroup generated by 65537 mod p.
# A random modulus passes all these tests with negligible probability.
_ROCA_PRIMES: Final = (
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
)  # fmt: skip
_roca_subgroups: dict[int, frozenset[int]] = {}


def _has_roca_fingerprint(n: int) -> bool:
    for p in _ROCA_PRIMES:
        group = _roca_subgroups.get(p)
        if group is None:
            members, g = {1}, 65537 % p
            value = g
            while value not in members:
                members.add(value)
                value = value * g % p
            group = _roca_subgroups[p] = frozenset(members)
        if n % p not in group:
            return False
    return True


def _ec_from_dict(
    data: Mapping[str, Any],
) -> tuple[str, ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey | None]:
    crv = data.get("crv")
    if not isinstance(crv, str) or crv not in _EC_CURVES:
        raise InvalidKey(f"unsupported EC curve {crv!r}")
    curve_cls, size = _EC_CURVES[crv]
    x = _member_bytes(data, "x", "EC")
    y = _member_bytes(data, "y", "EC")
    # RFC 7518 §6.2.1.2: coordinates are the full field size, no more, no less.
    if len(x) != size or len(y) != size:
        raise InvalidKey(f"EC coordinates for {crv} must be {size} bytes")
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(curve_cls(), b"\x04" + x + y)
    except ValueError:
        raise InvalidKey(f"the EC point is not on curve {crv}") from None
    if "d" not in data:
        return crv, public, None
    d_bytes = _member_bytes(data, "d", "EC")
    if len(d_bytes) != size:
        raise InvalidKey(f"EC private key for {crv} must be {size} bytes")
    try:
        private = ec.derive_private_key(int.from_bytes(d_bytes, "big"), curve_cls())
    except ValueError:
        raise InvalidKey("the EC private key is out of range") from None
    if private.public_key().public_numbers() != public.public_numbers():
        raise InvalidKey("the EC private key does not match its public point")
    return crv, private.public_key(), private


def _okp_from_dict(data: Mapping[str, Any]) -> tuple[str, Any, Any]:
    crv = data.get("crv")
    if not isinstance(crv, str) or crv not in _OKP_CURVES:
        raise InvalidKey(f"unsupported OKP curve {crv!r}")
    if "y" in data:
        raise InvalidKey("OKP keys have no 'y' member")
    priv_cls, pub_cls, size = _OKP_CURVES[crv]
    x = _member_bytes(data, "x", "OKP")
    if len(x) != size:
        raise InvalidKey(f"{crv} public keys are {size} bytes")
    try:
        public = pub_cls.from_public_bytes(x)
    except ValueError:
        raise InvalidKey(f"invalid {crv} public key") from None
    if "d" not in data:
        return crv, public, None
    d = _member_bytes(data, "d", "OKP")
    if len(d) != size:
        raise InvalidKey(f"{crv} private keys are {size} bytes")
    try:
        private = priv_cls.from_private_bytes(d)
    except ValueError:
        raise InvalidKey(f"invalid {crv} private key") from None
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if not hmac.compare_digest(raw, x):
        raise InvalidKey(f"the {crv} private key does not match its public key")
    return crv, private.public_key(), private


class JWKSet:
    """An ordered set of keys (RFC 7517 §5) with lookup by `kid`, `alg`, `use` and `kty`."""

    __slots__ = ("_by_kid", "keys")

    keys: tuple[JWK, ...]
    _by_kid: dict[str, list[JWK]]

    def __init__(self, keys: Iterable[JWK] = ()) -> None:
        self.keys = tuple(keys)
        by_kid: dict[str, list[JWK]] = {}
        for key in self.keys:
            if not isinstance(key, JWK):
                raise TypeError("JWKSet holds JWK objects")
            if key.kid is not None:
                by_kid.setdefault(key.kid, []).append(key)
        self._by_kid = by_kid

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = False) -> JWKSet:
        """Import `{"keys": [...]}`. Keys of unsupported types are skipped (RFC 7517 §5)
        unless `strict=True`; malformed keys of supported types are always refused.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise InvalidKey("a JWK Set must be an object with a 'keys' array")
        keys: list[JWK] = []
        for item in data["keys"]:
            if (
                not strict
                and isinstance(item, Mapping)
                and item.get("kty") not in ("RSA", "EC", "OKP", "oct")
            ):
                continue
            keys.append(JWK.from_dict(item))
        kids = [key.kid for key in keys if key.kid is not None]
        if len(kids) != len(set(kids)):
            # Two keys under one kid make "which key signed this" ambiguous.
            raise InvalidKey("a JWK Set must not hold two keys with the same 'kid'")
        kinds = {key.is_symmetric for key in keys}
        if len(kinds) > 1:
            # A set that mixes secrets and public keys invites algorithm confusion.
            raise InvalidKey("a JWK Set must not mix symmetric and asymmetric keys")
        return cls(keys)

    @classmethod
    def from_json(cls, text: str | bytes) -> JWKSet:
        """Import a JWK Set from its JSON text."""
        try:
            return cls.from_dict(loads_object(text, "JWK Set"))
        except MalformedToken as exc:
            raise InvalidKey(str(exc)) from None

    def to_dict(self, private: bool = False) -> dict[str, Any]:
        """The set as `{"keys": [...]}`."""
        return {"keys": [key.to_dict(private=private) for key in self.keys]}

    def get(self, kid: str) -> JWK | None:
        """The key with this `kid`, or None."""
        found = self._by_kid.get(kid)
        return found[0] if found else None

    def find(
        self,
        *,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
        kty: str | None = None,
    ) -> list[JWK]:
        """Keys matching every criterion given; a key without `alg`/`use` matches any."""
        pool: Iterable[JWK] = self._by_kid.get(kid, []) if kid is not None else self.keys
        return [
            key
            for key in pool
            if (alg is None or key.alg is None or key.alg == alg)
            and (use is None or key.use is None or key.use == use)
            and (kty is None or key.kty == kty)
        ]

    def __iter__(self) -> Iterator[JWK]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"<JWKSet {len(self.keys)} keys>"


KeyInput: TypeAlias = JWK | JWKSet | Mapping[str, Any] | bytes | PrivateKey | PublicKey


def coerce_keys(key: object) -> JWK | JWKSet:
    """Turn any accepted key argument into a JWK or JWKSet."""
    if isinstance(key, JWK | JWKSet):
        return key
    if isinstance(key, bytes | bytearray):
        return JWK.from_secret(bytes(key))
    if isinstance(key, Mapping):
        if "keys" in key:
            return JWKSet.from_dict(key)
        return JWK.from_dict(key)
    if isinstance(key, str):
        raise TypeError(
            "a key must be bytes, a JWK, a JWKSet, a JWK dict or a cryptography key; "
            "encode a text secret to bytes, or import a PEM with JWK.from_pem"
        )
    return JWK.from_key(key)


generate = JWK.generate
"""Create a new random key: `jwk.generate("EC", crv="P-256")` is `JWK.generate(...)`."""


def candidate_keys(
    keys: JWK | JWKSet,
    *,
    kid: object,
    alg: str,
    kty: str,
    op: str,
) -> list[JWK]:
    """Keys that may perform `op` for a token naming `kid` and `alg`.

    The key type is bound to the algorithm family (`kty` comes from the algorithm, never the
    token), a key's own `alg` must equal the token's, and `use`/`key_ops` must allow `op`.
    """
    if isinstance(keys, JWK):
        pool: Iterable[JWK] = (keys,)
    elif isinstance(kid, str) and kid in keys._by_kid:
        pool = keys._by_kid[kid]
    elif kid is None or not keys._by_kid:
        pool = keys.keys
    else:
        # The token names a kid the set lacks; guessing another key could only confuse.
        return []
    return [
        key
        for key in pool
        if key.kty == kty and (key.alg is None or key.alg == alg) and key.allows(op)
    ]
