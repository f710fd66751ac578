"""One test per "Hardened by default" rule of issue #2, as boundary tables.

Rules already pinned by a CVE regression test (tests/jose/test_cves.py) are not repeated
here; docs/security.md maps every rule to the test that proves it. Hostile tokens are built
by hand with `hmac` and `cryptography`, never with Ostiary's signer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import zlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from ostiary.jose import (
    InvalidClaims,
    InvalidKey,
    JoseError,
    MalformedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
    jwk,
    jws,
    jwt,
)

NOW = 1_800_000_000
CLAIMS: dict[str, Any] = {"sub": "u_123", "exp": NOW + 300}
SECRET = b"0123456789abcdef0123456789abcdef"
LIMIT = 256 * 1024  # the documented default bound on input and on inflated plaintext
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PASSWORD = b"correct horse battery staple, v2"
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

Enc = serialization.Encoding
Pub = serialization.PublicFormat


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64json(obj: object) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def mac_token(header: str, payload: str, secret: bytes = SECRET, digest: str = "sha256") -> str:
    """Compact JWS from already-encoded segments, MACed over exactly those segments."""
    tag = hmac.new(secret, f"{header}.{payload}".encode("ascii"), digest).digest()
    return f"{header}.{payload}.{b64u(tag)}"


def hs_token(header: dict[str, Any], claims: object = CLAIMS, secret: bytes = SECRET) -> str:
    digest = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}.get(header["alg"], "sha256")
    return mac_token(b64json(header), b64json(claims), secret, digest)


def es256_signature(key: ec.EllipticCurvePrivateKey, signing_input: bytes) -> tuple[int, int]:
    return decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))


def decode(token: str, key: object, algorithms: list[str], **kwargs: Any) -> dict[str, Any]:
    return jwt.decode(token, key, algorithms=algorithms, now=NOW, **kwargs)


def gcm_jwe(header: dict[str, Any], cek: bytes, plaintext: bytes, encrypted_key: bytes) -> str:
    protected = b64json(header)
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode("ascii"))
    parts = [protected, b64u(encrypted_key), b64u(iv), b64u(sealed[:-16]), b64u(sealed[-16:])]
    return ".".join(parts)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def jwe_api() -> ModuleType:
    try:
        return importlib.import_module("ostiary.jose.jwe")
    except ImportError:
        pytest.skip("ostiary.jose.jwe has not landed yet: the JWE hardening tests need it")


# -- no `none`, ever; an allow-list is required ---------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", " none", "none ", ""])
@pytest.mark.parametrize("allowed", [["HS256"], ["none"], ["HS256", "none"]])
def test_alg_none_never_accepted(alg: str, allowed: list[str]) -> None:
    unsigned = f"{b64json({'alg': alg})}.{b64json(CLAIMS)}."
    with pytest.raises((TypeError, ValueError, JoseError)):
        decode(unsigned, SECRET, allowed)
    with pytest.raises((TypeError, ValueError, JoseError)):
        jws.verify(unsigned, SECRET, algorithms=allowed)


def test_none_cannot_be_signed() -> None:
    with pytest.raises((ValueError, JoseError)):
        jwt.encode(CLAIMS, SECRET, alg="none")
    with pytest.raises((ValueError, JoseError)):
        jws.sign(b"payload", SECRET, alg="none")


@pytest.mark.parametrize(
    "algorithms",
    [None, [], (), "", "HS256", b"HS256"],
    ids=["None", "empty-list", "empty-tuple", "empty-str", "bare-str", "bytes"],
)
def test_allow_list_required(algorithms: object) -> None:
    token = hs_token({"alg": "HS256"})
    decode_any: Any = jwt.decode
    verify_any: Any = jws.verify
    with pytest.raises((TypeError, ValueError)):
        decode_any(token, SECRET, algorithms=algorithms, now=NOW)
    with pytest.raises((TypeError, ValueError)):
        verify_any(token, SECRET, algorithms=algorithms)
    with pytest.raises(TypeError):
        decode_any(token, SECRET)  # no default at all


@pytest.mark.parametrize(
    ("token_alg", "allowed", "ok"),
    [
        ("HS256", ["HS256"], True),
        ("HS256", ["HS384"], False),
        ("HS512", ["HS256"], False),
        ("HS256", ["hs256"], False),
        ("HS256", ["RS256", "ES256"], False),
    ],
)
def test_alg_not_in_allowlist_rejected(token_alg: str, allowed: list[str], ok: bool) -> None:
    token = hs_token({"alg": token_alg}, CLAIMS, SECRET * 2)
    if ok:
        assert decode(token, SECRET * 2, allowed)["sub"] == "u_123"
    else:
        with pytest.raises(UnsupportedAlgorithm):
            decode(token, SECRET * 2, allowed)


# -- key family binding ---------------------------------------------------------------------------


def _not_a_secret(
    kind: str, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> tuple[Any, bytes]:
    """A key that is not an HMAC secret, and the bytes a confused verifier would MAC with."""
    ed = ed25519.Ed25519PrivateKey.generate()
    pub = rsa_key.public_key()
    pem = pub.public_bytes(Enc.PEM, Pub.SubjectPublicKeyInfo)
    ec_pem = ec_key.public_key().public_bytes(Enc.PEM, Pub.SubjectPublicKeyInfo)
    ed_pem = ed.public_key().public_bytes(Enc.PEM, Pub.SubjectPublicKeyInfo)
    private_pem = ec_key.private_bytes(
        Enc.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    openssh_private = ed.private_bytes(
        Enc.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    forms: dict[str, Callable[[], tuple[Any, bytes]]] = {
        "rsa-key-object": lambda: (pub, pem),
        "ec-key-object": lambda: (ec_key.public_key(), ec_pem),
        "okp-key-object": lambda: (ed.public_key(), ed_pem),
        "rsa-private-key-object": lambda: (rsa_key, pem),
        "public-jwk": lambda: (jwk.JWK.from_key(pub), pem),
        "public-jwk-dict": lambda: (jwk.JWK.from_key(ec_key.public_key()).to_dict(), ec_pem),
        "spki-pem-bytes": lambda: (pem, pem),
        "pkcs1-pem-bytes": lambda: (pub.public_bytes(Enc.PEM, Pub.PKCS1),) * 2,
        "private-pem-bytes": lambda: (private_pem, private_pem),
        "spki-der-bytes": lambda: (pub.public_bytes(Enc.DER, Pub.SubjectPublicKeyInfo),) * 2,
        "openssh-bytes": lambda: (ed.public_key().public_bytes(Enc.OpenSSH, Pub.OpenSSH),) * 2,
        "openssh-private-bytes": lambda: (openssh_private, openssh_private),
        "jwk-json-bytes": lambda: (jwk.JWK.from_key(pub).to_json().encode(),) * 2,
        # An oct JWK whose secret is a public key in disguise (refused by joserfc 1.7.7).
        "oct-jwk-holding-pem": lambda: ({"kty": "oct", "k": b64u(pem)}, pem),
    }
    return forms[kind]()


NOT_SECRETS = [
    "rsa-key-object",
    "ec-key-object",
    "okp-key-object",
    "rsa-private-key-object",
    "public-jwk",
    "public-jwk-dict",
    "spki-pem-bytes",
    "pkcs1-pem-bytes",
    "private-pem-bytes",
    "spki-der-bytes",
    "openssh-bytes",
    "openssh-private-bytes",
    "jwk-json-bytes",
    "oct-jwk-holding-pem",
]


@pytest.mark.parametrize("kind", NOT_SECRETS)
@pytest.mark.parametrize("alg", ["HS256", "HS512"])
def test_asymmetric_key_never_an_hmac_secret(
    kind: str, alg: str, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    key, guess = _not_a_secret(kind, rsa_key, ec_key)
    # MACed with the bytes a confused verifier would use: only the key binding can refuse it.
    token = hs_token({"alg": alg}, CLAIMS, guess)
    with pytest.raises(JoseError):
        decode(token, key, [alg])
    with pytest.raises((TypeError, JoseError)):
        jwt.encode(CLAIMS, key, alg=alg)


@pytest.mark.parametrize(
    "key",
    [b"", bytearray(), {"kty": "oct", "k": ""}],
    ids=["bytes", "bytearray", "oct-jwk"],
)
def test_empty_secret_refused(key: object) -> None:
    token = hs_token({"alg": "HS256"}, CLAIMS, b"")
    with pytest.raises(JoseError):
        decode(token, key, ["HS256"])
    with pytest.raises(JoseError):
        jwt.encode(CLAIMS, key, alg="HS256")


def test_secret_never_verifies_an_asymmetric_alg(rsa_key: rsa.RSAPrivateKey) -> None:
    header = b64json({"alg": "RS256"})
    payload = b64json(CLAIMS)
    signature = rsa_key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{header}.{payload}.{b64u(signature)}"
    assert decode(token, rsa_key.public_key(), ["RS256"])["sub"] == "u_123"
    with pytest.raises(JoseError):
        decode(token, SECRET, ["RS256"])


# -- a JWK's `alg` is honoured --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_alg", "token_alg", "ok"),
    [
        (None, "HS256", True),
        ("HS256", "HS256", True),
        ("HS512", "HS256", False),
        ("HS256", "HS512", False),
        ("PS256", "RS256", False),
        ("RS256", "RS256", True),
    ],
)
def test_jwk_alg_honoured(
    key_alg: str | None, token_alg: str, ok: bool, rsa_key: rsa.RSAPrivateKey
) -> None:
    if token_alg.startswith("HS"):
        key: jwk.JWK = jwk.JWK.from_secret(SECRET * 2, alg=key_alg)
        token = hs_token({"alg": token_alg}, CLAIMS, SECRET * 2)
    else:
        key = jwk.JWK.from_key(rsa_key.public_key(), alg=key_alg)
        header, payload = b64json({"alg": token_alg}), b64json(CLAIMS)
        sig = rsa_key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        token = f"{header}.{payload}.{b64u(sig)}"
    for keys in (key, jwk.JWKSet([key])):
        if ok:
            assert decode(token, keys, [token_alg])["sub"] == "u_123"
        else:
            with pytest.raises(JoseError):
                decode(token, keys, [token_alg])


# -- minimum key sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize(("bits", "ok"), [(1024, False), (2040, False), (2048, True)])
def test_rsa_minimum_2048_bits(bits: int, ok: bool, rsa_key: rsa.RSAPrivateKey) -> None:
    private = rsa_key if bits == 2048 else rsa.generate_private_key(65537, bits)
    header, payload = b64json({"alg": "RS256"}), b64json(CLAIMS)
    sig = private.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{header}.{payload}.{b64u(sig)}"
    public_dict = {
        "kty": "RSA",
        "n": b64u(private.public_key().public_numbers().n.to_bytes((bits + 7) // 8, "big")),
        "e": "AQAB",
    }
    for key in (private.public_key(), public_dict):
        if ok:
            assert decode(token, key, ["RS256"])["sub"] == "u_123"
        else:
            with pytest.raises(JoseError):
                decode(token, key, ["RS256"])
    if not ok:
        with pytest.raises(JoseError):
            jwt.encode(CLAIMS, private, alg="RS256")
        with pytest.raises(ValueError):
            jwk.JWK.generate("RSA", size=bits)


@pytest.mark.parametrize(
    ("alg", "length", "ok"),
    [
        ("HS256", 31, False),
        ("HS256", 32, True),
        ("HS384", 47, False),
        ("HS384", 48, True),
        ("HS512", 63, False),
        ("HS512", 64, True),
    ],
)
def test_hmac_secret_at_least_hash_length(alg: str, length: int, ok: bool) -> None:
    secret = bytes(range(1, length + 1))
    token = hs_token({"alg": alg}, CLAIMS, secret)
    if ok:
        assert decode(token, secret, [alg])["sub"] == "u_123"
        assert decode(jwt.encode(CLAIMS, secret, alg=alg), secret, [alg])["sub"] == "u_123"
    else:
        with pytest.raises(InvalidKey):
            decode(token, secret, [alg])
        with pytest.raises(InvalidKey):
            jwt.encode(CLAIMS, secret, alg=alg)


def test_legacy_short_secret_opt_in_verifies_but_never_signs() -> None:
    short = b"legacy-16-bytes!"
    legacy = jwk.JWK.from_secret(short, legacy_short_secret=True)
    token = hs_token({"alg": "HS256"}, CLAIMS, short)
    assert decode(token, legacy, ["HS256"])["sub"] == "u_123"
    assert jws.verify(token, legacy, algorithms=["HS256"])
    with pytest.raises(InvalidKey):
        jwt.encode(CLAIMS, legacy, alg="HS256")
    with pytest.raises(InvalidKey):
        jws.sign(b"payload", legacy, alg="HS256")
    with pytest.raises(InvalidKey):
        decode(token, short, ["HS256"])  # without the opt-in


# -- ECDSA: raw r||s only, r and s in [1, n-1] ----------------------------------------------------


def _es256_variant(variant: str, r: int, s: int, der: bytes) -> bytes:
    size = 32
    table = {
        "valid": (r, s),
        "r=0": (0, s),
        "s=0": (r, 0),
        "r=s=0": (0, 0),
        "r=n": (P256_N, s),
        "s=n": (r, P256_N),
        "r=n+r": (P256_N + r, s) if P256_N + r < 2**256 else (2**256 - 1, s),
        "s=n+s": (r, P256_N + s) if P256_N + s < 2**256 else (r, 2**256 - 1),
        "r=2^256-1": (2**256 - 1, s),
    }
    if variant == "der":
        return der
    if variant == "short":
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")[:-1]
    if variant == "long":
        return r.to_bytes(size, "big") + s.to_bytes(size, "big") + b"\x00"
    if variant == "empty":
        return b""
    rr, ss = table[variant]
    return rr.to_bytes(size, "big") + ss.to_bytes(size, "big")


@pytest.mark.parametrize(
    ("variant", "ok"),
    [
        ("valid", True),
        ("der", False),
        ("r=0", False),
        ("s=0", False),
        ("r=s=0", False),
        ("r=n", False),
        ("s=n", False),
        ("r=n+r", False),
        ("s=n+s", False),
        ("r=2^256-1", False),
        ("short", False),
        ("long", False),
        ("empty", False),
    ],
)
def test_ecdsa_signature_raw_and_in_range(
    variant: str, ok: bool, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    header, payload = b64json({"alg": "ES256"}), b64json(CLAIMS)
    signing_input = f"{header}.{payload}".encode()
    der = ec_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    token = f"{header}.{payload}.{b64u(_es256_variant(variant, r, s, der))}"
    if ok:
        assert decode(token, ec_key.public_key(), ["ES256"])["sub"] == "u_123"
    else:
        with pytest.raises(JoseError):
            decode(token, ec_key.public_key(), ["ES256"])


# -- crit -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "ok"),
    [
        ({}, True),
        ({"crit": ["b64"], "b64": True}, True),
        ({"crit": ["exp"], "exp": NOW + 300}, False),  # unknown extension
        ({"crit": []}, False),  # empty list
        ({"crit": ["alg"]}, False),  # registered name
        ({"crit": ["kid"], "kid": "k1"}, False),  # registered name
        ({"crit": ["b64"]}, False),  # named, but absent from the protected header
        ({"crit": ["b64", "b64"], "b64": True}, False),  # listed twice
        ({"crit": "b64", "b64": True}, False),  # not an array
        ({"crit": [7]}, False),  # not a name
        ({"crit": [""]}, False),
        ({"crit": None}, False),
    ],
)
def test_crit_rules(extra: dict[str, Any], ok: bool) -> None:
    token = hs_token({"alg": "HS256", **extra}, CLAIMS, SECRET)
    if ok:
        assert json.loads(jws.verify(token, SECRET, algorithms=["HS256"])) == CLAIMS
    else:
        with pytest.raises(JoseError):
            jws.verify(token, SECRET, algorithms=["HS256"])


def test_crit_in_unprotected_header_refused() -> None:
    payload = b64json(CLAIMS)

    def entry(protected: dict[str, Any]) -> dict[str, Any]:
        header = b64json(protected)
        tag = b64u(hmac.new(SECRET, f"{header}.{payload}".encode(), "sha256").digest())
        return {"protected": header, "signature": tag}

    good = entry({"alg": "HS256", "b64": True, "crit": ["b64"]})
    assert jws.verify_json({**good, "payload": payload}, SECRET, algorithms=["HS256"])
    # The same names, with `crit` moved to the unprotected header: a verifier that reads
    # `crit` from the merged header would accept this.
    hostile = {**entry({"alg": "HS256", "b64": True}), "header": {"crit": ["b64"]}}
    for obj in ({**hostile, "payload": payload}, {"payload": payload, "signatures": [hostile]}):
        with pytest.raises(JoseError):
            jws.verify_json(obj, SECRET, algorithms=["HS256"])


def test_unprotected_header_cannot_override_protected() -> None:
    """Authlib 1.6.4 fix: an unprotected `alg` (or any name) must not shadow the protected one."""
    header = b64json({"alg": "HS256"})
    payload = b64json(CLAIMS)
    tag = b64u(hmac.new(SECRET, f"{header}.{payload}".encode(), "sha256").digest())
    base = {"protected": header, "payload": payload, "signature": tag}
    assert jws.verify_json({**base, "header": {"kid": "k1"}}, SECRET, algorithms=["HS256"])
    for unprotected in ({"alg": "HS512"}, {"alg": "none"}, {"alg": "HS256"}):
        with pytest.raises(JoseError):
            jws.verify_json({**base, "header": unprotected}, SECRET, algorithms=["HS256", "HS512"])


# -- strict base64url -----------------------------------------------------------------------------


def _segment(base: dict[str, Any], rem: int) -> str:
    """Encode `base` plus filler so the text holds both `-` and `_` and leaves `rem` over.

    `?` and `>` encode to `_` and `-` at the right offsets; a decoder that also accepts the
    standard alphabet would read `+` and `/` as the same bytes.
    """
    for n in range(64):
        text = b64json({**base, "f": "?>?>?>" + "x" * n})
        if "-" in text and "_" in text and len(text) % 4 == rem:
            return text
    raise AssertionError("unreachable")  # pragma: no cover


def _signed(header: str, payload: str) -> str:
    """MAC the segments, retrying with a nonce until the signature holds `-` and `_`."""
    for nonce in range(256):
        body = json.loads(b64d(payload))
        text = payload if nonce == 0 else b64json({**body, "n": nonce})
        if len(text) % 4 != len(payload) % 4:
            continue
        token = mac_token(header, text)
        sig = token.rsplit(".", 1)[1]
        if "-" in sig and "_" in sig:
            return token
    raise AssertionError("unreachable")  # pragma: no cover


def _non_canonical(text: str) -> str:
    """Same bytes, different spelling: set pad bits the decoder should insist are zero."""
    rem = len(text) % 4
    idx = B64_ALPHABET.index(text[-1])
    spare = 0b1111 if rem == 2 else 0b11
    other = B64_ALPHABET[idx | spare] if idx & spare != spare else B64_ALPHABET[idx & ~spare]
    assert b64d(text[:-1] + other) == b64d(text)
    return text[:-1] + other


MUTATIONS: dict[str, Callable[[str], str]] = {
    "padding": lambda seg: seg + "=" * (-len(seg) % 4 or 4),
    "plus": lambda seg: seg.replace("-", "+"),
    "slash": lambda seg: seg.replace("_", "/"),
    "space": lambda seg: seg[:4] + " " + seg[4:],
    "newline": lambda seg: seg[:4] + "\n" + seg[4:],
    "tab": lambda seg: seg[:4] + "\t" + seg[4:],
    "trailing-newline": lambda seg: seg + "\n",
    "non-canonical": _non_canonical,
    "rem-1": lambda seg: seg + "A" * ((1 - len(seg)) % 4),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize("segment", [0, 1, 2], ids=["header", "payload", "signature"])
def test_strict_base64url(mutation: str, segment: int) -> None:
    parts = _signed(_segment({"alg": "HS256"}, 2), _segment(CLAIMS, 3)).split(".")
    assert len(parts[2]) % 4 == 3  # a 32-byte MAC leaves three characters: pad bits exist
    assert decode(".".join(parts), SECRET, ["HS256"])["sub"] == "u_123"
    parts[segment] = MUTATIONS[mutation](parts[segment])
    # Re-MAC over the mutated text so only the decoder, not the MAC, can refuse it.
    if segment != 2:
        parts[2] = b64u(hmac.new(SECRET, f"{parts[0]}.{parts[1]}".encode(), "sha256").digest())
    token = ".".join(parts)
    with pytest.raises(JoseError):
        decode(token, SECRET, ["HS256"])
    with pytest.raises(JoseError):
        jws.verify(token, SECRET, algorithms=["HS256"])


# -- keys carried by the token are never used -----------------------------------------------------


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_embedded_keys_never_used(member: str, ec_key: ec.EllipticCurvePrivateKey) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    value: object = {
        "jwk": jwk.JWK.from_key(attacker.public_key()).to_dict(),
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": [
            base64.b64encode(
                attacker.public_key().public_bytes(Enc.DER, Pub.SubjectPublicKeyInfo)
            ).decode()
        ],
    }[member]
    header, payload = b64json({"alg": "ES256", member: value}), b64json(CLAIMS)
    r, s = es256_signature(attacker, f"{header}.{payload}".encode())
    token = f"{header}.{payload}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    server = jwk.JWK.from_key(ec_key.public_key())
    for keys in (server, jwk.JWKSet([server]), jwk.JWKSet([])):
        with pytest.raises(JoseError):
            decode(token, keys, ["ES256"])


# -- strict JSON ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header_json",
    [
        '{"alg":"HS256","x":NaN}',
        '{"alg":"HS256","x":Infinity}',
        '{"alg":"HS256","x":-Infinity}',
        '{"alg":"HS256","alg":"HS256"}',
        '{"alg":"HS256","\\u0061lg":"HS256"}',
        '{"alg":"HS256","kid":"a","kid":"b"}',
        '{"alg":"HS256"} ',
        '{"alg":"HS256"}{}',
        '["alg","HS256"]',
        '{"alg":"HS256",}',
        "{'alg':'HS256'}",
    ],
    ids=[
        "nan",
        "infinity",
        "minus-infinity",
        "duplicate",
        "escaped-duplicate",
        "duplicate-kid",
        "trailing-space",
        "trailing-object",
        "array",
        "trailing-comma",
        "single-quotes",
    ],
)
def test_non_standard_json_header_refused(header_json: str) -> None:
    token = mac_token(b64u(header_json.encode()), b64json(CLAIMS))
    if header_json == '{"alg":"HS256"} ':
        # Insignificant whitespace is legal JSON (RFC 8259 §2): this row is the control.
        assert decode(token, SECRET, ["HS256"])["sub"] == "u_123"
        return
    with pytest.raises(MalformedToken):
        decode(token, SECRET, ["HS256"])
    with pytest.raises(MalformedToken):
        jws.verify(token, SECRET, algorithms=["HS256"])
    with pytest.raises(MalformedToken):
        jwt.unverified_header(token)


@pytest.mark.parametrize(
    "claims_json",
    [
        '{"sub":"a","sub":"b","exp":1800000300}',
        '{"sub":"a","\\u0073ub":"b","exp":1800000300}',
        '{"sub":"a","exp":1800000300,"x":NaN}',
        '{"sub":"a","exp":1800000300,"x":{"y":1,"y":2}}',
        '{"sub":"a","exp":1800000300,"x":[{"y":1,"y":2}]}',
    ],
    ids=["duplicate", "escaped-duplicate", "nan", "nested-duplicate", "nested-in-array"],
)
def test_non_standard_json_claims_refused(claims_json: str) -> None:
    token = mac_token(b64json({"alg": "HS256"}), b64u(claims_json.encode()))
    with pytest.raises(MalformedToken):
        decode(token, SECRET, ["HS256"])


# -- time claims are finite numbers ---------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("{t}", True),
        ("{t}.5", True),
        ("true", False),
        ("false", False),
        ('"{t}"', False),
        ("null", False),
        ("NaN", False),
        ("Infinity", False),
        ("-Infinity", False),
        ("1e400", False),
        ("-1e400", False),
        ("[{t}]", False),
        ('{{"t":{t}}}', False),
    ],
)
def test_time_claims_must_be_finite_numbers(claim: str, raw: str, ok: bool) -> None:
    # {t} is a valid time for the claim: in the future for exp, in the past for nbf and iat.
    value = raw.format(t=NOW + 100 if claim == "exp" else NOW - 100)
    others = {"exp": NOW + 300, "nbf": NOW - 300, "iat": NOW - 300}
    fields = [f'"{name}":{v}' for name, v in others.items() if name != claim]
    text = "{" + ",".join(['"sub":"u_123"', *fields, f'"{claim}":{value}']) + "}"
    token = mac_token(b64json({"alg": "HS256"}), b64u(text.encode()))
    if ok:
        assert decode(token, SECRET, ["HS256"])["sub"] == "u_123"
    else:
        with pytest.raises((InvalidClaims, MalformedToken)):
            decode(token, SECRET, ["HS256"])


@pytest.mark.parametrize("value", [True, "1800000300", float("nan"), float("inf"), [1]], ids=repr)
def test_time_claims_refused_when_encoding(value: object) -> None:
    with pytest.raises((TypeError, ValueError, JoseError)):
        jwt.encode({**CLAIMS, "exp": value}, SECRET, alg="HS256")


# -- bounded input size ---------------------------------------------------------------------------


def _token_of_length(total: int) -> str:
    """A valid HS256 token exactly `total` characters long."""
    for kid in range(4):
        header = b64json({"alg": "HS256", "kid": "k" * kid})
        fixed = len(header) + 2 + 43
        target = total - fixed
        base = len(json.dumps({**CLAIMS, "p": ""}, separators=(",", ":")))
        for pad in range(max(0, target * 3 // 4 - base - 4), target * 3 // 4 - base + 4):
            payload = b64json({**CLAIMS, "p": "x" * pad})
            if len(payload) == target:
                return mac_token(header, payload)
    raise AssertionError(f"no token of length {total}")  # pragma: no cover


@pytest.mark.parametrize(
    ("length", "max_size", "ok"),
    [
        (LIMIT, None, True),
        (LIMIT + 1, None, False),
        (LIMIT + 2, None, False),
        (1000, 1000, True),
        (1001, 1000, False),
        (LIMIT + 1000, LIMIT + 1000, True),
    ],
)
def test_input_size_bounded_and_configurable(length: int, max_size: int | None, ok: bool) -> None:
    token = _token_of_length(length)
    assert len(token) == length
    kwargs: dict[str, Any] = {} if max_size is None else {"max_size": max_size}
    if ok:
        assert decode(token, SECRET, ["HS256"], **kwargs)["sub"] == "u_123"
        assert jws.verify(token, SECRET, algorithms=["HS256"], **kwargs)
        assert jwt.unverified_header(token, **kwargs)["alg"] == "HS256"
    else:
        with pytest.raises(TokenTooLarge):
            decode(token, SECRET, ["HS256"], **kwargs)
        with pytest.raises(TokenTooLarge):
            jws.verify(token, SECRET, algorithms=["HS256"], **kwargs)
        with pytest.raises(TokenTooLarge):
            jwt.unverified_header(token, **kwargs)
        with pytest.raises(TokenTooLarge):
            jws.verify_json(
                json.dumps(
                    dict(zip(("protected", "payload", "signature"), token.split("."), strict=True))
                ),
                SECRET,
                algorithms=["HS256"],
                **kwargs,
            )


# -- PBES2 p2c bounds (JWE) -----------------------------------------------------------------------


def _pbes2_token(p2c: object, plaintext: bytes = b"pbes2 payload") -> str:
    alg = "PBES2-HS256+A128KW"
    p2s = os.urandom(16)
    count = p2c if isinstance(p2c, int) and not isinstance(p2c, bool) and p2c > 0 else 1000
    kek = hashlib.pbkdf2_hmac("sha256", PASSWORD, alg.encode() + b"\x00" + p2s, count, 16)
    cek = os.urandom(16)
    header = {"alg": alg, "enc": "A128GCM", "p2s": b64u(p2s), "p2c": p2c}
    return gcm_jwe(header, cek, plaintext, aes_key_wrap(kek, cek))


@pytest.mark.parametrize(
    ("p2c", "ok"),
    [
        (999, False),
        (1000, True),
        (1_000_000, True),
        (1_000_001, False),
        (0, False),
        (-1000, False),
        ("1000", False),
        (1000.0, False),
        (True, False),
        (None, False),
    ],
    ids=repr,
)
def test_pbes2_count_bounded_on_decrypt(jwe_api: ModuleType, p2c: object, ok: bool) -> None:
    token = _pbes2_token(p2c)
    call = {"algorithms": ["PBES2-HS256+A128KW"], "encryptions": ["A128GCM"]}
    if ok:
        assert jwe_api.decrypt(token, PASSWORD, **call) == b"pbes2 payload"
    else:
        with pytest.raises(JoseError):
            jwe_api.decrypt(token, PASSWORD, **call)


# -- bounded zip output (JWE) ---------------------------------------------------------------------


def _zip_token(key: bytes, plaintext: bytes) -> str:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressed = packer.compress(plaintext) + packer.flush()
    return gcm_jwe({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}, key, compressed, b"")


@pytest.mark.parametrize(
    ("size", "ok"),
    [(1, True), (LIMIT, True), (LIMIT + 1, False), (8 * LIMIT, False)],
)
def test_zip_output_bounded(jwe_api: ModuleType, size: int, ok: bool) -> None:
    key = os.urandom(32)
    token = _zip_token(key, b"a" * size)
    if ok:
        assert jwe_api.decrypt(token, key, algorithms=["dir"], encryptions=["A256GCM"]) == (
            b"a" * size
        )
    else:
        with pytest.raises(JoseError):
            jwe_api.decrypt(token, key, algorithms=["dir"], encryptions=["A256GCM"])


def test_zip_refuses_unknown_algorithm_and_corrupt_data(jwe_api: ModuleType) -> None:
    key = os.urandom(32)
    for header, body in (
        ({"alg": "dir", "enc": "A256GCM", "zip": "GZIP"}, zlib.compress(b"x")),
        ({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}, b"\xff\xfe not deflate"),
        ({"alg": "dir", "enc": "A256GCM", "zip": "def"}, zlib.compress(b"x")[2:-4]),
    ):
        with pytest.raises(JoseError):
            jwe_api.decrypt(
                gcm_jwe(header, key, body, b""), key, algorithms=["dir"], encryptions=["A256GCM"]
            )


# -- ECDH-ES: the ephemeral key is on the recipient's curve ---------------------------------------


def _ecdh_token_with_epk(epk: dict[str, Any]) -> str:
    header = {"alg": "ECDH-ES", "enc": "A128GCM", "epk": epk}
    return gcm_jwe(header, os.urandom(16), b"secret", b"")


def test_ecdh_es_ephemeral_key_must_be_on_curve(jwe_api: ModuleType) -> None:
    recipient = ec.generate_private_key(ec.SECP256R1())
    honest = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    size = 32
    x = honest.x.to_bytes(size, "big")
    off_curve_y = ((honest.y + 1) % (2**256)).to_bytes(size, "big")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    hostile_epks = [
        {"kty": "EC", "crv": "P-256", "x": b64u(x), "y": b64u(off_curve_y)},
        {"kty": "EC", "crv": "P-256", "x": b64u(bytes(size)), "y": b64u(bytes(size))},
        {
            "kty": "EC",
            "crv": "P-384",
            "x": b64u(p384.x.to_bytes(48, "big")),
            "y": b64u(p384.y.to_bytes(48, "big")),
        },
        {"kty": "EC", "crv": "P-256", "x": b64u(x)},
        {"kty": "oct", "k": b64u(SECRET)},
        {"kty": "OKP", "crv": "X25519", "x": b64u(bytes(32))},
    ]
    for epk in hostile_epks:
        with pytest.raises(JoseError):
            jwe_api.decrypt(
                _ecdh_token_with_epk(epk),
                recipient,
                algorithms=["ECDH-ES"],
                encryptions=["A128GCM"],
            )


def test_ecdh_es_x25519_low_order_point_refused(jwe_api: ModuleType) -> None:
    recipient = x25519.X25519PrivateKey.generate()
    low_order = [bytes(32), (1).to_bytes(32, "little")]
    for point in low_order:
        epk = {"kty": "OKP", "crv": "X25519", "x": b64u(point)}
        with pytest.raises(JoseError):
            jwe_api.decrypt(
                _ecdh_token_with_epk(epk),
                recipient,
                algorithms=["ECDH-ES"],
                encryptions=["A128GCM"],
            )


# -- AES-CBC-HMAC: every failure looks the same ---------------------------------------------------


@pytest.mark.parametrize(
    ("enc", "key_size", "tag_size", "digest"),
    [
        ("A128CBC-HS256", 32, 16, "sha256"),
        ("A192CBC-HS384", 48, 24, "sha384"),
        ("A256CBC-HS512", 64, 32, "sha512"),
    ],
)
def test_cbc_hmac_failures_indistinguishable(
    jwe_api: ModuleType, enc: str, key_size: int, tag_size: int, digest: str
) -> None:
    key = os.urandom(key_size)
    mac_key, enc_key = key[: key_size // 2], key[key_size // 2 :]
    protected = b64json({"alg": "dir", "enc": enc})
    iv = os.urandom(16)

    def seal(body: bytes, tag_ok: bool = True) -> str:
        encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(body) + encryptor.finalize()
        aad = protected.encode()
        al = (len(aad) * 8).to_bytes(8, "big")
        tag = hmac.new(mac_key, aad + iv + ciphertext + al, digest).digest()[:tag_size]
        if not tag_ok:
            tag = bytes([tag[0] ^ 1]) + tag[1:]
        return ".".join([protected, "", b64u(iv), b64u(ciphertext), b64u(tag)])

    call = {"algorithms": ["dir"], "encryptions": [enc]}
    assert jwe_api.decrypt(seal(b"fifteen bytes!!\x01"), key, **call) == b"fifteen bytes!!"
    failures = set()
    for token in (
        seal(b"fifteen bytes!!\x01", tag_ok=False),  # tag fails
        seal(b"0123456789abcdef"),  # tag verifies, padding invalid
        seal(b"0123456789abcde\x00"),  # padding byte 0
        seal(b"0123456789abcd\x03\x03"),  # padding inconsistent
        seal(b"0123456789abcdef", tag_ok=False),  # both fail
    ):
        with pytest.raises(JoseError) as caught:
            jwe_api.decrypt(token, key, **call)
        failures.add(f"{type(caught.value).__name__}: {caught.value}")
    assert len(failures) == 1, failures


# -- RSA1_5: decrypt only when named, never encrypt -----------------------------------------------


def test_rsa1_5_only_when_named_and_never_encrypts(
    jwe_api: ModuleType, rsa_key: rsa.RSAPrivateKey
) -> None:
    cek = os.urandom(32)
    token = gcm_jwe(
        {"alg": "RSA1_5", "enc": "A256GCM"},
        cek,
        b"legacy",
        rsa_key.public_key().encrypt(cek, padding.PKCS1v15()),
    )
    assert jwe_api.decrypt(token, rsa_key, algorithms=["RSA1_5"], encryptions=["A256GCM"]) == (
        b"legacy"
    )
    with pytest.raises(JoseError):
        jwe_api.decrypt(
            token, rsa_key, algorithms=["RSA-OAEP", "RSA-OAEP-256"], encryptions=["A256GCM"]
        )
    with pytest.raises((ValueError, JoseError)):
        jwe_api.encrypt(b"legacy", rsa_key.public_key(), alg="RSA1_5", enc="A256GCM")


# -- use and key_ops ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("use", "key_ops", "ok"),
    [
        (None, None, True),
        ("sig", None, True),
        ("enc", None, False),
        (None, ["verify"], True),
        (None, ["sign", "verify"], True),
        (None, ["encrypt", "decrypt"], False),
        (None, ["sign"], False),
        (None, ["wrapKey", "unwrapKey"], False),
    ],
)
def test_use_and_key_ops_honoured_for_verification(
    use: str | None, key_ops: list[str] | None, ok: bool, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    header, payload = b64json({"alg": "ES256"}), b64json(CLAIMS)
    r, s = es256_signature(ec_key, f"{header}.{payload}".encode())
    token = f"{header}.{payload}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    data: dict[str, Any] = jwk.JWK.from_key(ec_key.public_key()).to_dict()
    if use is not None:
        data["use"] = use
    if key_ops is not None:
        data["key_ops"] = key_ops
    key = jwk.JWK.from_dict(data)
    for keys in (key, jwk.JWKSet([key]), data):
        if ok:
            assert decode(token, keys, ["ES256"])["sub"] == "u_123"
        else:
            with pytest.raises(JoseError):
                decode(token, keys, ["ES256"])


def test_signing_key_never_decrypts(jwe_api: ModuleType, rsa_key: rsa.RSAPrivateKey) -> None:
    cek = os.urandom(32)
    wrapped = rsa_key.public_key().encrypt(
        cek, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    )
    token = gcm_jwe({"alg": "RSA-OAEP-256", "enc": "A256GCM"}, cek, b"hello", wrapped)
    data = jwk.JWK.from_key(rsa_key).to_dict(private=True)
    call = {"algorithms": ["RSA-OAEP-256"], "encryptions": ["A256GCM"]}
    assert jwe_api.decrypt(token, jwk.JWK.from_dict(data), **call) == b"hello"
    for restricted in ({**data, "use": "sig"}, {**data, "key_ops": ["sign", "verify"]}):
        with pytest.raises(JoseError):
            jwe_api.decrypt(token, jwk.JWK.from_dict(restricted), **call)
