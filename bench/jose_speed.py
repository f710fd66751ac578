"""Speed of `ostiary.jose` side by side with the peer JOSE libraries, the raw primitive and a
minimal hand-written path, all in one run on the same keys, claims and bytes.

    .venv/bin/python bench/jose_speed.py                  # full run, about 3 minutes
    .venv/bin/python bench/jose_speed.py --quick          # well under a minute
    .venv/bin/python bench/jose_speed.py --ops 'sign:*' verify:ES256 import
    .venv/bin/python bench/jose_speed.py --markdown       # tables for docs/benchmarks.md
    .venv/bin/python bench/jose_speed.py --profile --ops verify:HS256   # where Ostiary's time goes

Columns: `raw` is the bare `cryptography` call on the same bytes (no base64url, no JSON);
`minimal` is the floor written below (split, base64url, JSON, the primitive, exp/aud checks,
nothing else); then Ostiary and each peer through its documented public API. Keys are built
once outside the timed region, as a server caches them. Candidates run in short interleaved
batches; each figure is the median of the per-batch means, minus the cost of calling an empty
function. Before timing, every candidate's output is checked by an independent implementation,
and every verifier must reject an expired token, a wrong audience and a bad signature, so
nobody is timed on an error path or for skipping a check.
"""

# mypy: disable-error-code="import-untyped"
from __future__ import annotations

import argparse
import binascii
import cProfile
import ctypes
import datetime
import fnmatch
import gc
import hashlib
import importlib
import importlib.metadata
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

Thunk = Callable[[], object]

AUD = "https://notes.example"
ISS = "https://issuer.example"
SIGN_ALGS = ("HS256", "RS256", "PS256", "ES256", "EdDSA")
JWE_ALGS = ("dir", "RSA-OAEP-256", "ECDH-ES+A256KW")
ENC = "A256GCM"
PEERS = ("pyjwt", "joserfc", "jwcrypto", "python-jose", "authlib")
LIBS = ("ostiary", *PEERS)
COLUMNS = ("raw", "minimal", *LIBS)
TITLES = {
    "raw": "raw",
    "minimal": "minimal",
    "ostiary": "Ostiary",
    "pyjwt": "PyJWT",
    "joserfc": "joserfc",
    "jwcrypto": "jwcrypto",
    "python-jose": "python-jose",
    "authlib": "Authlib",
}
DISTRIBUTIONS = (
    "ostiary",
    "cryptography",
    "orjson",
    "PyJWT",
    "joserfc",
    "jwcrypto",
    "python-jose",
    "Authlib",
)
# What each library's users import to do the operations measured here.
IMPORTS = {
    "cryptography": (
        "from cryptography.hazmat.primitives import hashes, hmac\n"
        "from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa\n"
        "from cryptography.hazmat.primitives.ciphers.aead import AESGCM"
    ),
    "ostiary": "from ostiary.jose import jwe, jwk, jws, jwt",
    "pyjwt": "import jwt",
    "joserfc": "from joserfc import jwe, jwk, jwt",
    "jwcrypto": "from jwcrypto import jwe, jwk, jwt",
    "python-jose": "from jose import jwe, jwk, jwt",
    "authlib": "from authlib.jose import JsonWebEncryption, JsonWebKey, JsonWebToken",
}
TEXT_COLUMNS = frozenset({"fastest peer", "targets", "statement"})
# Closer than this to the fastest peer counts as a tie: below the noise of a shared machine.
TIE = 0.03
MEMORY_KTYS = ("EC", "RSA", "oct")
MEMORY_TITLES = {"EC": "EC P-256 public", "RSA": "RSA-2048 public", "oct": "oct 256-bit"}

SHA256 = hashes.SHA256()
PKCS1 = padding.PKCS1v15()
# RFC 7518 §3.5: the PSS salt is as long as the hash output.
PSS = padding.PSS(mgf=padding.MGF1(SHA256), salt_length=32)
ECDSA = ec.ECDSA(SHA256)
OAEP256 = padding.OAEP(mgf=padding.MGF1(SHA256), algorithm=SHA256, label=None)
P256 = ec.SECP256R1()
ECDH = ec.ECDH()
X962 = serialization.Encoding.X962
UNCOMPRESSED = serialization.PublicFormat.UncompressedPoint


# --- the minimal path: what any correct implementation cannot avoid, nothing else -----------

_TO_URL = bytes.maketrans(b"+/", b"-_")
_FROM_URL = bytes.maketrans(b"-_", b"+/")


def b64e(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=")


def b64d(data: bytes) -> bytes:
    # Lenient on purpose: the floor does no strictness checks; surplus padding is ignored.
    return binascii.a2b_base64(data.translate(_FROM_URL) + b"==")


def _uint(value: int) -> str:
    return b64e(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")).decode()


def hs256_sign(key: Any, data: bytes) -> bytes:
    h = hmac.HMAC(key, SHA256)
    h.update(data)
    return h.finalize()


def hs256_verify(key: Any, data: bytes, sig: bytes) -> None:
    h = hmac.HMAC(key, SHA256)
    h.update(data)
    h.verify(sig)


def rs256_sign(key: Any, data: bytes) -> bytes:
    return key.sign(data, PKCS1, SHA256)  # type: ignore[no-any-return]


def rs256_verify(key: Any, data: bytes, sig: bytes) -> None:
    key.verify(sig, data, PKCS1, SHA256)


def ps256_sign(key: Any, data: bytes) -> bytes:
    return key.sign(data, PSS, SHA256)  # type: ignore[no-any-return]


def ps256_verify(key: Any, data: bytes, sig: bytes) -> None:
    key.verify(sig, data, PSS, SHA256)


def es256_sign(key: Any, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ECDSA))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def es256_verify(key: Any, data: bytes, sig: bytes) -> None:
    if len(sig) != 64:
        raise ValueError("bad signature length")
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    key.verify(der, data, ECDSA)


def eddsa_sign(key: Any, data: bytes) -> bytes:
    return key.sign(data)  # type: ignore[no-any-return]


def eddsa_verify(key: Any, data: bytes, sig: bytes) -> None:
    key.verify(sig, data)


SIGNERS: dict[str, Callable[[Any, bytes], bytes]] = {
    "HS256": hs256_sign,
    "RS256": rs256_sign,
    "PS256": ps256_sign,
    "ES256": es256_sign,
    "EdDSA": eddsa_sign,
}
VERIFIERS: dict[str, Callable[[Any, bytes, bytes], None]] = {
    "HS256": hs256_verify,
    "RS256": rs256_verify,
    "PS256": ps256_verify,
    "ES256": es256_verify,
    "EdDSA": eddsa_verify,
}


def minimal_sign(claims: dict[str, Any], key: Any, alg: str) -> str:
    signing_input = (
        b64e(orjson.dumps({"alg": alg, "typ": "JWT"})) + b"." + b64e(orjson.dumps(claims))
    )
    return (signing_input + b"." + b64e(SIGNERS[alg](key, signing_input))).decode("ascii")


def minimal_verify(token: str, key: Any, alg: str, audience: str) -> dict[str, Any]:
    signing_input, _, sig = token.encode("ascii").rpartition(b".")
    header_b64, _, payload_b64 = signing_input.partition(b".")
    if orjson.loads(b64d(header_b64)).get("alg") != alg:
        raise ValueError("algorithm not allowed")
    VERIFIERS[alg](key, signing_input, b64d(sig))
    claims: dict[str, Any] = orjson.loads(b64d(payload_b64))
    if not claims["exp"] > time.time():
        raise ValueError("expired")
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise ValueError("wrong audience")
    return claims


def _concat_kdf_info(alg: str, bits: int) -> bytes:
    # RFC 7518 §4.6.2: AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo, no apu/apv.
    name = alg.encode()
    return (
        len(name).to_bytes(4, "big")
        + name
        + bytes(8)  # empty PartyUInfo and PartyVInfo, each a zero length
        + bits.to_bytes(4, "big")
    )


ECDH_A256KW_INFO = _concat_kdf_info("ECDH-ES+A256KW", 256)


def ecdh_kek(z: bytes) -> bytes:
    # One round of the Concat KDF (NIST SP 800-56A) gives the 256 bits A256KW needs.
    return hashlib.sha256(b"\x00\x00\x00\x01" + z + ECDH_A256KW_INFO).digest()


def _compact_jwe(protected: bytes, ek: bytes, iv: bytes, sealed: bytes) -> str:
    return b".".join(
        (protected, b64e(ek), b64e(iv), b64e(sealed[:-16]), b64e(sealed[-16:]))
    ).decode("ascii")


def minimal_encrypt_dir(plaintext: bytes, key: bytes) -> str:
    protected = b64e(orjson.dumps({"alg": "dir", "enc": ENC}))
    iv = os.urandom(12)
    return _compact_jwe(protected, b"", iv, AESGCM(key).encrypt(iv, plaintext, protected))


def minimal_encrypt_rsa(plaintext: bytes, key: rsa.RSAPublicKey) -> str:
    cek = os.urandom(32)
    protected = b64e(orjson.dumps({"alg": "RSA-OAEP-256", "enc": ENC}))
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected)
    return _compact_jwe(protected, key.encrypt(cek, OAEP256), iv, sealed)


def minimal_encrypt_ecdh(plaintext: bytes, key: ec.EllipticCurvePublicKey) -> str:
    ephemeral = ec.generate_private_key(P256)
    kek = ecdh_kek(ephemeral.exchange(ECDH, key))
    point = ephemeral.public_key().public_bytes(X962, UNCOMPRESSED)
    x, y = b64e(point[1:33]).decode("ascii"), b64e(point[33:]).decode("ascii")
    epk = {"kty": "EC", "crv": "P-256", "x": x, "y": y}
    protected = b64e(orjson.dumps({"alg": "ECDH-ES+A256KW", "enc": ENC, "epk": epk}))
    cek = os.urandom(32)
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected)
    return _compact_jwe(protected, aes_key_wrap(kek, cek), iv, sealed)


def _split_jwe(token: str, alg: str) -> tuple[dict[str, Any], list[bytes]]:
    parts = token.encode("ascii").split(b".")
    if len(parts) != 5:
        raise ValueError("not a compact JWE")
    header: dict[str, Any] = orjson.loads(b64d(parts[0]))
    if header.get("alg") != alg or header.get("enc") != ENC:
        raise ValueError("algorithm not allowed")
    return header, parts


def minimal_decrypt_dir(token: str, key: bytes) -> bytes:
    _, (protected, ek, iv, ct, tag) = _split_jwe(token, "dir")
    if ek:
        raise ValueError("dir takes no encrypted key")
    return AESGCM(key).decrypt(b64d(iv), b64d(ct) + b64d(tag), protected)


def minimal_decrypt_rsa(token: str, key: rsa.RSAPrivateKey) -> bytes:
    _, (protected, ek, iv, ct, tag) = _split_jwe(token, "RSA-OAEP-256")
    cek = key.decrypt(b64d(ek), OAEP256)
    return AESGCM(cek).decrypt(b64d(iv), b64d(ct) + b64d(tag), protected)


def minimal_decrypt_ecdh(token: str, key: ec.EllipticCurvePrivateKey) -> bytes:
    header, (protected, ek, iv, ct, tag) = _split_jwe(token, "ECDH-ES+A256KW")
    epk = header["epk"]
    if epk.get("kty") != "EC" or epk.get("crv") != "P-256":
        raise ValueError("unexpected ephemeral key")
    x, y = b64d(epk["x"].encode()), b64d(epk["y"].encode())
    if len(x) != 32 or len(y) != 32:
        raise ValueError("bad ephemeral key")
    # from_encoded_point checks that the point is on the curve.
    peer = ec.EllipticCurvePublicKey.from_encoded_point(P256, b"\x04" + x + y)
    cek = aes_key_unwrap(ecdh_kek(key.exchange(ECDH, peer)), b64d(ek))
    return AESGCM(cek).decrypt(b64d(iv), b64d(ct) + b64d(tag), protected)


JWE_ENCRYPTERS: dict[str, Callable[[bytes, Any], str]] = {
    "dir": minimal_encrypt_dir,
    "RSA-OAEP-256": minimal_encrypt_rsa,
    "ECDH-ES+A256KW": minimal_encrypt_ecdh,
}
JWE_DECRYPTERS: dict[str, Callable[[str, Any], bytes]] = {
    "dir": minimal_decrypt_dir,
    "RSA-OAEP-256": minimal_decrypt_rsa,
    "ECDH-ES+A256KW": minimal_decrypt_ecdh,
}


# --- shared material ---------------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    """One set of keys, claims and tokens that every candidate uses."""

    hs_secret: bytes
    dir_secret: bytes
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    ed_key: ed25519.Ed25519PrivateKey
    claims: dict[str, Any]
    plaintext: bytes
    tokens: dict[str, str] = field(default_factory=dict)
    bad_tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    jwe_tokens: dict[str, str] = field(default_factory=dict)

    def private(self, alg: str) -> Any:
        return {
            "HS256": self.hs_secret,
            "RS256": self.rsa_key,
            "PS256": self.rsa_key,
            "RSA-OAEP-256": self.rsa_key,
            "ES256": self.ec_key,
            "ECDH-ES+A256KW": self.ec_key,
            "EdDSA": self.ed_key,
            "dir": self.dir_secret,
        }[alg]

    def public(self, alg: str) -> Any:
        key = self.private(alg)
        return key if isinstance(key, bytes) else key.public_key()

    def jwk(self, alg: str, *, private: bool) -> dict[str, Any]:
        return jwk_dict(self.private(alg) if private else self.public(alg))


def jwk_dict(key: Any) -> dict[str, Any]:
    """A JWK dict for a `cryptography` key or a secret (RFC 7517, RFC 7518 §6, RFC 8037)."""
    if isinstance(key, bytes):
        return {"kty": "oct", "k": b64e(key).decode()}
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        pub = key.public_numbers() if isinstance(key, rsa.RSAPublicKey) else key.private_numbers()
        numbers = pub if isinstance(pub, rsa.RSAPublicNumbers) else pub.public_numbers
        out = {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
        if isinstance(pub, rsa.RSAPrivateNumbers):
            out |= {
                "d": _uint(pub.d),
                "p": _uint(pub.p),
                "q": _uint(pub.q),
                "dp": _uint(pub.dmp1),
                "dq": _uint(pub.dmq1),
                "qi": _uint(pub.iqmp),
            }
        return out
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        public = key if isinstance(key, ec.EllipticCurvePublicKey) else key.public_key()
        point = public.public_bytes(X962, UNCOMPRESSED)
        out = {"kty": "EC", "crv": "P-256", "x": b64e(point[1:33]).decode()}
        out["y"] = b64e(point[33:]).decode()
        if isinstance(key, ec.EllipticCurvePrivateKey):
            out["d"] = b64e(key.private_numbers().private_value.to_bytes(32, "big")).decode()
        return out
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        ed_public = key if isinstance(key, ed25519.Ed25519PublicKey) else key.public_key()
        raw = serialization.Encoding.Raw
        out = {"kty": "OKP", "crv": "Ed25519"}
        out["x"] = b64e(ed_public.public_bytes(raw, serialization.PublicFormat.Raw)).decode()
        if isinstance(key, ed25519.Ed25519PrivateKey):
            fmt = serialization.PrivateFormat.Raw
            none = serialization.NoEncryption()
            out["d"] = b64e(key.private_bytes(raw, fmt, none)).decode()
        return out
    raise TypeError(f"unsupported key {type(key).__name__}")


def make_material() -> Material:
    now = int(time.time())
    claims = {
        "iss": ISS,
        "sub": "u_1234567890",
        "aud": AUD,
        "iat": now,
        # Long enough for any run; the verifiers check it on every call.
        "exp": now + 3600,
        "jti": "8a1c2b5e-52d4-4c3e-9b7a-3f0e6f2a9d11",
        "client_id": "notes-web",
        "scope": "notes:read notes:write",
    }
    m = Material(
        hs_secret=os.urandom(32),
        dir_secret=os.urandom(32),
        rsa_key=rsa.generate_private_key(65537, 2048),
        ec_key=ec.generate_private_key(P256),
        ed_key=ed25519.Ed25519PrivateKey.generate(),
        claims=claims,
        plaintext=orjson.dumps(claims),
    )
    # The same header and claims signed by another key of the same type: a bad signature.
    others = {
        "HS256": os.urandom(32),
        "RS256": rsa.generate_private_key(65537, 2048),
        "ES256": ec.generate_private_key(P256),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }
    others["PS256"] = others["RS256"]
    for alg in SIGN_ALGS:
        key = m.private(alg)
        good = m.tokens[alg] = minimal_sign(claims, key, alg)
        forged = minimal_sign(claims, others[alg], alg)
        m.bad_tokens[alg] = {
            "expired": minimal_sign(claims | {"exp": now - 60, "iat": now - 120}, key, alg),
            "wrong audience": minimal_sign(claims | {"aud": "https://other.example"}, key, alg),
            "no exp": minimal_sign({k: v for k, v in claims.items() if k != "exp"}, key, alg),
            "bad signature": good.rpartition(".")[0] + "." + forged.rpartition(".")[2],
        }
    for alg in JWE_ALGS:
        m.jwe_tokens[alg] = JWE_ENCRYPTERS[alg](m.plaintext, m.public(alg))
    return m


# --- candidates: one class per column --------------------------------------------------


class Candidate:
    """A column of the tables. Methods return a zero-argument callable, or None if unsupported."""

    name = ""

    def __init__(self, m: Material) -> None:
        self.m = m

    def sign(self, alg: str) -> Thunk | None:
        return None

    def verify(self, alg: str, token: str) -> Thunk | None:
        return None

    def encrypt(self, alg: str) -> Thunk | None:
        return None

    def decrypt(self, alg: str, token: str) -> Thunk | None:
        return None


class Raw(Candidate):
    """The bare `cryptography` call on the same bytes the JOSE paths feed it."""

    name = "raw"

    def sign(self, alg: str) -> Thunk | None:
        key = self.m.private(alg)
        data = self.m.tokens[alg].rpartition(".")[0].encode()
        if alg == "HS256":
            return lambda: hs256_sign(key, data)
        if alg == "RS256":
            return lambda: key.sign(data, PKCS1, SHA256)
        if alg == "PS256":
            return lambda: key.sign(data, PSS, SHA256)
        if alg == "ES256":
            return lambda: key.sign(data, ECDSA)
        return lambda: key.sign(data)

    def verify(self, alg: str, token: str) -> Thunk | None:
        key = self.m.public(alg)
        head, _, sig64 = token.rpartition(".")
        data, sig = head.encode(), b64d(sig64.encode())
        if alg == "HS256":
            return lambda: hs256_verify(key, data, sig)
        if alg == "RS256":
            return lambda: key.verify(sig, data, PKCS1, SHA256)
        if alg == "PS256":
            return lambda: key.verify(sig, data, PSS, SHA256)
        if alg == "ES256":
            der = encode_dss_signature(
                int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            )
            return lambda: key.verify(der, data, ECDSA)
        return lambda: key.verify(sig, data)

    def encrypt(self, alg: str) -> Thunk | None:
        # Fresh IV, CEK and ephemeral key included: no correct encryption can skip them.
        pt, aad = self.m.plaintext, self.m.jwe_tokens[alg].partition(".")[0].encode()
        key = self.m.public(alg)
        if alg == "dir":
            return lambda: AESGCM(key).encrypt(os.urandom(12), pt, aad)
        if alg == "RSA-OAEP-256":

            def rsa_oaep() -> object:
                cek = os.urandom(32)
                return key.encrypt(cek, OAEP256), AESGCM(cek).encrypt(os.urandom(12), pt, aad)

            return rsa_oaep

        def ecdh_es() -> object:
            ephemeral = ec.generate_private_key(P256)
            kek = ecdh_kek(ephemeral.exchange(ECDH, key))
            point = ephemeral.public_key().public_bytes(X962, UNCOMPRESSED)
            cek = os.urandom(32)
            sealed = AESGCM(cek).encrypt(os.urandom(12), pt, aad)
            return point, aes_key_wrap(kek, cek), sealed

        return ecdh_es

    def decrypt(self, alg: str, token: str) -> Thunk | None:
        header_b64, ek64, iv64, ct64, tag64 = token.encode().split(b".")
        aad, ek, iv, sealed = header_b64, b64d(ek64), b64d(iv64), b64d(ct64) + b64d(tag64)
        key = self.m.private(alg)
        if alg == "dir":
            return lambda: AESGCM(key).decrypt(iv, sealed, aad)
        if alg == "RSA-OAEP-256":
            return lambda: AESGCM(key.decrypt(ek, OAEP256)).decrypt(iv, sealed, aad)
        epk = orjson.loads(b64d(header_b64))["epk"]
        point = b"\x04" + b64d(epk["x"].encode()) + b64d(epk["y"].encode())

        def ecdh_es() -> object:
            # Loading the sender's point is part of the cryptography: it checks the curve.
            peer = ec.EllipticCurvePublicKey.from_encoded_point(P256, point)
            cek = aes_key_unwrap(ecdh_kek(key.exchange(ECDH, peer)), ek)
            return AESGCM(cek).decrypt(iv, sealed, aad)

        return ecdh_es


class Minimal(Candidate):
    name = "minimal"

    def sign(self, alg: str) -> Thunk | None:
        claims, key = self.m.claims, self.m.private(alg)
        return lambda: minimal_sign(claims, key, alg)

    def verify(self, alg: str, token: str) -> Thunk | None:
        key = self.m.public(alg)
        return lambda: minimal_verify(token, key, alg, AUD)

    def encrypt(self, alg: str) -> Thunk | None:
        encrypt, pt, key = JWE_ENCRYPTERS[alg], self.m.plaintext, self.m.public(alg)
        return lambda: encrypt(pt, key)

    def decrypt(self, alg: str, token: str) -> Thunk | None:
        decrypt, key = JWE_DECRYPTERS[alg], self.m.private(alg)
        return lambda: decrypt(token, key)


class Ostiary(Candidate):
    """Only the public API of docs/jose.md."""

    name = "ostiary"

    def __init__(self, m: Material) -> None:
        super().__init__(m)
        from ostiary.jose import jwk, jwt

        self.jwt = jwt
        try:
            from ostiary.jose import jwe
        except ImportError:
            self.jwe: Any = None
        else:
            self.jwe = jwe
        self.jwk = jwk

    def key(self, alg: str, *, private: bool) -> Any:
        if alg in ("HS256", "dir"):
            return self.jwk.JWK.from_secret(self.m.private(alg))
        return self.jwk.JWK.from_dict(self.m.jwk(alg, private=private))

    def sign(self, alg: str) -> Thunk | None:
        encode, claims, key = self.jwt.encode, self.m.claims, self.key(alg, private=True)
        return lambda: encode(claims, key, alg=alg)

    def verify(self, alg: str, token: str) -> Thunk | None:
        decode, key, algs = self.jwt.decode, self.key(alg, private=False), [alg]
        return lambda: decode(token, key, algorithms=algs, audience=AUD)

    def encrypt(self, alg: str) -> Thunk | None:
        if self.jwe is None:
            return None
        encrypt, pt, key = self.jwe.encrypt, self.m.plaintext, self.key(alg, private=False)
        return lambda: encrypt(pt, key, alg=alg, enc=ENC)

    def decrypt(self, alg: str, token: str) -> Thunk | None:
        if self.jwe is None:
            return None
        decrypt, key = self.jwe.decrypt, self.key(alg, private=True)
        algs, encs = [alg], [ENC]
        return lambda: decrypt(token, key, algorithms=algs, encryptions=encs)


class PyJWT(Candidate):
    name = "pyjwt"

    def __init__(self, m: Material) -> None:
        super().__init__(m)
        import jwt

        self.lib = jwt

    def sign(self, alg: str) -> Thunk | None:
        encode, claims, key = self.lib.encode, self.m.claims, self.m.private(alg)
        return lambda: encode(claims, key, algorithm=alg)

    def verify(self, alg: str, token: str) -> Thunk | None:
        decode, key, algs = self.lib.decode, self.m.public(alg), [alg]
        options: Any = {"require": ["exp"]}
        return lambda: decode(token, key, algorithms=algs, audience=AUD, options=options)


class Joserfc(Candidate):
    name = "joserfc"

    def __init__(self, m: Material) -> None:
        super().__init__(m)
        from joserfc import jwe, jwk, jwt

        self.jwt, self.jwe, self.jwk = jwt, jwe, jwk
        self.claims_registry = jwt.JWTClaimsRegistry(
            exp={"essential": True}, aud={"essential": True, "value": AUD}
        )

    def key(self, alg: str, *, private: bool) -> Any:
        return self.jwk.import_key(self.m.jwk(alg, private=private))

    def sign(self, alg: str) -> Thunk | None:
        encode, claims, key = self.jwt.encode, self.m.claims, self.key(alg, private=True)
        header, algs = {"alg": alg}, [alg]
        return lambda: encode(header, claims, key, algorithms=algs)

    def verify(self, alg: str, token: str) -> Thunk | None:
        decode, key, algs = self.jwt.decode, self.key(alg, private=False), [alg]
        validate = self.claims_registry.validate

        def verify() -> object:
            claims = decode(token, key, algorithms=algs).claims
            validate(claims)
            return claims

        return verify

    def encrypt(self, alg: str) -> Thunk | None:
        encrypt, pt, key = self.jwe.encrypt_compact, self.m.plaintext, self.key(alg, private=False)
        header, algs = {"alg": alg, "enc": ENC}, [alg, ENC]
        return lambda: encrypt(header, pt, key, algorithms=algs)

    def decrypt(self, alg: str, token: str) -> Thunk | None:
        decrypt, key, algs = self.jwe.decrypt_compact, self.key(alg, private=True), [alg, ENC]
        return lambda: decrypt(token, key, algorithms=algs).plaintext


class Jwcrypto(Candidate):
    name = "jwcrypto"

    def __init__(self, m: Material) -> None:
        super().__init__(m)
        from jwcrypto import jwe, jwk, jwt
        from jwcrypto.common import json_decode

        self.jwt, self.jwe, self.jwk, self.json_decode = jwt, jwe, jwk, json_decode

    def key(self, alg: str, *, private: bool) -> Any:
        return self.jwk.JWK(**self.m.jwk(alg, private=private))

    def sign(self, alg: str) -> Thunk | None:
        jwt_class, claims, key = self.jwt.JWT, self.m.claims, self.key(alg, private=True)
        header = {"alg": alg}

        def sign() -> object:
            token = jwt_class(header=header, claims=claims)
            token.make_signed_token(key)
            return token.serialize()

        return sign

    def verify(self, alg: str, token: str) -> Thunk | None:
        jwt_class, key, algs = self.jwt.JWT, self.key(alg, private=False), [alg]
        check_claims, json_decode = {"exp": None, "aud": AUD}, self.json_decode
        return lambda: json_decode(
            jwt_class(jwt=token, key=key, algs=algs, check_claims=check_claims).claims
        )

    def encrypt(self, alg: str) -> Thunk | None:
        jwe_class, pt, key = self.jwe.JWE, self.m.plaintext, self.key(alg, private=False)
        header = {"alg": alg, "enc": ENC}

        def encrypt() -> object:
            obj = jwe_class(pt, protected=header)
            obj.add_recipient(key)
            return obj.serialize(compact=True)

        return encrypt

    def decrypt(self, alg: str, token: str) -> Thunk | None:
        jwe_class, key = self.jwe.JWE, self.key(alg, private=True)

        def decrypt() -> object:
            obj = jwe_class()
            obj.deserialize(token, key=key)
            return obj.payload

        return decrypt


class PythonJose(Candidate):
    name = "python-jose"
    unsupported = ("PS256", "EdDSA")

    def __init__(self, m: Material) -> None:
        super().__init__(m)
        from jose import jwe, jwk, jwt

        self.jwt, self.jwe, self.jwk = jwt, jwe, jwk

    def sign(self, alg: str) -> Thunk | None:
        if alg in self.unsupported:
            return None
        encode, claims = self.jwt.encode, self.m.claims
        key = self.jwk.construct(self.m.jwk(alg, private=True), alg)
        return lambda: encode(claims, key, algorithm=alg)

    def verify(self, alg: str, token: str) -> Thunk | None:
        if alg in self.unsupported:
            return None
        decode, key, algs = (
            self.jwt.decode,
            self.jwk.construct(self.m.jwk(alg, private=False), alg),
            [alg],
        )
        options = {"require_exp": True, "require_aud": True}
        return lambda: decode(token, key, algorithms=algs, audience=AUD, options=options)

    # python-jose's JWE takes no prepared key object; a `cryptography` key is its cheapest input.
    def encrypt(self, alg: str) -> Thunk | None:
        if alg.startswith("ECDH-ES"):
            return None
        encrypt, pt, key = self.jwe.encrypt, self.m.plaintext, self.m.public(alg)
        return lambda: encrypt(pt, key, encryption=ENC, algorithm=alg)

    def decrypt(self, alg: str, token: str) -> Thunk | None:
        if alg.startswith("ECDH-ES"):
            return None
        decrypt, key = self.jwe.decrypt, self.m.private(alg)
        return lambda: decrypt(token, key)


class Authlib(Candidate):
    name = "authlib"

    def __init__(self, m: Material) -> None:
        super().__init__(m)
        # Importing Authlib turns its deprecation warnings back on; quiet them for the run.
        importlib.import_module("authlib.deprecate")
        warnings.simplefilter("ignore")
        from authlib.jose import JsonWebEncryption, JsonWebKey, JsonWebToken

        self.token_class, self.jwk = JsonWebToken, JsonWebKey
        self.jwe = JsonWebEncryption()

    def key(self, alg: str, *, private: bool) -> Any:
        return self.jwk.import_key(self.m.jwk(alg, private=private))

    def sign(self, alg: str) -> Thunk | None:
        encode, claims, key = (
            self.token_class([alg]).encode,
            self.m.claims,
            self.key(alg, private=True),
        )
        header = {"alg": alg}
        return lambda: encode(header, claims, key)

    def verify(self, alg: str, token: str) -> Thunk | None:
        decode, key = self.token_class([alg]).decode, self.key(alg, private=False)
        options = {"exp": {"essential": True}, "aud": {"essential": True, "value": AUD}}

        def verify() -> object:
            claims = decode(token, key, claims_options=options)
            claims.validate()
            return claims

        return verify

    def encrypt(self, alg: str) -> Thunk | None:
        encrypt, pt, key = (
            self.jwe.serialize_compact,
            self.m.plaintext,
            self.key(alg, private=False),
        )
        header = {"alg": alg, "enc": ENC}
        return lambda: encrypt(header, pt, key)

    def decrypt(self, alg: str, token: str) -> Thunk | None:
        decrypt, key = self.jwe.deserialize_compact, self.key(alg, private=True)
        return lambda: decrypt(token, key)["payload"]


CANDIDATES: dict[str, type[Candidate]] = {
    "raw": Raw,
    "minimal": Minimal,
    "ostiary": Ostiary,
    "pyjwt": PyJWT,
    "joserfc": Joserfc,
    "jwcrypto": Jwcrypto,
    "python-jose": PythonJose,
    "authlib": Authlib,
}


# --- operations and sanity checks ----------------------------------------------------


@dataclass(frozen=True)
class Op:
    kind: str  # sign, verify, encrypt, decrypt
    alg: str

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.alg}"

    @property
    def title(self) -> str:
        return (
            f"{self.kind} {self.alg}+{ENC}"
            if self.kind in ("encrypt", "decrypt")
            else (f"{self.kind} {self.alg}")
        )


ALL_OPS = (
    *(Op(kind, alg) for alg in SIGN_ALGS for kind in ("sign", "verify")),
    *(Op(kind, alg) for alg in JWE_ALGS for kind in ("encrypt", "decrypt")),
)


def _text(value: object) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _claims_of(value: object) -> object:
    return dict(value) if isinstance(value, dict) else value


def build(cand: Candidate, op: Op, m: Material) -> Thunk | None:
    if op.kind == "sign":
        return cand.sign(op.alg)
    if op.kind == "verify":
        return cand.verify(op.alg, m.tokens[op.alg])
    if op.kind == "encrypt":
        return cand.encrypt(op.alg)
    return cand.decrypt(op.alg, m.jwe_tokens[op.alg])


def check(cand: Candidate, op: Op, fn: Thunk, m: Material, notes: list[str]) -> list[str]:
    """Problems with a candidate's output; an empty list means it may be timed. Differences
    that do not disqualify go to `notes`."""
    problems: list[str] = []
    if op.kind == "sign":
        out = fn()
        if cand.name != "raw":
            try:
                got = minimal_verify(_text(out), m.public(op.alg), op.alg, AUD)
            except Exception as exc:
                return [f"its token does not verify: {exc!r}"]
            if got != m.claims:
                problems.append("its token carries different claims")
    elif op.kind == "verify":
        out = fn()
        if cand.name != "raw" and _claims_of(out) != m.claims:
            problems.append(f"returned {out!r}, not the claims")
        if cand.name in ("raw", "minimal"):
            return problems
        for what, bad in m.bad_tokens[op.alg].items():
            thunk = cand.verify(op.alg, bad)
            assert thunk is not None
            try:
                thunk()
            except Exception:  # noqa: S112 - any refusal will do
                continue
            if what == "no exp":
                notes.append(f"{TITLES[cand.name]} {op.id} accepts a token without exp")
            else:
                problems.append(f"accepts a token with {what}")
    elif op.kind == "encrypt":
        out = fn()
        if cand.name != "raw":
            try:
                plaintext = JWE_DECRYPTERS[op.alg](_text(out), m.private(op.alg))
            except Exception as exc:
                return [f"its token does not decrypt: {exc!r}"]
            if plaintext != m.plaintext:
                problems.append("its token decrypts to something else")
    else:
        out = fn()
        if cand.name != "raw" and out != m.plaintext:
            problems.append(f"returned {out!r}, not the plaintext")
        if cand.name != "raw":
            head, _, tag = m.jwe_tokens[op.alg].rpartition(".")
            bad = head + "." + ("B" if tag[0] == "A" else "A") + tag[1:]
            thunk = cand.decrypt(op.alg, bad)
            assert thunk is not None
            try:
                thunk()
            except Exception:  # noqa: S110 - any refusal will do
                pass
            else:
                problems.append("accepts a token with a bad tag")
    return problems


def cross_check(m: Material) -> None:
    """The minimal path's own tokens must satisfy an independent library."""
    import jwt as pyjwt
    from jwcrypto import jwe, jwk

    for alg in SIGN_ALGS:
        got = pyjwt.decode(m.tokens[alg], m.public(alg), algorithms=[alg], audience=AUD)
        assert got == m.claims, alg
    for alg in JWE_ALGS:
        obj = jwe.JWE()
        obj.deserialize(m.jwe_tokens[alg], key=jwk.JWK(**m.jwk(alg, private=True)))
        assert obj.payload == m.plaintext, alg


# --- timing ---------------------------------------------------------------------------


# Wall time by default; `--clock cpu` counts only this thread's CPU time, which a neighbour's
# load cannot inflate (on an idle machine the two agree).
CLOCKS = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}
_clock = CLOCKS["wall"]


def _batch(fn: Thunk, n: int) -> int:
    clock = _clock
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = clock()
        for _ in repeat(None, n):
            fn()
        return clock() - t0
    finally:
        if gc_was_enabled:
            gc.enable()


def _batch_size(fn: Thunk, batch_ns: int) -> int:
    n = 1
    while True:
        elapsed = _batch(fn, n)
        if elapsed > batch_ns // 4 or n >= 1 << 20:
            return max(1, round(n * batch_ns / max(elapsed, 1)))
        n *= 4


def call_overhead_ns() -> float:
    def empty() -> None:
        return None

    n = _batch_size(empty, 2_000_000)
    return statistics.median(_batch(empty, n) / n for _ in range(15))


def measure(fns: dict[str, Thunk], rounds: int, batch_ns: int, overhead: float) -> dict[str, Stat]:
    """Run the candidates in interleaved batches; per candidate, the median batch mean."""
    names = list(fns)
    sizes = {name: _batch_size(fns[name], batch_ns) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            n = sizes[name]
            samples[name].append(_batch(fns[name], n) / n - overhead)
    return {name: Stat.of(s) for name, s in samples.items()}


@dataclass(frozen=True)
class Stat:
    median_ns: float
    spread: float  # half the interquartile range, relative to the median

    @classmethod
    def of(cls, samples: list[float]) -> Stat:
        q1, _, q3 = statistics.quantiles(samples, n=4) if len(samples) > 1 else (0, 0, 0)
        med = statistics.median(samples)
        return cls(med, (q3 - q1) / 2 / med if med > 0 else 0.0)

    @property
    def us(self) -> float:
        return self.median_ns / 1000


@dataclass
class OpResult:
    op: Op
    stats: dict[str, Stat]

    def us(self, name: str) -> float | None:
        stat = self.stats.get(name)
        return stat.us if stat else None

    def fastest_peer(self) -> str | None:
        timed = [p for p in PEERS if p in self.stats]
        return min(timed, key=lambda p: self.stats[p].median_ns) if timed else None


# --- import time and memory ---------------------------------------------------------


def measure_imports(libs: Iterable[str], repeats: int, clock: str) -> dict[str, float | None]:
    """Median milliseconds to import each library in a fresh interpreter, in interleaved rounds."""
    timer = "process_time_ns" if clock == "cpu" else "perf_counter_ns"
    codes = {
        lib: (
            "import time, warnings\n"
            "warnings.simplefilter('ignore')\n"
            f"t0 = time.{timer}()\n"
            f"{IMPORTS[lib]}\n"
            f"print(time.{timer}() - t0)\n"
        )
        for lib in libs
    }
    runs: dict[str, list[float] | None] = {lib: [] for lib in codes}
    # Every library gets cached bytecode on the same terms, even where the environment says
    # PYTHONDONTWRITEBYTECODE (a source checkout would otherwise recompile on every run).
    pycache = tempfile.TemporaryDirectory(prefix="jose-speed-pycache-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache.name
    for i in range(repeats + 1):
        for lib, code in codes.items():
            lib_runs = runs[lib]
            if lib_runs is None:
                continue
            proc = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
            )
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-1:] or ["failed"]
                print(f"  import {lib}: {tail[0]}", file=sys.stderr)
                runs[lib] = None
            elif i:  # the first round may compile bytecode; it is not counted
                lib_runs.append(int(proc.stdout) / 1e6)
    pycache.cleanup()
    return {lib: statistics.median(r) if r else None for lib, r in runs.items()}


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _heap_meter() -> tuple[str, Callable[[], int]] | None:
    """Bytes in use: glibc's count of live malloc'd bytes (the child runs with
    PYTHONMALLOC=malloc, so Python objects, OpenSSL and Rust all allocate there); else RSS."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        mallinfo2 = None
    if mallinfo2 is not None and os.environ.get("PYTHONMALLOC") == "malloc":
        mallinfo2.restype = _MallInfo2

        def in_use() -> int:
            info = mallinfo2()
            return int(info.uordblks + info.hblkhd)

        return "malloc", in_use
    if os.path.exists("/proc/self/statm"):

        def rss() -> int:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

        return "rss", rss
    return None


def key_factory(lib: str, kty: str) -> Callable[[dict[str, Any]], object]:
    """How each library turns a JWK dict into the key object it keeps in a cache."""
    alg = {"EC": "ES256", "RSA": "RS256", "oct": "HS256"}[kty]
    if lib == "cryptography":
        if kty == "EC":
            return lambda d: ec.EllipticCurvePublicKey.from_encoded_point(
                P256, b"\x04" + b64d(d["x"].encode()) + b64d(d["y"].encode())
            )
        if kty == "RSA":
            return lambda d: rsa.RSAPublicNumbers(
                int.from_bytes(b64d(d["e"].encode()), "big"),
                int.from_bytes(b64d(d["n"].encode()), "big"),
            ).public_key()
        return lambda d: b64d(d["k"].encode())
    if lib == "ostiary":
        from ostiary.jose import jwk

        return jwk.JWK.from_dict
    if lib == "pyjwt":
        import jwt

        return lambda d: jwt.PyJWK(d, algorithm=alg)
    if lib == "joserfc":
        from joserfc import jwk as joserfc_jwk

        return joserfc_jwk.import_key
    if lib == "jwcrypto":
        from jwcrypto import jwk as jwcrypto_jwk

        return lambda d: jwcrypto_jwk.JWK(**d)
    if lib == "python-jose":
        from jose import jwk as jose_jwk

        return lambda d: jose_jwk.construct(d, alg)
    from authlib.jose import JsonWebKey

    import_key: Callable[[dict[str, Any]], object] = JsonWebKey.import_key
    return import_key


def key_user(lib: str, alg: str) -> Callable[[Any, str], object]:
    """Each library verifying a token with a key object: the use that fills lazy caches."""
    algs = [alg]
    if lib == "cryptography":
        verifier = VERIFIERS[alg]

        def use(key: Any, token: str) -> object:
            head, _, sig64 = token.rpartition(".")
            verifier(key, head.encode(), b64d(sig64.encode()))
            return key

        return use
    if lib == "ostiary":
        from ostiary.jose import jwt as ostiary_jwt

        return lambda key, token: ostiary_jwt.decode(token, key, algorithms=algs, audience=AUD)
    if lib == "pyjwt":
        import jwt

        return lambda key, token: jwt.decode(token, key, algorithms=algs, audience=AUD)
    if lib == "joserfc":
        from joserfc import jwt as joserfc_jwt

        return lambda key, token: joserfc_jwt.decode(token, key, algorithms=algs)
    if lib == "jwcrypto":
        from jwcrypto import jwt as jwcrypto_jwt

        return lambda key, token: jwcrypto_jwt.JWT(jwt=token, key=key, algs=algs).claims
    if lib == "python-jose":
        from jose import jwt as jose_jwt

        return lambda key, token: jose_jwt.decode(token, key, algorithms=algs, audience=AUD)
    from authlib.jose import JsonWebToken

    decode = JsonWebToken(algs).decode
    return lambda key, token: decode(token, key)


def memory_worker(lib: str, kty: str, n: int) -> None:
    """Child process: bytes per cached key object after its first use, as RSS growth and as
    traced Python allocations."""
    warnings.simplefilter("ignore")
    given: dict[str, Any] = json.load(sys.stdin)
    template, token, alg = given["jwk"], given["token"], given["alg"]
    make, use = key_factory(lib, kty), key_user(lib, alg)

    def cached_key(d: dict[str, Any]) -> object:
        key = make(d)
        use(key, token)
        return key

    cached_key(dict(template))  # whatever the first key pulls in lazily is not counted
    inputs = [dict(template, kid=f"key-{i:05d}") for i in range(2 * n)]
    meter = _heap_meter()
    gc.collect()
    before = meter[1]() if meter else 0
    kept = [cached_key(d) for d in inputs[:n]]
    gc.collect()
    total = (meter[1]() - before) / n if meter else None
    tracemalloc.start()
    gc.collect()
    start = tracemalloc.get_traced_memory()[0]
    kept2 = [cached_key(d) for d in inputs[n:]]
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    result = {
        "total": total,
        "meter": meter[0] if meter else None,
        "traced": traced / n,
        "kept": len(kept) + len(kept2),
    }
    print(json.dumps(result))


def measure_memory(libs: Iterable[str], m: Material, n: int) -> dict[str, dict[str, Any]]:
    algs = {"EC": "ES256", "RSA": "RS256", "oct": "HS256"}
    out: dict[str, dict[str, Any]] = {}
    for lib in libs:
        out[lib] = {}
        for kty in MEMORY_KTYS:
            alg = algs[kty]
            given = {"jwk": m.jwk(alg, private=False), "token": m.tokens[alg], "alg": alg}
            proc = subprocess.run(
                [sys.executable, __file__, "--memory-worker", lib, kty, str(n)],
                input=json.dumps(given),
                env=os.environ | {"PYTHONMALLOC": "malloc"},
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode == 0:
                out[lib][kty] = json.loads(proc.stdout)
            else:
                tail = proc.stderr.strip().splitlines()[-1:] or ["failed"]
                print(f"  memory {lib} {kty}: {tail[0]}", file=sys.stderr)
                out[lib][kty] = None
    return out


# --- environment and output ---------------------------------------------------------


def environment() -> dict[str, str]:
    from cryptography.hazmat.backends.openssl.backend import backend

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for dist in DISTRIBUTIONS:
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {usable} usable cores (nproc), {platform.system()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openssl": backend.openssl_version_text(),
        "libraries": ", ".join(versions),
    }


def _fmt_us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _fmt_x(num: float | None, den: float | None) -> str:
    if num is None or den is None or den <= 0:
        return "—"
    return f"{num / den:.2f}x"


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    text = [i == 0 or header[i] in TEXT_COLUMNS for i in range(len(header))]
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join("---" if t else "---:" for t in text) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if text[i] else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    return "\n".join(lines)


def render(
    *,
    results: list[OpResult],
    imports: dict[str, float | None] | None,
    memory: dict[str, dict[str, Any]] | None,
    env: dict[str, str],
    notes: list[str],
    settings: str,
    markdown: bool,
) -> str:
    out: list[str] = []

    def h(title: str) -> str:
        return f"### {title}" if markdown else f"== {title}"

    cols = [c for c in COLUMNS if any(c in r.stats for r in results)] or list(COLUMNS)
    if markdown:
        out += [f"- {k}: {v}" for k, v in env.items()]
        out.append(f"- settings: {settings}")
    else:
        out += [f"{k:>9}: {v}" for k, v in env.items()]
        out.append(f" settings: {settings}")
    if results:
        out += ["", h("µs per operation (median of interleaved batches; lower is better)"), ""]
        rows = []
        for r in results:
            cells = []
            for c in cols:
                stat = r.stats.get(c)
                cell = _fmt_us(stat.us if stat else None)
                if stat and not markdown and stat.spread > 0.05:
                    cell += f" ±{stat.spread:.0%}"
                cells.append(cell)
            rows.append([r.op.title, *cells])
        out.append(_table(["operation", *(TITLES[c] for c in cols)], rows, markdown))

        out += ["", h("multiple of the raw primitive (xraw)"), ""]
        rows = [
            [r.op.title, *(_fmt_x(r.us(c), r.us("raw")) for c in cols if c != "raw")]
            for r in results
        ]
        header = ["operation", *(TITLES[c] for c in cols if c != "raw")]
        out.append(_table(header, rows, markdown))

        out += ["", h("multiple of the fastest peer library (xfastest peer)"), ""]
        rows = []
        for r in results:
            best = r.fastest_peer()
            best_us = r.us(best) if best else None
            row = [r.op.title, TITLES[best] if best else "—"]
            row += [_fmt_x(r.us(c), best_us) for c in cols if c != "raw"]
            rows.append(row)
        header = ["operation", "fastest peer", *(TITLES[c] for c in cols if c != "raw")]
        out.append(_table(header, rows, markdown))

        out += [
            "",
            h(
                "Ostiary against the targets: fastest library (a tie is within 3%), "
                "within 1.10x of the minimal path"
            ),
            "",
        ]
        rows = []
        for r in results:
            ost, mini, best = r.us("ostiary"), r.us("minimal"), r.fastest_peer()
            best_us = r.us(best) if best else None
            if ost is None:
                verdict = "not measured"
            else:
                misses = []
                if best_us is not None and ost > best_us * (1 + TIE):
                    misses.append(f"slower than {TITLES[best or '']}")
                elif best_us is not None and ost > best_us:
                    misses.append(f"tie with {TITLES[best or '']}")
                if mini is not None and ost > 1.10 * mini:
                    misses.append("over 1.10x minimal")
                verdict = "; ".join(misses) or "met"
            rows.append(
                [
                    r.op.title,
                    _fmt_x(ost, r.us("raw")),
                    _fmt_x(ost, best_us),
                    _fmt_x(ost, mini),
                    _fmt_x(mini, r.us("raw")),
                    _fmt_x(best_us, r.us("raw")),
                    verdict,
                ]
            )
        header = [
            "operation",
            "Ostiary xraw",
            "Ostiary xfastest peer",
            "Ostiary xminimal",
            "minimal xraw",
            "fastest peer xraw",
            "targets",
        ]
        out.append(_table(header, rows, markdown))
    if imports:
        out += ["", h("import time (ms, fresh interpreter, median)"), ""]
        base = imports.get("cryptography")
        rows = [
            [
                lib if lib == "cryptography" else TITLES[lib],
                "—" if ms is None else f"{ms:.1f}",
                "—" if ms is None or base is None or lib == "cryptography" else f"{ms - base:+.1f}",
                f"`{IMPORTS[lib].splitlines()[0]}`" + (" …" if "\n" in IMPORTS[lib] else ""),
            ]
            for lib, ms in imports.items()
        ]
        out.append(_table(["library", "ms", "vs cryptography", "statement"], rows, markdown))
    if memory:
        meters = {got["meter"] for by in memory.values() for got in by.values() if got}
        what = "RSS growth" if meters == {"rss"} else "all allocations"
        out += ["", h("memory per cached key (bytes, after the key's first use)"), ""]
        header = ["library"]
        for kty in MEMORY_KTYS:
            header += [f"{MEMORY_TITLES[kty]}: {what}", "of it Python objects"]
        rows = []
        for lib, by_kty in memory.items():
            row = [lib if lib == "cryptography" else TITLES[lib]]
            for kty in MEMORY_KTYS:
                got = by_kty.get(kty)
                total = None if got is None else got["total"]
                row += [
                    "—" if total is None else f"{total:,.0f}",
                    "—" if got is None else f"{got['traced']:,.0f}",
                ]
            rows.append(row)
        out.append(_table(header, rows, markdown))
    if notes:
        out += ["", h("notes"), ""]
        out += [f"- {n}" for n in notes]
    return "\n".join(out)


def profile(fn: Thunk, seconds: float, top: int) -> str:
    n = max(1, int(seconds * 1e9 / max(_batch(fn, 20) / 20, 1)))
    prof = cProfile.Profile()
    prof.enable()
    for _ in repeat(None, n):
        fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    return text[text.find("   ncalls") :] if "   ncalls" in text else text


def _selected(name: str, patterns: list[str]) -> bool:
    name = name.lower()
    for pattern in map(str.lower, patterns):
        if any(ch in pattern for ch in "*?["):
            if fnmatch.fnmatchcase(name, pattern):
                return True
        elif pattern in name:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (< 1 min)")
    parser.add_argument(
        "--ops",
        nargs="+",
        default=["*"],
        metavar="PATTERN",
        help="operations to run: ids such as sign:HS256, decrypt:dir, or 'import', 'memory'; "
        "glob patterns or substrings, comma or space separated (default: all)",
    )
    parser.add_argument(
        "--libs",
        default=",".join(LIBS),
        help="comma-separated libraries (raw and minimal always run)",
    )
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per operation")
    parser.add_argument("--batch-ms", type=float, help="target length of one batch")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: time.perf_counter_ns (default); cpu: this thread's CPU time, for a busy host",
    )
    parser.add_argument("--keys", type=int, default=1000, help="keys per memory measurement")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="ostiary",
        metavar="LIB",
        help="after timing, profile LIB (default ostiary) on each selected operation",
    )
    parser.add_argument("--memory-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # Authlib's deprecation notice and the like

    if args.memory_worker:
        lib, kty, n = args.memory_worker
        memory_worker(lib, kty, int(n))
        return 0

    global _clock  # noqa: PLW0603 - one switch for the whole run, set before any timing
    _clock = CLOCKS[args.clock]
    patterns = [p for chunk in args.ops for p in chunk.split(",") if p]
    libs = [lib for lib in LIBS if lib in args.libs.split(",")]
    # Many short batches: on a shared machine a burst of load spoils few of them.
    rounds = args.rounds or (21 if args.quick else 151)
    batch_ns = int((args.batch_ms or (2 if args.quick else 5)) * 1e6)
    import_repeats = 3 if args.quick else 7
    settings = (
        f"{'--quick' if args.quick else 'full run'}: {rounds} rounds of ~{batch_ns / 1e6:g} ms "
        f"batches per candidate, {args.clock} clock, call overhead subtracted; "
        f"imports median of {import_repeats}; "
        f"{args.keys} keys per memory figure"
    )
    started = time.perf_counter()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    notes: list[str] = []
    m = make_material()
    cross_check(m)

    names = ["raw", "minimal", *libs]
    cands: dict[str, Candidate] = {}
    for name in names:
        try:
            cands[name] = CANDIDATES[name](m)
        except ImportError as exc:
            notes.append(f"{TITLES[name]} not measured: {exc}")
    if "ostiary" in cands and getattr(cands["ostiary"], "jwe", None) is None:
        notes.append("Ostiary JWE not measured: `ostiary.jose.jwe` is not available yet")

    ops = [op for op in ALL_OPS if _selected(op.id, patterns)]
    overhead = call_overhead_ns()
    results: list[OpResult] = []
    thunks: dict[str, dict[str, Thunk]] = {}
    for op in ops:
        fns: dict[str, Thunk] = {}
        for name, cand in cands.items():
            try:
                fn = build(cand, op, m)
                problems = [] if fn is None else check(cand, op, fn, m, notes)
            except Exception as exc:
                fn, problems = None, [f"failed: {exc!r}"]
            if problems:
                notes.append(f"{TITLES[name]} {op.id} not timed: {'; '.join(problems)}")
            elif fn is not None:
                fns[name] = fn
        thunks[op.id] = fns
        print(f"timing {op.id} ({len(fns)} candidates)", file=sys.stderr)
        results.append(OpResult(op, measure(fns, rounds, batch_ns, overhead)))

    imports = None
    if _selected("import", patterns):
        print("timing imports", file=sys.stderr)
        imports = measure_imports(
            ["cryptography", *(n for n in libs if n in cands)], import_repeats, args.clock
        )
    memory = None
    if _selected("memory", patterns):
        print("measuring memory per key", file=sys.stderr)
        memory = measure_memory(["cryptography", *(n for n in libs if n in cands)], m, args.keys)

    notes.append(f"empty-call overhead subtracted from every figure: {overhead:.0f} ns")
    notes.append(f"wall time of this run: {time.perf_counter() - started:.0f} s")
    if hasattr(os, "getloadavg"):
        load_after = os.getloadavg()[0]
        notes.append(f"load average: {load_before:.2f} at the start, {load_after:.2f} at the end")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        if args.clock == "wall" and max(load_before, load_after) > cores / 2:
            # Other processes took CPU time mid-batch: wall-clock means are inflated at random.
            notes.append("the host was busy: wall-clock figures are unreliable; use --clock cpu")
    report = render(
        results=results,
        imports=imports,
        memory=memory,
        env=environment(),
        notes=notes,
        settings=settings,
        markdown=args.markdown,
    )
    print(report)

    if args.profile:
        for op in ops:
            fn = thunks[op.id].get(args.profile)
            if fn is None:
                continue
            print(f"\n--- profile of {TITLES[args.profile]} {op.id} (by own time) ---")
            print(profile(fn, 0.5 if args.quick else 1.5, 15))
    return 0


if __name__ == "__main__":
    sys.exit(main())
