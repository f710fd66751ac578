"""Regression tests for the published JWT/JOSE CVEs of peer libraries.

Each test names the attack, cites the CVE (or GHSA when no CVE exists) and the library it hit,
builds the hostile token or key by hand, and asserts that Ostiary refuses it through the public
API. The hostile inputs are made with `cryptography`, `hmac` and `zlib` directly, so a test
never depends on Ostiary's own signer to produce the attack.

docs/security.md maps each CVE class to these tests.
"""

from __future__ import annotations

import base64
import datetime
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
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from cryptography.x509.oid import NameOID

from ostiary.jose import JoseError, TokenTooLarge, jwk, jws, jwt

NOW = 1_800_000_000
ISSUER = "https://issuer.example"
CLAIMS: dict[str, Any] = {"sub": "u_123", "iss": ISSUER, "exp": NOW + 300}
SECRET = b"0123456789abcdef0123456789abcdef"  # 32 bytes: long enough for HS256
OVER_LIMIT = 256 * 1024 + 1  # one byte past the documented default input bound
PASSWORD = b"correct horse battery staple, v2"  # a PBES2 password (32 bytes)

Enc = serialization.Encoding
Pub = serialization.PublicFormat


# -- hand-rolled JOSE building blocks (never Ostiary's own code) ----------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64json(obj: object) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def hs_token(header: dict[str, Any], claims: object, secret: bytes, digest: str = "sha256") -> str:
    """A compact JWS whose MAC is computed with `secret` over the usual signing input."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), digest).digest()
    return f"{signing_input}.{b64u(mac)}"


def rs_token(header: dict[str, Any], claims: object, key: rsa.RSAPrivateKey, pss: bool) -> str:
    signing_input = f"{b64json(header)}.{b64json(claims)}".encode("ascii")
    pad: padding.AsymmetricPadding = (
        padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256().digest_size)
        if pss
        else padding.PKCS1v15()
    )
    return f"{signing_input.decode()}.{b64u(key.sign(signing_input, pad, hashes.SHA256()))}"


def es256_token(header: dict[str, Any], claims: object, key: ec.EllipticCurvePrivateKey) -> str:
    signing_input = f"{b64json(header)}.{b64json(claims)}".encode("ascii")
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{b64u(raw)}"


def gcm_jwe(header: dict[str, Any], cek: bytes, plaintext: bytes, encrypted_key: bytes) -> str:
    """A compact JWE with AES-GCM content encryption under `cek` (RFC 7516 §5.1)."""
    protected = b64json(header)
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode("ascii"))
    parts = [protected, b64u(encrypted_key), b64u(iv), b64u(sealed[:-16]), b64u(sealed[-16:])]
    return ".".join(parts)


def cbc_hs256_jwe(header: dict[str, Any], key: bytes, ciphertext: bytes, iv: bytes) -> str:
    """A dir JWE with A128CBC-HS256 (RFC 7518 §5.2.2) around an already-encrypted body."""
    protected = b64json(header)
    aad = protected.encode("ascii")
    al = (len(aad) * 8).to_bytes(8, "big")
    tag = hmac.new(key[:16], aad + iv + ciphertext + al, "sha256").digest()[:16]
    return ".".join([protected, "", b64u(iv), b64u(ciphertext), b64u(tag)])


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE (RFC 1951), as `zip: DEF` requires."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def decode(token: str, key: object, algorithms: list[str], **kwargs: Any) -> dict[str, Any]:
    return jwt.decode(token, key, algorithms=algorithms, now=NOW, **kwargs)


# -- keys -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def jwe_api() -> ModuleType:
    try:
        return importlib.import_module("ostiary.jose.jwe")
    except ImportError:
        pytest.skip("ostiary.jose.jwe has not landed yet: the JWE regression tests need it")


def assert_hs256_refused(secret_bytes: bytes) -> None:
    """A token MACed with bytes that are really a public key must never verify with them."""
    token = hs_token({"alg": "HS256", "typ": "JWT"}, CLAIMS, secret_bytes)
    with pytest.raises(JoseError):
        decode(token, secret_bytes, ["HS256", "RS256", "ES256", "EdDSA"])
    with pytest.raises(JoseError):
        jws.verify(token, secret_bytes, algorithms=["HS256"])


def self_signed_cert(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.example")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


# -- algorithm confusion: a public key used as an HMAC secret -------------------------------------


def test_cve_2015_9235_hs256_with_rsa_public_key_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    """CVE-2015-9235 (jsonwebtoken): HS256 verified with the RSA public key as the secret."""
    pem = rsa_key.public_key().public_bytes(Enc.PEM, Pub.SubjectPublicKeyInfo)
    assert_hs256_refused(pem)
    token = hs_token({"alg": "HS256"}, CLAIMS, pem)
    for key in (rsa_key.public_key(), jwk.JWK.from_pem(pem), jwk.JWK.from_pem(pem).to_dict()):
        with pytest.raises(JoseError):
            decode(token, key, ["RS256", "HS256"])


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_cve_2015_9235_alg_none_refused(alg: str) -> None:
    """CVE-2015-9235 (jsonwebtoken): an unsigned `alg: none` token accepted as verified."""
    token = f"{b64json({'alg': alg, 'typ': 'JWT'})}.{b64json(CLAIMS)}."
    with pytest.raises(JoseError):
        decode(token, SECRET, ["HS256"])
    with pytest.raises(JoseError):
        jws.verify(token, SECRET, algorithms=["HS256"])


def test_cve_2017_11424_hs256_with_pkcs1_rsa_public_pem_refused(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    """CVE-2017-11424 (PyJWT): the `BEGIN RSA PUBLIC KEY` (PKCS#1) PEM slipped past the guard."""
    assert_hs256_refused(rsa_key.public_key().public_bytes(Enc.PEM, Pub.PKCS1))


@pytest.mark.parametrize("kind", ["ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"])
def test_cve_2022_29217_hs256_with_openssh_public_key_refused(
    kind: str,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> None:
    """CVE-2022-29217 (PyJWT): an OpenSSH public key line accepted as an HMAC secret."""
    public = {"ecdsa-sha2-nistp256": ec_key, "ssh-ed25519": ed_key, "ssh-rsa": rsa_key}[kind]
    line = public.public_key().public_bytes(Enc.OpenSSH, Pub.OpenSSH)
    assert line.startswith(kind.encode())
    assert_hs256_refused(line)


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()], ids=["nistp384", "nistp521"])
def test_cve_2024_33663_hs256_with_openssh_ecdsa_key_refused(curve: ec.EllipticCurve) -> None:
    """CVE-2024-33663 (python-jose): OpenSSH ECDSA public keys used as HS256 secrets."""
    line = ec.generate_private_key(curve).public_key().public_bytes(Enc.OpenSSH, Pub.OpenSSH)
    assert_hs256_refused(line)


@pytest.mark.parametrize("kind", ["EC", "OKP", "RSA"])
def test_cve_2024_37568_hs256_with_asymmetric_jwk_refused(
    kind: str,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> None:
    """CVE-2024-37568 (Authlib, joserfc): HMAC verification with any asymmetric public key."""
    private = {"EC": ec_key, "OKP": ed_key, "RSA": rsa_key}[kind]
    key = jwk.JWK.from_key(private.public_key())
    der = private.public_key().public_bytes(Enc.DER, Pub.SubjectPublicKeyInfo)
    token = hs_token({"alg": "HS256"}, CLAIMS, der)
    for as_given in (key, key.to_dict(), private.public_key(), jwk.JWKSet([key])):
        with pytest.raises(JoseError):
            decode(token, as_given, ["HS256", "RS256", "ES256", "EdDSA"])


def test_cve_2022_23541_hs256_with_rsa_key_from_key_set_refused(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    """CVE-2022-23541 (jsonwebtoken): a key looked up by kid, then used as an HMAC secret."""
    public = jwk.JWK.from_key(rsa_key.public_key(), kid="k1")
    keyset = jwk.JWKSet([public])
    for secret in (
        public.to_pem(),
        public.to_der(),
        public.to_json().encode(),
        b64d(public.to_dict()["n"]),
    ):
        token = hs_token({"alg": "HS256", "kid": "k1"}, CLAIMS, secret)
        with pytest.raises(JoseError):
            decode(token, keyset, ["RS256", "HS256"])
        with pytest.raises(JoseError):
            decode(token, keyset.to_dict(), ["RS256", "HS256"])


def test_cve_2026_48526_hs256_with_public_jwk_json_bytes_refused(
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    """CVE-2026-48526 (PyJWT): a public JWK JSON document accepted as an HMAC secret."""
    public = jwk.JWK.from_key(ec_key.public_key())
    assert_hs256_refused(public.to_json().encode())
    assert_hs256_refused(json.dumps(public.to_dict(), indent=2).encode())


@pytest.mark.parametrize(
    "shape",
    ["jwk-set", "jwk-set-pretty", "nested-container", "escaped-member-name"],
)
def test_cve_2026_102273_hs256_with_public_jwk_container_refused(
    shape: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    """CVE-2026-102273 (PyJWT): a JWK Set or other container of a public JWK used as a secret."""
    public = jwk.JWK.from_key(rsa_key.public_key()).to_dict()
    text = {
        "jwk-set": json.dumps({"keys": [public]}),
        "jwk-set-pretty": json.dumps({"keys": [public]}, indent=4),
        "nested-container": json.dumps({"jwks": {"keys": [public]}}),
        # JSON lets a member name be spelled with escapes: "kty" without the bytes `"kty"`.
        "escaped-member-name": json.dumps(public).replace('"kty"', '"\\u006bty"'),
    }[shape]
    assert json.loads(text)
    assert_hs256_refused(text.encode())


def test_cve_2026_102272_hs256_with_bom_prefixed_jwk_refused(
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    """CVE-2026-102272 (PyJWT): a UTF-8 BOM before a public JWK hid it from the key guard."""
    text = jwk.JWK.from_key(ec_key.public_key()).to_json().encode()
    assert_hs256_refused(b"\xef\xbb\xbf" + text)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda pem: pem.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda pem: b"\n\n  \t" + pem, id="leading-whitespace"),
        pytest.param(lambda pem: pem + b"\n\n\n", id="trailing-newlines"),
        pytest.param(lambda pem: pem.replace(b"\n", b" \n"), id="trailing-spaces"),
        pytest.param(lambda pem: pem.replace(b"\n", b"\r"), id="cr-only"),
    ],
)
def test_cve_2026_102268_hs256_with_whitespace_mutated_pem_refused(
    mutate: Callable[[bytes], bytes], rsa_key: rsa.RSAPrivateKey
) -> None:
    """CVE-2026-102268 (PyJWT): whitespace or line-ending changes let a PEM skip the guard."""
    pem = rsa_key.public_key().public_bytes(Enc.PEM, Pub.SubjectPublicKeyInfo)
    assert_hs256_refused(mutate(pem))


def _der_public_keys(
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> dict[str, bytes]:
    return {
        "rsa-spki": rsa_key.public_key().public_bytes(Enc.DER, Pub.SubjectPublicKeyInfo),
        "rsa-pkcs1": rsa_key.public_key().public_bytes(Enc.DER, Pub.PKCS1),
        "ec-spki": ec_key.public_key().public_bytes(Enc.DER, Pub.SubjectPublicKeyInfo),
        "ed25519-spki": ed_key.public_key().public_bytes(Enc.DER, Pub.SubjectPublicKeyInfo),
        "x509-certificate": self_signed_cert(rsa_key).public_bytes(Enc.DER),
    }


DER_KINDS = ["rsa-spki", "rsa-pkcs1", "ec-spki", "ed25519-spki", "x509-certificate"]


@pytest.mark.parametrize("kind", DER_KINDS)
def test_cve_2026_102271_hs256_with_der_public_key_refused(
    kind: str,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> None:
    """CVE-2026-102271 (PyJWT): a DER public key has no text marker and became the secret."""
    assert_hs256_refused(_der_public_keys(rsa_key, ec_key, ed_key)[kind])


@pytest.mark.parametrize("kind", DER_KINDS)
def test_cve_2026_85394_hs256_with_der_public_key_refused(
    kind: str,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> None:
    """CVE-2026-85394 (python-jose): DER public keys bypassed the CVE-2024-33663 fix."""
    der = _der_public_keys(rsa_key, ec_key, ed_key)[kind]
    token = hs_token({"alg": "HS256"}, CLAIMS, der)
    with pytest.raises(JoseError):
        jwk.JWK.from_secret(der)
    with pytest.raises(JoseError):
        decode(token, der, ["HS256"])


def test_cve_2026_102270_repeated_pem_markers_refused_as_secret() -> None:
    """CVE-2026-102270 (PyJWT): many BEGIN markers and no END drove a backtracking regex.

    The input is refused as a key-like secret; a linear check finishes at once.
    """
    hostile = b"-----BEGIN CERTIFICATE-----\n" * 20_000
    with pytest.raises(JoseError):
        jwk.JWK.from_secret(hostile)
    assert_hs256_refused(hostile)


def test_cve_2026_48523_signature_algorithm_is_the_header_algorithm(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    """CVE-2026-48523 (PyJWT): the header alg was allow-listed, but the key's alg verified.

    The token claims RS256 (allowed) but is signed with PS256 (not allowed) by a registered
    key whose JWK says `alg: PS256`. It must not verify.
    """
    key = jwk.JWK.from_key(rsa_key.public_key(), alg="PS256", kid="k1")
    token = rs_token({"alg": "RS256", "kid": "k1"}, CLAIMS, rsa_key, pss=True)
    for keys in (key, jwk.JWKSet([key])):
        with pytest.raises(JoseError):
            decode(token, keys, ["RS256"])


def test_cve_2022_23539_legacy_key_types_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    """CVE-2022-23539 (jsonwebtoken): legacy key types (DSA, short RSA) verified RS256."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the attack
    token = rs_token({"alg": "RS256"}, CLAIMS, weak, pss=False)
    with pytest.raises(JoseError):
        decode(token, weak.public_key(), ["RS256"])
    with pytest.raises(JoseError):
        decode(token, jwk.JWK.from_key(weak.public_key()).to_dict(), ["RS256"])
    dsa_key = dsa.generate_private_key(key_size=1024)  # noqa: S505 - the attack
    dsa_pem = dsa_key.public_key().public_bytes(Enc.PEM, Pub.SubjectPublicKeyInfo)
    with pytest.raises((TypeError, JoseError)):
        decode(token, dsa_key.public_key(), ["RS256"])
    with pytest.raises(JoseError):
        jwk.JWK.from_pem(dsa_pem)
    # The control: the same construction with an acceptable key verifies.
    good = rs_token({"alg": "RS256"}, CLAIMS, rsa_key, pss=False)
    assert decode(good, rsa_key.public_key(), ["RS256"])["sub"] == "u_123"


def test_cve_2022_23529_key_object_is_never_stringified() -> None:
    """CVE-2022-23529 (jsonwebtoken): an object key was turned into a secret by its toString."""

    class Poisoned:
        def __str__(self) -> str:
            return "attacker-chosen-secret-0123456789abcdef"

        def __bytes__(self) -> bytes:
            return b"attacker-chosen-secret-0123456789abcdef"

    token = hs_token({"alg": "HS256"}, CLAIMS, b"attacker-chosen-secret-0123456789abcdef")
    with pytest.raises((TypeError, JoseError)):
        decode(token, Poisoned(), ["HS256"])


# -- empty and short secrets ----------------------------------------------------------------------


def test_cve_2026_49852_empty_hmac_key_refused() -> None:
    """CVE-2026-49852 (joserfc): an empty HMAC key verified (and signed) tokens."""
    token = hs_token({"alg": "HS256"}, CLAIMS, b"")
    with pytest.raises(JoseError):
        decode(token, b"", ["HS256"])
    with pytest.raises(JoseError):
        jwt.encode(CLAIMS, b"", alg="HS256")


def test_cve_2026_120459_oct_jwk_with_empty_k_refused() -> None:
    """CVE-2026-120459 (python-jose): an oct JWK with empty `k` forged any HS256 token."""
    token = hs_token({"alg": "HS256"}, CLAIMS, b"")
    for key in ({"kty": "oct", "k": ""}, {"keys": [{"kty": "oct", "k": ""}]}):
        with pytest.raises(JoseError):
            decode(token, key, ["HS256"])


def test_cve_2026_102266_empty_oct_jwk_import_refused() -> None:
    """CVE-2026-102266 (PyJWT): PyJWK accepted an empty HMAC key that PyJWT itself refused."""
    with pytest.raises(JoseError):
        jwk.JWK.from_dict({"kty": "oct", "k": ""})
    with pytest.raises(JoseError):
        jwk.JWK.from_json('{"kty":"oct","k":""}')
    with pytest.raises(JoseError):
        jwk.JWKSet.from_dict({"keys": [{"kty": "oct", "k": "", "kid": "a"}]})


def test_cve_2025_45768_short_hmac_secret_refused() -> None:
    """CVE-2025-45768 (PyJWT, disputed): HMAC secrets shorter than the hash were accepted."""
    short = b"sixteen-byte-key"
    with pytest.raises(JoseError):
        jwt.encode(CLAIMS, short, alg="HS256")
    with pytest.raises(JoseError):
        decode(hs_token({"alg": "HS256"}, CLAIMS, short), short, ["HS256"])


# -- crit -----------------------------------------------------------------------------------------


def test_cve_2026_32597_unknown_crit_extension_refused() -> None:
    """CVE-2026-32597 (PyJWT): a token with an unknown critical extension was accepted."""
    token = hs_token({"alg": "HS256", "crit": ["x-policy"], "x-policy": "strict"}, CLAIMS, SECRET)
    with pytest.raises(JoseError):
        decode(token, SECRET, ["HS256"])
    # The control: the same token without `crit` verifies, so `crit` is what is refused.
    plain = hs_token({"alg": "HS256", "x-policy": "strict"}, CLAIMS, SECRET)
    assert decode(plain, SECRET, ["HS256"])["sub"] == "u_123"


def test_cve_2025_59420_unknown_crit_and_unprotected_crit_refused() -> None:
    """CVE-2025-59420 (Authlib): unknown `crit` names accepted; `crit` read from unprotected."""
    protected = {"alg": "HS256", "crit": ["bork"], "bork": True}
    token = hs_token(protected, CLAIMS, SECRET)
    with pytest.raises(JoseError):
        jws.verify(token, SECRET, algorithms=["HS256"])
    header = b64json({"alg": "HS256", "bork": True})
    payload = b64json(CLAIMS)
    mac = hmac.new(SECRET, f"{header}.{payload}".encode(), "sha256").digest()
    flattened = {
        "protected": header,
        "header": {"crit": ["bork"]},
        "payload": payload,
        "signature": b64u(mac),
    }
    with pytest.raises(JoseError):
        jws.verify_json(flattened, SECRET, algorithms=["HS256"])


# -- keys carried by the token --------------------------------------------------------------------


def test_cve_2026_27962_embedded_jwk_header_not_trusted(
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    """CVE-2026-27962 (Authlib): the token's own `jwk` header verified the token."""
    attacker = ec.generate_private_key(ec.SECP256R1())
    embedded = jwk.JWK.from_key(attacker.public_key()).to_dict()
    token = es256_token({"alg": "ES256", "jwk": embedded}, CLAIMS, attacker)
    server = jwk.JWK.from_key(ec_key.public_key(), kid="server")
    for keys in (server, jwk.JWKSet([server])):
        with pytest.raises(JoseError):
            decode(token, keys, ["ES256"])
        with pytest.raises(JoseError):
            jws.verify(token, keys, algorithms=["ES256"])


def test_cve_2026_48522_jku_header_never_fetched(ec_key: ec.EllipticCurvePrivateKey) -> None:
    """CVE-2026-48522 (PyJWT): key URLs (file://, data:) were fetched and trusted.

    Ostiary never fetches: a token naming a `jku`/`x5u` and an unknown kid finds no key.
    """
    attacker = ec.generate_private_key(ec.SECP256R1())
    server = jwk.JWKSet([jwk.JWK.from_key(ec_key.public_key(), kid="server")])
    for header in (
        {"alg": "ES256", "kid": "evil", "jku": "file:///etc/passwd"},
        {"alg": "ES256", "kid": "evil", "x5u": "data:application/json,{}"},
    ):
        token = es256_token(header, CLAIMS, attacker)
        with pytest.raises(JoseError):
            decode(token, server, ["ES256"])


# -- parser confusion and malleability ------------------------------------------------------------


def test_cve_2022_39227_mixed_json_compact_polyglot_refused() -> None:
    """CVE-2022-39227 (python-jwt over jwcrypto): a JSON/compact polyglot forged claims.

    The parser that read claims and the one that checked the signature saw different
    payloads. Here the forged claims ride in a compact-looking prefix of a JSON object that
    carries the real signature.
    """
    good = hs_token({"alg": "HS256", "typ": "JWT"}, CLAIMS, SECRET)
    header, payload, signature = good.split(".")
    forged = b64json({**CLAIMS, "sub": "admin"})
    polyglot = (
        f'{{"  {header}.{forged}.":"","protected":"{header}",'
        f'"payload":"{payload}","signature":"{signature}"}}'
    )
    with pytest.raises(JoseError):
        decode(polyglot, SECRET, ["HS256"])
    with pytest.raises(JoseError):
        jws.verify(polyglot, SECRET, algorithms=["HS256"])
    # Sanity: the genuine token verifies with the same key.
    assert decode(good, SECRET, ["HS256"])["sub"] == "u_123"


@pytest.mark.parametrize("suffix", ["=", "==", "!", "%00", " ", "\n", "*"])
def test_cve_2026_102269_non_canonical_signature_segment_refused(suffix: str) -> None:
    """CVE-2026-102269 (PyJWT): junk appended to the signature decoded to the same bytes."""
    good = hs_token({"alg": "HS256"}, CLAIMS, SECRET)
    with pytest.raises(JoseError):
        decode(good + suffix, SECRET, ["HS256"])


@pytest.mark.parametrize("segment", [0, 1, 2], ids=["header", "payload", "signature"])
def test_ghsa_5jhw_7jv7_qcqq_padded_segments_refused(segment: int) -> None:
    """GHSA-5jhw-7jv7-qcqq (joserfc): `=`-padded segments made the same token twice."""
    parts = hs_token({"alg": "HS256", "typ": "JWT"}, CLAIMS, SECRET).split(".")
    parts[segment] += "=" * (-len(parts[segment]) % 4) or "=="
    with pytest.raises(JoseError):
        decode(".".join(parts), SECRET, ["HS256"])


def test_cve_2026_101918_deeply_nested_json_refused() -> None:
    """CVE-2026-101918 (PyJWT): nested JSON raised RecursionError instead of a JWT error."""
    nested = "[" * 50_000 + "]" * 50_000
    header_segment = b64u(('{"alg":"HS256","x":' + nested + "}").encode())
    token = f"{header_segment}.{b64json(CLAIMS)}.{b64u(b'0' * 32)}"
    with pytest.raises(JoseError):
        jwt.unverified_header(token)
    with pytest.raises(JoseError):
        decode(token, SECRET, ["HS256"])
    # A correctly MACed token whose claims nest deeply: only the claims parser can refuse it.
    nested_claims = b64u(('{"a":' + nested + "}").encode())
    signing_input = f"{b64json({'alg': 'HS256'})}.{nested_claims}"
    mac = hmac.new(SECRET, signing_input.encode(), "sha256").digest()
    with pytest.raises(JoseError):
        decode(f"{signing_input}.{b64u(mac)}", SECRET, ["HS256"])


def test_cve_2026_80179_many_period_delimiters_refused(jwe_api: ModuleType) -> None:
    """CVE-2026-80179 (jwcrypto): a JWE of periods exhausted memory in the splitter."""
    for count in (200_000, OVER_LIMIT):
        token = "." * count
        with pytest.raises(JoseError):
            jws.verify(token, SECRET, algorithms=["HS256"])
        with pytest.raises(JoseError):
            decode(token, SECRET, ["HS256"])
        with pytest.raises(JoseError):
            jwe_api.decrypt(token, SECRET, algorithms=["dir"], encryptions=["A256GCM"])


def test_cve_2022_3102_jwe_not_accepted_where_jws_expected(rsa_key: rsa.RSAPrivateKey) -> None:
    """CVE-2022-3102 (jwcrypto): a JWE made with the *public* key passed as a signed JWT.

    Anyone can encrypt to a public key; a verifier holding the key pair must not treat a
    successful decryption as proof of origin.
    """
    cek = os.urandom(32)
    wrapped = rsa_key.public_key().encrypt(
        cek,
        padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
    )
    claims = json.dumps({**CLAIMS, "sub": "admin"}).encode()
    token = gcm_jwe({"alg": "RSA-OAEP-256", "enc": "A256GCM"}, cek, claims, wrapped)
    pair = jwk.JWK.from_key(rsa_key)
    for keys in (pair, rsa_key, jwk.JWKSet([pair])):
        with pytest.raises(JoseError):
            decode(token, keys, ["RS256"])
        with pytest.raises(JoseError):
            jws.verify(token, keys, algorithms=["RS256"])


def test_cve_2026_102274_malformed_rsa_jwk_in_set_raises_jose_error(
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    """CVE-2026-102274 (PyJWT): a malformed RSA member escaped as a bare ValueError."""
    good = jwk.JWK.from_key(ec_key.public_key(), kid="good").to_dict()
    for bad in (
        {"kty": "RSA", "kid": "bad", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "kid": "bad", "n": "", "e": "AQAB"},
        {"kty": "RSA", "kid": "bad", "n": 12345, "e": "AQAB"},
        {"kty": "RSA", "kid": "bad", "n": "!!!", "e": "AQAB"},
    ):
        with pytest.raises(JoseError):
            jwk.JWKSet.from_dict({"keys": [good, bad]})
        with pytest.raises(JoseError):
            jwk.JWK.from_dict(bad)


def test_cve_2026_102275_okp_jwk_with_mismatched_private_key_refused() -> None:
    """CVE-2026-102275 (PyJWT): an OKP JWK whose `d` does not belong to its `x` was accepted."""
    one = jwk.JWK.generate("OKP", crv="Ed25519").to_dict(private=True)
    two = jwk.JWK.generate("OKP", crv="Ed25519").to_dict(private=True)
    with pytest.raises(JoseError):
        jwk.JWK.from_dict({**one, "d": two["d"]})
    ec_one = jwk.JWK.generate("EC", crv="P-256").to_dict(private=True)
    ec_two = jwk.JWK.generate("EC", crv="P-256").to_dict(private=True)
    with pytest.raises(JoseError):
        jwk.JWK.from_dict({**ec_one, "d": ec_two["d"]})


def test_cve_2016_7036_hmac_signature_compared_in_full() -> None:
    """CVE-2016-7036 (python-jose): HMAC tags compared with a short-circuiting `==`.

    Timing cannot be measured reliably in a unit test; what can be pinned is that only the
    whole, exact tag verifies: not a prefix, not an extension, not a one-bit change.
    """
    header, payload, sig = hs_token({"alg": "HS256"}, CLAIMS, SECRET).split(".")
    tag = b64d(sig)
    flipped = tag[:-1] + bytes([tag[-1] ^ 1])
    for bad in (tag[:16], tag[:-1], tag + b"\x00", flipped, b"", bytes(32)):
        with pytest.raises(JoseError):
            decode(f"{header}.{payload}.{b64u(bad)}", SECRET, ["HS256"])


def test_cve_2026_96760_json_serialization_without_signature_refused() -> None:
    """CVE-2026-96760 (Authlib): a JSON JWS with no signature returned its payload."""
    header = b64json({"alg": "HS256"})
    payload = b64json({**CLAIMS, "sub": "admin"})
    for obj in (
        {"payload": payload, "signatures": []},
        {"payload": payload},
        {"payload": payload, "protected": header},
        {"payload": payload, "protected": header, "signature": ""},
        {"payload": payload, "signatures": [{"protected": header}]},
        {"payload": payload, "signatures": [{"protected": header, "signature": ""}]},
    ):
        with pytest.raises(JoseError):
            jws.verify_json(obj, SECRET, algorithms=["HS256"])
        with pytest.raises(JoseError):
            jws.verify_json(json.dumps(obj), SECRET, algorithms=["HS256"])


def test_cve_2025_61152_alg_none_refused_even_with_key() -> None:
    """CVE-2025-61152 (python-jose, disputed): `alg: none` tokens decoded without a signature."""
    token = f"{b64json({'alg': 'none'})}.{b64json(CLAIMS)}."
    for allowed in (["HS256"], ["HS256", "RS256", "ES256"]):
        with pytest.raises(JoseError):
            decode(token, SECRET, allowed)
    with pytest.raises((ValueError, TypeError, JoseError)):
        decode(token, SECRET, ["none"])


def test_cve_2022_23540_decode_requires_an_allow_list() -> None:
    """CVE-2022-23540 (jsonwebtoken): no `algorithms` meant `none` was allowed by default."""
    token = f"{b64json({'alg': 'none'})}.{b64json(CLAIMS)}."
    decode_any: Any = jwt.decode
    verify_any: Any = jws.verify
    with pytest.raises(TypeError):
        decode_any(token, SECRET)
    with pytest.raises(TypeError):
        verify_any(token, SECRET)
    for empty in ([], (), None, ""):
        with pytest.raises((TypeError, ValueError, JoseError)):
            decode_any(token, SECRET, algorithms=empty, now=NOW)


# -- claims ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_iss", "expected"),
    [("urn:", "urn:expected"), ("abc", "_abc_"), ("", ISSUER), (ISSUER[:-1], ISSUER)],
    ids=["prefix", "substring", "empty", "truncated"],
)
def test_cve_2024_53861_issuer_substring_not_accepted(token_iss: str, expected: str) -> None:
    """CVE-2024-53861 (PyJWT): `iss` compared with `in`, so a substring matched."""
    token = hs_token({"alg": "HS256"}, {**CLAIMS, "iss": token_iss}, SECRET)
    with pytest.raises(JoseError):
        decode(token, SECRET, ["HS256"], issuer=expected)


def test_cve_2026_75509_issuer_list_containing_expected_refused() -> None:
    """CVE-2026-75509 (joserfc): an array `iss` containing the expected issuer matched."""
    token = hs_token({"alg": "HS256"}, {**CLAIMS, "iss": ["https://evil.example", ISSUER]}, SECRET)
    with pytest.raises(JoseError):
        decode(token, SECRET, ["HS256"], issuer=ISSUER)
    token = hs_token({"alg": "HS256"}, {**CLAIMS, "sub": ["someone", "u_123"]}, SECRET)
    with pytest.raises(JoseError):
        decode(token, SECRET, ["HS256"], subject="u_123")


# -- size and resource bounds ---------------------------------------------------------------------


def test_cve_2025_61920_oversized_header_and_signature_refused() -> None:
    """CVE-2025-61920 (Authlib): unbounded header and signature segments were decoded."""
    header, payload, sig = hs_token({"alg": "HS256"}, CLAIMS, SECRET).split(".")
    big_header = b64json({"alg": "HS256", "pad": "x" * OVER_LIMIT})
    for token in (f"{big_header}.{payload}.{sig}", f"{header}.{payload}.{sig}{'A' * OVER_LIMIT}"):
        with pytest.raises(JoseError):
            decode(token, SECRET, ["HS256"])
        with pytest.raises(JoseError):
            jws.verify(token, SECRET, algorithms=["HS256"])
        with pytest.raises(JoseError):
            jwt.unverified_header(token)


def test_cve_2026_119284_oversized_token_refused_before_parsing() -> None:
    """CVE-2026-119284 (joserfc): the token was split (copied) before the size check.

    Memory cannot be measured here; what can be pinned is the order: an oversized input is
    refused as too large, not as malformed, so no parsing ran first.
    """
    for token in ("." * OVER_LIMIT, "A" * OVER_LIMIT, "{" * OVER_LIMIT):
        with pytest.raises(TokenTooLarge):
            jws.verify(token, SECRET, algorithms=["HS256"])
        with pytest.raises(TokenTooLarge):
            decode(token, SECRET, ["HS256"])


def test_cve_2025_65015_size_error_does_not_echo_the_token() -> None:
    """CVE-2025-65015 (joserfc): size errors embedded the raw token, flooding the logs."""
    token = "eyJhbGciOiJIUzI1NiJ9." + "QUFB" * (OVER_LIMIT // 4 + 1) + ".c2ln"
    with pytest.raises(JoseError) as caught:
        decode(token, SECRET, ["HS256"])
    assert len(str(caught.value)) < 200
    assert "QUFBQUFB" not in str(caught.value)


def _unencoded_hs256(payload: bytes, detached: bool) -> str:
    header = b64json({"alg": "HS256", "b64": False, "crit": ["b64"]})
    mac = hmac.new(SECRET, header.encode() + b"." + payload, "sha256").digest()
    return f"{header}.{'' if detached else payload.decode()}.{b64u(mac)}"


def test_cve_2026_48990_oversized_unencoded_payload_refused() -> None:
    """CVE-2026-48990 (joserfc): RFC 7797 `b64: false` payloads skipped the size limit."""
    big = b"x" * OVER_LIMIT
    with pytest.raises(JoseError):
        jws.verify(_unencoded_hs256(big, detached=False), SECRET, algorithms=["HS256"])
    header = b64json({"alg": "HS256", "b64": False, "crit": ["b64"]})
    mac = hmac.new(SECRET, header.encode() + b"." + big, "sha256").digest()
    flattened = {"protected": header, "payload": big.decode(), "signature": b64u(mac)}
    # As JSON text and as an already-parsed object (e.g. from a web framework's body parser).
    for obj in (json.dumps(flattened), flattened):
        with pytest.raises(JoseError):
            jws.verify_json(obj, SECRET, algorithms=["HS256"])
    # The control: a small unencoded payload verifies.
    small = jws.verify(
        _unencoded_hs256(b"$.02", detached=True),
        SECRET,
        algorithms=["HS256"],
        detached_payload=b"$.02",
    )
    assert small == b"$.02"


def test_cve_2026_48525_unused_payload_segment_of_detached_token_refused() -> None:
    """CVE-2026-48525 (PyJWT): a b64=false detached token's payload segment was decoded
    anyway, so an attacker could make the verifier chew on a huge unused segment."""
    detached = _unencoded_hs256(b"$.02", detached=True)
    header, _, sig = detached.split(".")
    for middle in ("A" * OVER_LIMIT, "AAAA", "JC4wMg"):
        with pytest.raises(JoseError):
            jws.verify(
                f"{header}.{middle}.{sig}", SECRET, algorithms=["HS256"], detached_payload=b"$.02"
            )


# -- JWE: PBES2, zip, padding oracles -------------------------------------------------------------


def _pbes2_token(p2c: int, plaintext: bytes = b'{"sub":"u_123"}') -> str:
    """A valid PBES2-HS256+A128KW / A128GCM JWE under PASSWORD with the given count."""
    alg = "PBES2-HS256+A128KW"
    p2s = os.urandom(16)
    kek = hashlib.pbkdf2_hmac("sha256", PASSWORD, alg.encode() + b"\x00" + p2s, p2c, 16)
    cek = os.urandom(16)
    header = {"alg": alg, "enc": "A128GCM", "p2s": b64u(p2s), "p2c": p2c}
    return gcm_jwe(header, cek, plaintext, aes_key_wrap(kek, cek))


@pytest.fixture(scope="module")
def pbes2_over_bound() -> str:
    """A genuine token one iteration past the 1,000,000 default: only the bound refuses it."""
    return _pbes2_token(1_000_001)


def _refuse_pbes2(jwe_api: ModuleType, token: str) -> None:
    with pytest.raises(JoseError):
        jwe_api.decrypt(token, PASSWORD, algorithms=["PBES2-HS256+A128KW"], encryptions=["A128GCM"])


def test_cve_2023_6681_pbes2_huge_p2c_refused(jwe_api: ModuleType, pbes2_over_bound: str) -> None:
    """CVE-2023-6681 (jwcrypto): an attacker-chosen `p2c` made PBKDF2 run for minutes."""
    _refuse_pbes2(jwe_api, pbes2_over_bound)


def test_cve_2022_36083_pbes2_huge_p2c_refused(jwe_api: ModuleType, pbes2_over_bound: str) -> None:
    """CVE-2022-36083 (node jose): unbounded PBES2 count on decrypt."""
    _refuse_pbes2(jwe_api, pbes2_over_bound)


def test_cve_2026_27932_pbes2_unbounded_p2c_refused(
    jwe_api: ModuleType, pbes2_over_bound: str
) -> None:
    """CVE-2026-27932 (joserfc): `p2c` read from the header with no bound."""
    _refuse_pbes2(jwe_api, pbes2_over_bound)
    # The control: the same construction inside the bound decrypts.
    plain = jwe_api.decrypt(
        _pbes2_token(1_000), PASSWORD, algorithms=["PBES2-HS256+A128KW"], encryptions=["A128GCM"]
    )
    assert plain == b'{"sub":"u_123"}'


def _zip_bomb(inflated_size: int) -> tuple[bytes, str]:
    """A dir / A256GCM / zip=DEF JWE that inflates to `inflated_size` zero bytes."""
    key = os.urandom(32)
    header = {"alg": "dir", "enc": "A256GCM", "zip": "DEF"}
    token = gcm_jwe(header, key, deflate(bytes(inflated_size)), b"")
    assert len(token) < 256 * 1024  # small enough to pass every input-size check
    return key, token


@pytest.fixture(scope="module")
def zip_bomb() -> tuple[bytes, str]:
    return _zip_bomb(16 * 1024 * 1024)


def _refuse_zip(jwe_api: ModuleType, key: bytes, token: str) -> None:
    with pytest.raises(JoseError):
        jwe_api.decrypt(token, key, algorithms=["dir"], encryptions=["A256GCM"])


def test_cve_2024_33664_jwe_zip_bomb_refused(
    jwe_api: ModuleType, zip_bomb: tuple[bytes, str]
) -> None:
    """CVE-2024-33664 (python-jose): a small JWE inflated without limit on decrypt."""
    _refuse_zip(jwe_api, *zip_bomb)


def test_cve_2024_29370_jwe_zip_bomb_refused(
    jwe_api: ModuleType, zip_bomb: tuple[bytes, str]
) -> None:
    """CVE-2024-29370 (python-jose): `jwe.decrypt` of a high-compression-ratio token."""
    _refuse_zip(jwe_api, *zip_bomb)


def test_cve_2024_28102_jwe_zip_bomb_refused(
    jwe_api: ModuleType, zip_bomb: tuple[bytes, str]
) -> None:
    """CVE-2024-28102 (jwcrypto): JWT bomb through `zip: DEF`."""
    _refuse_zip(jwe_api, *zip_bomb)


def test_cve_2026_39373_inflated_size_bounded_not_just_input(jwe_api: ModuleType) -> None:
    """CVE-2026-39373 (jwcrypto): the input was bounded but the inflated output was not."""
    key, token = _zip_bomb(1024 * 1024)
    _refuse_zip(jwe_api, key, token)


def test_cve_2025_62706_jwe_zip_bomb_refused(
    jwe_api: ModuleType, zip_bomb: tuple[bytes, str]
) -> None:
    """CVE-2025-62706 (Authlib): no size limit on `zip: DEF` decompression."""
    _refuse_zip(jwe_api, *zip_bomb)


def test_cve_2024_28176_jwe_zip_bomb_refused(
    jwe_api: ModuleType, zip_bomb: tuple[bytes, str]
) -> None:
    """CVE-2024-28176 (node jose): resource exhaustion via compressed JWE plaintext."""
    _refuse_zip(jwe_api, *zip_bomb)


def _decrypt_failure(jwe_api: ModuleType, token: str, key: object, alg: str, enc: str) -> str:
    with pytest.raises(JoseError) as caught:
        jwe_api.decrypt(token, key, algorithms=[alg], encryptions=[enc])
    return f"{type(caught.value).__name__}: {caught.value}"


def _rsa1_5_token(rsa_key: rsa.RSAPrivateKey) -> str:
    cek = os.urandom(32)
    encrypted_key = rsa_key.public_key().encrypt(cek, padding.PKCS1v15())
    return gcm_jwe({"alg": "RSA1_5", "enc": "A256GCM"}, cek, b'{"sub":"u_123"}', encrypted_key)


def test_cve_2016_6298_rsa1_5_padding_failure_indistinguishable(
    jwe_api: ModuleType, rsa_key: rsa.RSAPrivateKey
) -> None:
    """CVE-2016-6298 (jwcrypto): RSA1_5 unwrap errors were a Bleichenbacher (MMA) oracle.

    A bad PKCS#1 padding, a wrong CEK and a bad tag must all fail the same way.
    """
    good = _rsa1_5_token(rsa_key)
    assert jwe_api.decrypt(good, rsa_key, algorithms=["RSA1_5"], encryptions=["A256GCM"])
    header, ek, iv, ct, tag = good.split(".")
    bad_padding = ".".join([header, b64u(os.urandom(256)), iv, ct, tag])
    other_cek = _rsa1_5_token(rsa_key).split(".")[1]
    wrong_cek = ".".join([header, other_cek, iv, ct, tag])
    raw_tag = b64d(tag)
    bad_tag = ".".join([header, ek, iv, ct, b64u(raw_tag[:-1] + bytes([raw_tag[-1] ^ 1]))])
    outcomes = {
        _decrypt_failure(jwe_api, token, rsa_key, "RSA1_5", "A256GCM")
        for token in (bad_padding, wrong_cek, bad_tag)
    }
    assert len(outcomes) == 1, outcomes


def test_cve_2026_28490_rsa1_5_wrong_length_cek_indistinguishable(
    jwe_api: ModuleType, rsa_key: rsa.RSAPrivateKey
) -> None:
    """CVE-2026-28490 (Authlib): an unwrapped CEK of the wrong length raised its own error."""
    header = b64json({"alg": "RSA1_5", "enc": "A256GCM"})
    iv, body, tag = b64u(os.urandom(12)), b64u(os.urandom(15)), b64u(os.urandom(16))
    outcomes = set()
    for cek in (os.urandom(16), os.urandom(31), os.urandom(33), b"", os.urandom(32)):
        ek = b64u(rsa_key.public_key().encrypt(cek, padding.PKCS1v15()))
        token = ".".join([header, ek, iv, body, tag])
        outcomes.add(_decrypt_failure(jwe_api, token, rsa_key, "RSA1_5", "A256GCM"))
    assert len(outcomes) == 1, outcomes


def test_cve_2021_29443_cbc_hmac_padding_failure_indistinguishable(jwe_api: ModuleType) -> None:
    """CVE-2021-29443 (node jose): AES-CBC-HMAC padding errors were observable (an oracle)."""
    key = os.urandom(32)
    iv = os.urandom(16)
    header = {"alg": "dir", "enc": "A128CBC-HS256"}

    def encrypt_raw(block_aligned: bytes) -> bytes:
        encryptor = Cipher(algorithms.AES(key[16:]), modes.CBC(iv)).encryptor()
        return encryptor.update(block_aligned) + encryptor.finalize()

    good_body = encrypt_raw(b'{"sub":"u_123"}\x01')  # 16 bytes, valid PKCS#7 padding
    good = cbc_hs256_jwe(header, key, good_body, iv)
    assert jwe_api.decrypt(good, key, algorithms=["dir"], encryptions=["A128CBC-HS256"])
    # A correctly MACed body whose padding is invalid: only the unpadding step can fail.
    bad_padding = cbc_hs256_jwe(header, key, encrypt_raw(b"0123456789abcdef"), iv)
    protected, ek, iv_text, body, tag = good.split(".")
    raw_tag = b64d(tag)
    bad_tag = ".".join(
        [protected, ek, iv_text, body, b64u(raw_tag[:-1] + bytes([raw_tag[-1] ^ 1]))]
    )
    flipped = bytearray(b64d(body))
    flipped[-1] ^= 0x55
    bad_both = ".".join([protected, ek, iv_text, b64u(bytes(flipped)), tag])
    outcomes = {
        _decrypt_failure(jwe_api, token, key, "dir", "A128CBC-HS256")
        for token in (bad_padding, bad_tag, bad_both)
    }
    assert len(outcomes) == 1, outcomes
