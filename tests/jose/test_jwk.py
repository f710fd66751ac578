"""JWK and JWK Set: generation, import and export, thumbprints, validation, key selection."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from keys import ASYMMETRIC_KEY_IDS, KEY_SPECS, key_for, key_of, with_members

from ostiary.jose import (
    BadSignature,
    InvalidKey,
    JoseError,
    KeyNotFound,
    jws,
    jwt,
)
from ostiary.jose._b64 import b64decode, b64encode
from ostiary.jose.jwk import JWK, THUMBPRINT_URI_PREFIX, JWKSet, generate

NOW = 1_800_000_000
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_KEY = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FD"
        "W2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vM"
        "QFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# -- generate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kty", "args", "crv", "bits"),
    [
        pytest.param("RSA", {}, None, 2048, id="RSA-default"),
        pytest.param("RSA", {"size": 3072}, None, 3072, id="RSA-3072"),
        pytest.param("EC", {}, "P-256", 256, id="EC-default"),
        pytest.param("EC", {"crv": "P-384"}, "P-384", 384, id="EC-P-384"),
        pytest.param("EC", {"crv": "P-521"}, "P-521", 521, id="EC-P-521"),
        pytest.param("EC", {"crv": "secp256k1"}, "secp256k1", 256, id="EC-secp256k1"),
        pytest.param("EC", {"alg": "ES384"}, "P-384", 384, id="EC-curve-from-alg"),
        pytest.param("EC", {"alg": "ES256K"}, "secp256k1", 256, id="EC-secp256k1-from-alg"),
        pytest.param("OKP", {}, "Ed25519", 256, id="OKP-default"),
        pytest.param("OKP", {"crv": "Ed448"}, "Ed448", 456, id="OKP-Ed448"),
        pytest.param("OKP", {"crv": "X25519"}, "X25519", 256, id="OKP-X25519"),
        pytest.param("OKP", {"crv": "X448"}, "X448", 448, id="OKP-X448"),
        pytest.param("oct", {}, None, 256, id="oct-default"),
        pytest.param("oct", {"size": 128}, None, 128, id="oct-128"),
        pytest.param("oct", {"alg": "HS512"}, None, 512, id="oct-size-from-alg"),
        pytest.param("oct", {"alg": "A128KW"}, None, 128, id="oct-size-from-kw-alg"),
    ],
)
def test_generate(kty: str, args: dict[str, Any], crv: str | None, bits: int) -> None:
    key = JWK.generate(kty, **args)
    assert key.kty == kty
    assert key.crv == crv
    assert key.key_size == bits
    assert key.is_private
    assert key.is_symmetric == (kty == "oct")
    assert key.alg == args.get("alg")


def test_generate_sets_metadata() -> None:
    key = generate("EC", crv="P-256", kid="2026-11", alg="ES256", use="sig")
    assert (key.kid, key.alg, key.use) == ("2026-11", "ES256", "sig")
    assert key.to_dict()["kid"] == "2026-11"
    ops = JWK.generate("oct", key_ops=["sign", "verify"]).key_ops
    assert ops == frozenset({"sign", "verify"})


def test_generated_keys_are_distinct() -> None:
    assert JWK.generate("oct").secret() != JWK.generate("oct").secret()
    assert JWK.generate("EC").thumbprint() != JWK.generate("EC").thumbprint()


@pytest.mark.parametrize(
    ("kty", "args"),
    [
        pytest.param("RSA", {"size": 1024}, id="RSA-1024"),
        pytest.param("RSA", {"size": 2047}, id="RSA-2047"),
        pytest.param("EC", {"crv": "P-192"}, id="EC-unknown-curve"),
        pytest.param("EC", {"crv": "Ed25519"}, id="EC-with-OKP-curve"),
        pytest.param("OKP", {"crv": "P-256"}, id="OKP-with-EC-curve"),
        pytest.param("oct", {"size": 7}, id="oct-not-bytes"),
        pytest.param("oct", {"size": -8}, id="oct-negative"),
        pytest.param("oct", {"alg": "RS256"}, id="oct-unsized-alg"),
        pytest.param("DSA", {}, id="unknown-kty"),
    ],
)
def test_generate_refuses_bad_arguments(kty: str, args: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        JWK.generate(kty, **args)


# -- JWK dict round trips -----------------------------------------------------------------


@pytest.mark.parametrize("key_id", list(KEY_SPECS))
def test_private_dict_round_trip(key_id: str) -> None:
    key = key_of(key_id)
    data = key.to_dict(private=True)
    again = JWK.from_dict(data)
    assert again == key
    assert again.is_private
    assert again.to_dict(private=True) == data
    assert JWK.from_json(key.to_json(private=True)).to_dict(private=True) == data


@pytest.mark.parametrize("key_id", ASYMMETRIC_KEY_IDS)
def test_public_dict_round_trip(key_id: str) -> None:
    key = key_of(key_id)
    data = key.to_dict()
    assert not PRIVATE_MEMBERS & set(data)
    public = JWK.from_dict(data)
    assert not public.is_private
    assert public == key.public()
    assert public != key
    assert public.thumbprint() == key.thumbprint()
    assert public.to_dict() == data


@pytest.mark.parametrize("key_id", ASYMMETRIC_KEY_IDS)
def test_public_half_is_public(key_id: str) -> None:
    key = with_members(key_of(key_id), kid="k1", use="sig" if "X" not in key_id else "enc")
    public = key.public()
    assert not public.is_private
    assert (public.kid, public.use, public.crv) == (key.kid, key.use, key.crv)
    with pytest.raises(InvalidKey):
        public.private_key()
    with pytest.raises(InvalidKey):
        public.to_dict(private=True)


@pytest.mark.parametrize(
    ("key_id", "members"),
    [
        ("RSA-2048", {"kty", "n", "e"}),
        ("EC-P-256", {"kty", "crv", "x", "y"}),
        ("OKP-Ed25519", {"kty", "crv", "x"}),
        ("OKP-X448", {"kty", "crv", "x"}),
    ],
)
def test_public_export_has_exactly_the_public_members(key_id: str, members: set[str]) -> None:
    assert set(key_of(key_id).to_dict()) == members


@pytest.mark.parametrize(
    ("crv", "size"),
    [("P-256", 32), ("P-384", 48), ("P-521", 66), ("secp256k1", 32)],
)
def test_ec_export_pads_coordinates_to_field_size(crv: str, size: int) -> None:
    # RFC 7518 §6.2.1.2: x, y and d are the full field size even with leading zero bytes.
    for _ in range(8):
        data = JWK.generate("EC", crv=crv).to_dict(private=True)
        assert {len(b64decode(data[m])) for m in ("x", "y", "d")} == {size}


def test_symmetric_key_exports_only_on_request() -> None:
    key = JWK.from_secret(b"s" * 32, kid="h1")
    with pytest.raises(InvalidKey):
        key.to_dict()
    assert key.to_dict(private=True) == {"kty": "oct", "k": b64encode(b"s" * 32), "kid": "h1"}
    with pytest.raises(InvalidKey):
        key.public()
    with pytest.raises(InvalidKey):
        key.public_key()
    with pytest.raises(InvalidKey):
        key.to_pem()


def test_metadata_and_unknown_members_survive_round_trip() -> None:
    data = {
        **key_of("EC-P-256").to_dict(),
        "kid": "k",
        "alg": "ES256",
        "use": "sig",
        "x5t#S256": "abc",
    }
    out = JWK.from_dict(data).to_dict()
    assert out == data


def test_from_dict_does_not_mutate_input() -> None:
    data = key_of("RSA-2048").to_dict(private=True) | {"key_ops": ["sign"]}
    snapshot = {k: (list(v) if isinstance(v, list) else v) for k, v in data.items()}
    JWK.from_dict(data)
    assert data == snapshot


def test_rsa_private_key_without_crt_members_is_completed() -> None:
    full = key_of("RSA-2048").to_dict(private=True)
    bare = {name: full[name] for name in ("kty", "n", "e", "d")}
    key = JWK.from_dict(bare)
    assert key.to_dict(private=True) == full


# -- PEM and DER --------------------------------------------------------------------------


@pytest.mark.parametrize("key_id", ASYMMETRIC_KEY_IDS)
@pytest.mark.parametrize("form", ["pem", "der"])
def test_pem_der_round_trip(key_id: str, form: str) -> None:
    key = key_of(key_id)
    export = key.to_pem if form == "pem" else key.to_der
    load = JWK.from_pem if form == "pem" else JWK.from_der
    private = load(export(private=True))
    public = load(export())
    assert private == key
    assert private.is_private
    assert public == key.public()
    assert not public.is_private
    assert private.crv == key.crv


@pytest.mark.parametrize("key_id", ["RSA-2048", "EC-P-384", "OKP-Ed448", "OKP-X25519"])
@pytest.mark.parametrize("form", ["pem", "der"])
def test_encrypted_private_key_round_trip(key_id: str, form: str) -> None:
    key = key_of(key_id)
    export = key.to_pem if form == "pem" else key.to_der
    load = JWK.from_pem if form == "pem" else JWK.from_der
    data = export(private=True, password=b"correct horse")
    if form == "pem":
        assert b"ENCRYPTED PRIVATE KEY" in data
    assert load(data, password=b"correct horse") == key
    with pytest.raises(InvalidKey):
        load(data, password=b"wrong horse")
    with pytest.raises(InvalidKey):
        load(data)


def test_password_for_unencrypted_pem_refused() -> None:
    with pytest.raises(InvalidKey):
        JWK.from_pem(key_of("EC-P-256").to_pem(private=True), password=b"pw")


def test_pem_accepts_text_and_metadata() -> None:
    pem = key_of("OKP-Ed25519").to_pem().decode("ascii")
    key = JWK.from_pem(pem, kid="k1", alg="EdDSA", use="sig")
    assert (key.kid, key.alg, key.use) == ("k1", "EdDSA", "sig")


@pytest.mark.parametrize(
    ("key_id", "encoding", "fmt", "marker"),
    [
        pytest.param(
            "RSA-2048",
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            b"BEGIN RSA PRIVATE KEY",
            id="pkcs1-private",
        ),
        pytest.param(
            "EC-P-256",
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            b"BEGIN EC PRIVATE KEY",
            id="sec1-private",
        ),
        pytest.param(
            "RSA-2048",
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            b"",
            id="pkcs1-private-der",
        ),
    ],
)
def test_traditional_private_formats(
    key_id: str,
    encoding: serialization.Encoding,
    fmt: serialization.PrivateFormat,
    marker: bytes,
) -> None:
    key = key_of(key_id)
    data = key.private_key().private_bytes(encoding, fmt, serialization.NoEncryption())
    assert marker in data
    load = JWK.from_pem if encoding is serialization.Encoding.PEM else JWK.from_der
    assert load(data) == key


def test_pkcs1_public_pem() -> None:
    key = key_of("RSA-2048")
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    assert b"BEGIN RSA PUBLIC KEY" in pem
    assert JWK.from_pem(pem) == key.public()


def _self_signed_certificate(key: JWK) -> x509.Certificate:
    private = key.private_key()
    assert isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ostiary test")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .sign(private, hashes.SHA256())
    )


@pytest.mark.parametrize("key_id", ["RSA-2048", "EC-P-256"])
def test_certificate_pem_import(key_id: str) -> None:
    key = key_of(key_id)
    cert = _self_signed_certificate(key)
    imported = JWK.from_pem(cert.public_bytes(serialization.Encoding.PEM), kid="cert")
    assert imported == key.public()
    assert not imported.is_private
    assert imported.kid == "cert"
    token = jws.sign(b"p", key, alg="RS256" if key.kty == "RSA" else "ES256")
    assert jws.verify(token, imported, algorithms=["RS256", "ES256"]) == b"p"


def test_small_rsa_pem_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused
    for data in (
        small.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        small.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    ):
        with pytest.raises(InvalidKey):
            JWK.from_pem(data)
    with pytest.raises(InvalidKey):
        JWK.from_key(small)


def test_unsupported_ec_curve_pem_refused() -> None:
    other = ec.generate_private_key(ec.SECP224R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidKey):
        JWK.from_pem(pem)


def test_dsa_pem_and_der_refused_as_invalid_key() -> None:
    # A DSA key is untrusted input of a type the library does not support: InvalidKey, not
    # the TypeError reserved for passing the wrong kind of Python object.
    private = dsa.generate_private_key(2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKey):
        JWK.from_pem(pem)
    with pytest.raises(InvalidKey):
        JWK.from_der(der)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", id="junk"),
        pytest.param(b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n", id="empty-body"),
        pytest.param(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", id="cert"),
        pytest.param(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA", id="openssh"),
        pytest.param("-----BEGIN PUBLIC KEY-----\n\u00e9\n", id="non-ascii-text"),
    ],
)
def test_malformed_pem_refused(data: bytes | str) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_pem(data)


@pytest.mark.parametrize("data", [b"", b"\x30\x00", b"\x30\x03\x02\x01\x01", b"not der"], ids=str)
def test_malformed_der_refused(data: bytes) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_der(data)


def test_from_key_wraps_cryptography_objects() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    key = JWK.from_key(private, kid="k")
    assert key.kty == "OKP" and key.crv == "Ed25519" and key.is_private and key.kid == "k"
    assert not JWK.from_key(private.public_key()).is_private
    with pytest.raises(TypeError):
        JWK.from_key(b"secret")
    with pytest.raises(TypeError):
        JWK.from_key(object())


# -- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", id="pem"),
        pytest.param(b"  -----BEGIN RSA PUBLIC KEY-----\n", id="pem-leading-space"),
        pytest.param(b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user@host", id="ssh-rsa"),
        pytest.param(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", id="ssh-ed25519"),
        pytest.param(b"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAA", id="ssh-ecdsa"),
        pytest.param(b'{"kty":"RSA","n":"0vx7","e":"AQAB"}', id="jwk-json"),
        pytest.param(b"", id="empty"),
    ],
)
def test_key_like_secret_refused(secret: bytes) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_secret(secret)


@pytest.mark.parametrize("key_id", ["RSA-2048", "EC-P-256", "OKP-Ed25519"])
def test_der_public_key_bytes_refused_as_secret(key_id: str) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_secret(key_of(key_id).to_der())
    with pytest.raises(InvalidKey):
        JWK.from_secret(key_of(key_id).to_pem())


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(b"\x30\x1e" + bytes(range(30)), id="short-form-length"),
        pytest.param(b"\x30\x3e" + bytes(range(62)), id="short-form-length-64"),
        pytest.param(b"\x30\x81\x3d" + bytes(range(61)), id="long-form-length"),
    ],
)
def test_random_secret_that_starts_like_der_accepted(secret: bytes) -> None:
    # About one random 32-byte secret in 65,536 opens like a DER SEQUENCE spanning the rest.
    # These bytes are no key (nothing parses them), so refusing them would make secret
    # generation fail at random in production.
    assert JWK.from_secret(secret).secret() == secret
    token = jws.sign(b"p", secret, alg="HS256")
    assert jws.verify(token, secret, algorithms=["HS256"]) == b"p"


def test_from_secret_needs_bytes() -> None:
    with pytest.raises(TypeError):
        JWK.from_secret("text secret")  # type: ignore[arg-type]
    assert JWK.from_secret(bytearray(b"x" * 32)).secret() == b"x" * 32


# -- thumbprints --------------------------------------------------------------------------


def test_thumbprint_rfc7638_example() -> None:
    key = JWK.from_dict(RFC7638_KEY)
    assert key.thumbprint() == RFC7638_THUMBPRINT
    assert key.thumbprint("sha-256") == RFC7638_THUMBPRINT


def test_thumbprint_uri_rfc9278() -> None:
    key = JWK.from_dict(RFC7638_KEY)
    assert THUMBPRINT_URI_PREFIX == "urn:ietf:params:oauth:jwk-thumbprint:"
    assert key.thumbprint_uri() == (
        "urn:ietf:params:oauth:jwk-thumbprint:sha-256:" + RFC7638_THUMBPRINT
    )


@pytest.mark.parametrize(("hash_name", "size"), [("sha-384", 48), ("sha-512", 64)])
def test_thumbprint_other_hashes(hash_name: str, size: int) -> None:
    key = JWK.from_dict(RFC7638_KEY)
    value = key.thumbprint(hash_name)
    assert len(b64decode(value)) == size
    assert key.thumbprint_uri(hash_name) == f"{THUMBPRINT_URI_PREFIX}{hash_name}:{value}"


def test_thumbprint_unknown_hash_refused() -> None:
    with pytest.raises(ValueError):
        JWK.from_dict(RFC7638_KEY).thumbprint("md5")


@pytest.mark.parametrize("key_id", list(KEY_SPECS))
def test_thumbprint_ignores_metadata_and_private_members(key_id: str) -> None:
    key = key_of(key_id)
    decorated = with_members(key, kid="other", alg=None, use="enc" if "X" in key_id else None)
    assert decorated.thumbprint() == key.thumbprint()
    assert key_of(key_id, slot=1).thumbprint() != key.thumbprint()
    if not key.is_symmetric:
        assert key.public().thumbprint() == key.thumbprint()


# -- malformed JWKs -----------------------------------------------------------------------


def _rsa() -> dict[str, Any]:
    return key_of("RSA-2048").to_dict(private=True)


def _rsa_other() -> dict[str, Any]:
    return key_of("RSA-2048", slot=1).to_dict(private=True)


def _ec() -> dict[str, Any]:
    return key_of("EC-P-256").to_dict(private=True)


def _okp() -> dict[str, Any]:
    return key_of("OKP-Ed25519").to_dict(private=True)


def _small_rsa() -> dict[str, Any]:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    nums = small.public_numbers()
    return {"kty": "RSA", "n": b64encode(nums.n.to_bytes(128, "big")), "e": "AQAB"}


def _point_off_curve() -> dict[str, Any]:
    data = key_of("EC-P-256").to_dict()
    y = int.from_bytes(b64decode(data["y"]), "big")
    return data | {"y": b64encode(((y + 1) % 2**256).to_bytes(32, "big"))}


def _without(data: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in names}


UNKNOWN_KTY: list[Any] = [
    pytest.param(lambda: {}, id="no-kty"),
    pytest.param(lambda: {"kty": 1}, id="kty-not-string"),
    pytest.param(lambda: {"kty": "DSA", "y": "AQAB"}, id="kty-unknown"),
    pytest.param(lambda: {"kty": "rsa", **_without(_rsa(), "kty")}, id="kty-wrong-case"),
]

MALFORMED_JWKS: list[Any] = [
    pytest.param(lambda: _ec() | {"kid": 7}, id="kid-not-string"),
    pytest.param(lambda: _ec() | {"alg": ["ES256"]}, id="alg-not-string"),
    pytest.param(lambda: _ec() | {"use": "signing"}, id="use-unknown"),
    pytest.param(lambda: _ec() | {"use": 1}, id="use-not-string"),
    pytest.param(lambda: _ec() | {"key_ops": "sign"}, id="key-ops-not-list"),
    pytest.param(lambda: _ec() | {"key_ops": ["sign", 1]}, id="key-ops-not-strings"),
    pytest.param(lambda: _ec() | {"key_ops": ["sign", "frobnicate"]}, id="key-ops-unknown"),
    pytest.param(lambda: _ec() | {"key_ops": ["sign", "sign"]}, id="key-ops-duplicated"),
    pytest.param(lambda: _ec() | {"use": "sig", "key_ops": ["encrypt"]}, id="use-vs-key-ops"),
    pytest.param(lambda: _ec() | {"use": "enc", "key_ops": ["verify"]}, id="use-enc-key-ops-sig"),
    # RSA
    pytest.param(lambda: _without(_rsa(), "n"), id="rsa-no-n"),
    pytest.param(lambda: _without(_rsa(), "e"), id="rsa-no-e"),
    pytest.param(lambda: _rsa() | {"n": 12345}, id="rsa-n-not-string"),
    pytest.param(lambda: _rsa() | {"n": ""}, id="rsa-n-empty"),
    pytest.param(lambda: _rsa() | {"n": _rsa()["n"] + "="}, id="rsa-n-padded"),
    pytest.param(lambda: _rsa() | {"n": "+" + _rsa()["n"][1:]}, id="rsa-n-plus"),
    pytest.param(lambda: _rsa() | {"e": "AQAB\n"}, id="rsa-e-whitespace"),
    pytest.param(_small_rsa, id="rsa-1024-bits"),
    pytest.param(lambda: _rsa() | {"e": "AQ"}, id="rsa-e-1"),
    pytest.param(
        lambda: _without(_rsa(), "d", "p", "q", "dp", "dq", "qi") | {"e": "AQ"}, id="rsa-public-e-1"
    ),
    pytest.param(lambda: _rsa() | {"e": "AAE"}, id="rsa-e-1-with-zero-byte"),
    pytest.param(lambda: _rsa() | {"e": "AQAA"}, id="rsa-e-even"),
    pytest.param(lambda: _rsa() | {"d": _rsa_other()["d"]}, id="rsa-d-inconsistent"),
    pytest.param(
        lambda: _without(_rsa(), "p", "q", "dp", "dq", "qi") | {"d": _rsa_other()["d"]},
        id="rsa-d-inconsistent-no-crt",
    ),
    pytest.param(lambda: _rsa() | {"p": _rsa_other()["p"]}, id="rsa-p-inconsistent"),
    pytest.param(lambda: _rsa() | {"qi": _rsa()["dp"]}, id="rsa-qi-inconsistent"),
    pytest.param(lambda: _without(_rsa(), "qi"), id="rsa-missing-qi"),
    pytest.param(lambda: _without(_rsa(), "p", "q"), id="rsa-missing-p-q"),
    pytest.param(lambda: _without(_rsa(), "d"), id="rsa-crt-without-d"),
    pytest.param(lambda: _rsa() | {"oth": []}, id="rsa-multi-prime"),
    pytest.param(lambda: _rsa() | {"d": 1}, id="rsa-d-not-string"),
    # EC
    pytest.param(lambda: _ec() | {"crv": "P-192"}, id="ec-crv-unknown"),
    pytest.param(lambda: _ec() | {"crv": "P-384"}, id="ec-crv-wrong"),
    pytest.param(lambda: _without(_ec(), "crv"), id="ec-no-crv"),
    pytest.param(lambda: _without(_ec(), "y"), id="ec-no-y"),
    pytest.param(lambda: _ec() | {"x": b64encode(b64decode(_ec()["x"])[1:])}, id="ec-x-short"),
    pytest.param(lambda: _ec() | {"y": b64encode(b"\x00" + b64decode(_ec()["y"]))}, id="ec-y-long"),
    pytest.param(lambda: _ec() | {"x": _ec()["x"][:-1] + "="}, id="ec-x-bad-base64"),
    pytest.param(_point_off_curve, id="ec-point-off-curve"),
    pytest.param(lambda: _ec() | {"x": "A" * 43, "y": "A" * 43}, id="ec-point-at-zero"),
    pytest.param(lambda: _ec() | {"d": b64encode(b"\x00" * 32)}, id="ec-d-zero"),
    pytest.param(lambda: _ec() | {"d": b64encode(b"\xff" * 32)}, id="ec-d-above-order"),
    pytest.param(lambda: _ec() | {"d": b64encode(b64decode(_ec()["d"])[1:])}, id="ec-d-short"),
    pytest.param(
        lambda: _ec() | {"d": key_of("EC-P-256", slot=1).to_dict(private=True)["d"]},
        id="ec-d-inconsistent",
    ),
    # OKP
    pytest.param(lambda: _okp() | {"crv": "Ed1"}, id="okp-crv-unknown"),
    pytest.param(lambda: _okp() | {"crv": "P-256"}, id="okp-crv-ec"),
    pytest.param(lambda: _okp() | {"crv": "Ed448"}, id="okp-crv-wrong-size"),
    pytest.param(lambda: _okp() | {"y": _okp()["x"]}, id="okp-with-y"),
    pytest.param(lambda: _without(_okp(), "x"), id="okp-no-x"),
    pytest.param(lambda: _okp() | {"x": b64encode(b"\x01" * 31)}, id="okp-x-short"),
    pytest.param(lambda: _okp() | {"d": b64encode(b"\x01" * 33)}, id="okp-d-long"),
    pytest.param(
        lambda: _okp() | {"d": key_of("OKP-Ed25519", slot=1).to_dict(private=True)["d"]},
        id="okp-d-inconsistent",
    ),
    # oct
    pytest.param(lambda: {"kty": "oct"}, id="oct-no-k"),
    pytest.param(lambda: {"kty": "oct", "k": ""}, id="oct-k-empty"),
    pytest.param(lambda: {"kty": "oct", "k": 42}, id="oct-k-not-string"),
    pytest.param(lambda: {"kty": "oct", "k": "c2VjcmV0=="}, id="oct-k-padded"),
    pytest.param(lambda: {"kty": "oct", "k": "a/b+"}, id="oct-k-std-alphabet"),
]


@pytest.mark.parametrize("make", MALFORMED_JWKS)
def test_malformed_jwk_refused(make: Any) -> None:
    data = make()
    with pytest.raises(InvalidKey):
        JWK.from_dict(data)
    with pytest.raises(InvalidKey):
        JWKSet.from_dict({"keys": [data]})


@pytest.mark.parametrize("data", [[], "text", None, 3], ids=["list", "string", "none", "int"])
def test_jwk_that_is_not_an_object_refused(data: Any) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_dict(data)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{", id="truncated"),
        pytest.param("[]", id="array"),
        pytest.param('{"kty":"oct","k":"AAAA","k":"BBBB"}', id="duplicate-member"),
        pytest.param('{"kty":"oct","k":"AAAA","x":NaN}', id="nan"),
        pytest.param(b'{"kty":"oct","k":"\xff"}', id="not-utf8"),
    ],
)
def test_malformed_jwk_json_refused(text: str | bytes) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_json(text)


def test_rsa_modulus_with_leading_zero_imports_canonically() -> None:
    # RFC 7518 §6.3.1.1 forbids the extra zero octet; a lenient import must still produce
    # the canonical thumbprint, or one key would answer to two thumbprints.
    data = key_of("RSA-2048").to_dict()
    padded = data | {"n": b64encode(b"\x00" + b64decode(data["n"]))}
    assert JWK.from_dict(padded).thumbprint() == key_of("RSA-2048").thumbprint()


# -- use and key_ops ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
@pytest.mark.parametrize(
    "members",
    [
        pytest.param({"use": "enc"}, id="use-enc"),
        pytest.param({"key_ops": ["sign"]}, id="key-ops-sign"),
        pytest.param({"key_ops": ["encrypt", "decrypt"]}, id="key-ops-enc"),
        pytest.param({"key_ops": []}, id="key-ops-empty"),
    ],
)
def test_key_whose_use_forbids_verify_never_verifies(alg: str, members: dict[str, Any]) -> None:
    signer = key_for(alg)
    token = jws.sign(b"payload", signer, alg=alg)
    restricted = with_members(signer, **members)
    with pytest.raises(InvalidKey):
        jws.verify(token, restricted, algorithms=[alg])
    with pytest.raises(KeyNotFound):
        jws.verify(token, JWKSet([restricted]), algorithms=[alg])
    jwt_token = jwt.encode({"exp": NOW + 60}, signer, alg=alg)
    with pytest.raises(InvalidKey):
        jwt.decode(jwt_token, restricted, algorithms=[alg], now=NOW)
    with pytest.raises(KeyNotFound):
        jwt.decode(jwt_token, JWKSet([restricted]), algorithms=[alg], now=NOW)
    obj = jws.sign_json(b"payload", [(signer, alg)])
    with pytest.raises(JoseError):
        jws.verify_json(obj, restricted, algorithms=[alg])


@pytest.mark.parametrize(
    "members",
    [
        pytest.param({"use": "enc"}, id="use-enc"),
        pytest.param({"key_ops": ["verify"]}, id="key-ops-verify"),
    ],
)
def test_key_whose_use_forbids_sign_never_signs(members: dict[str, Any]) -> None:
    key = with_members(key_for("ES256"), **members)
    with pytest.raises(InvalidKey):
        jws.sign(b"payload", key, alg="ES256")
    with pytest.raises(InvalidKey):
        jwt.encode({"exp": NOW}, key, alg="ES256")


@pytest.mark.parametrize(
    ("members", "op", "allowed"),
    [
        ({}, "verify", True),
        ({"use": "sig"}, "sign", True),
        ({"use": "sig"}, "unwrapKey", False),
        ({"use": "enc"}, "decrypt", True),
        ({"use": "enc"}, "verify", False),
        ({"key_ops": ["sign", "verify"]}, "verify", True),
        ({"key_ops": ["sign"]}, "verify", False),
        ({"key_ops": ["wrapKey"], "use": "enc"}, "wrapKey", True),
        ({"key_ops": ["wrapKey"], "use": "enc"}, "unwrapKey", False),
    ],
    ids=str,
)
def test_allows(members: dict[str, Any], op: str, allowed: bool) -> None:
    assert with_members(key_for("ES256"), **members).allows(op) is allowed


# -- JWK Set ------------------------------------------------------------------------------


def _public(key_id: str, slot: int = 0, **members: Any) -> dict[str, Any]:
    return key_of(key_id, slot).to_dict() | members


def test_jwks_lookup_by_kid() -> None:
    keys = JWKSet.from_dict(
        {
            "keys": [
                _public("EC-P-256", kid="a"),
                _public("EC-P-256", 1, kid="b"),
                _public("RSA-2048", kid="c"),
            ]
        }
    )
    assert len(keys) == 3
    b = keys.get("b")
    assert b is not None and b == key_of("EC-P-256", 1).public()
    assert keys.get("missing") is None
    assert [k.kid for k in keys.find(kid="c")] == ["c"]
    assert keys.find(kid="missing") == []
    assert [k.kid for k in keys] == ["a", "b", "c"]


def test_jwks_find_by_alg_use_kty() -> None:
    keys = JWKSet.from_dict(
        {
            "keys": [
                _public("EC-P-256", alg="ES256", use="sig"),
                _public("EC-P-384", alg="ES384", use="sig"),
                _public("RSA-2048", use="enc"),
                _public("OKP-Ed25519"),
            ]
        }
    )

    def crvs(found: list[JWK]) -> list[str | None]:
        return [k.crv or k.kty for k in found]

    # A key without alg/use matches any alg/use; one with them matches only its own.
    assert crvs(keys.find(alg="ES256")) == ["P-256", "RSA", "Ed25519"]
    assert crvs(keys.find(use="sig")) == ["P-256", "P-384", "Ed25519"]
    assert crvs(keys.find(use="enc")) == ["RSA", "Ed25519"]
    assert crvs(keys.find(kty="EC")) == ["P-256", "P-384"]
    assert crvs(keys.find(kty="EC", alg="ES384", use="sig")) == ["P-384"]
    assert crvs(keys.find(kty="oct")) == []


def test_jwks_round_trip() -> None:
    data = {"keys": [_public("EC-P-256", kid="a"), _public("OKP-Ed448", kid="b")]}
    assert JWKSet.from_dict(data).to_dict() == data
    private = JWKSet([key_of("EC-P-256"), key_of("RSA-2048")]).to_dict(private=True)
    assert JWKSet.from_dict(private).to_dict(private=True) == private
    text = '{"keys":[' + JWK.from_dict(_public("EC-P-256", kid="a")).to_json() + "]}"
    assert JWKSet.from_json(text).to_dict() == {"keys": [_public("EC-P-256", kid="a")]}


def test_jwks_duplicate_kid_refused() -> None:
    data = {"keys": [_public("EC-P-256", kid="a"), _public("EC-P-256", 1, kid="a")]}
    with pytest.raises(InvalidKey):
        JWKSet.from_dict(data)


def test_jwks_mixing_symmetric_and_asymmetric_refused() -> None:
    data = {"keys": [_public("EC-P-256", kid="a"), {"kty": "oct", "k": b64encode(b"s" * 32)}]}
    with pytest.raises(InvalidKey):
        JWKSet.from_dict(data)


def test_jwks_skips_unknown_key_types_unless_strict() -> None:
    data = {"keys": [{"kty": "AKP", "pub": "AAAA"}, _public("EC-P-256", kid="a"), "junk"]}
    with pytest.raises(InvalidKey):
        JWKSet.from_dict(data)
    data = {"keys": [{"kty": "AKP", "pub": "AAAA"}, _public("EC-P-256", kid="a")]}
    assert [k.kid for k in JWKSet.from_dict(data)] == ["a"]
    with pytest.raises(InvalidKey):
        JWKSet.from_dict(data, strict=True)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="no-keys"),
        pytest.param({"keys": {}}, id="keys-object"),
        pytest.param({"keys": "a"}, id="keys-string"),
        pytest.param([], id="list"),
        pytest.param({"keys": [{"kty": "EC", "crv": "P-256", "x": "A"}]}, id="bad-member"),
    ],
)
def test_malformed_jwks_refused(data: Any) -> None:
    with pytest.raises(InvalidKey):
        JWKSet.from_dict(data)


@pytest.mark.parametrize("text", ["{", "[]", '{"keys":[],"keys":[]}'], ids=str)
def test_malformed_jwks_json_refused(text: str) -> None:
    with pytest.raises(InvalidKey):
        JWKSet.from_json(text)


def test_jwks_holds_only_jwks() -> None:
    with pytest.raises(TypeError):
        JWKSet([key_of("EC-P-256").to_dict()])  # type: ignore[list-item]


def test_jwks_verifies_with_the_key_its_kid_names() -> None:
    a = with_members(key_for("ES256"), kid="a")
    b = with_members(key_for("ES256", slot=1), kid="b")
    keys = JWKSet([a.public(), b.public()])
    for signer in (a, b):
        token = jws.sign(b"p", signer, alg="ES256")
        assert jws.verify(token, keys, algorithms=["ES256"]) == b"p"
    stray = with_members(key_for("ES256", slot=1), kid="a")
    with pytest.raises(BadSignature):
        jws.verify(jws.sign(b"p", stray, alg="ES256"), keys, algorithms=["ES256"])


def test_key_equality_and_hash() -> None:
    key = key_of("EC-P-256")
    again = JWK.from_dict(key.to_dict(private=True))
    assert key == again and hash(key) == hash(again)
    assert key != key.public()
    assert key != key_of("EC-P-256", slot=1)
    assert JWK.from_secret(b"a" * 32) == JWK.from_secret(b"a" * 32)
    assert JWK.from_secret(b"a" * 32) != JWK.from_secret(b"b" * 32)
    assert key != "not a key"


def test_equal_keys_hash_equal() -> None:
    # Equality ignores metadata such as kid, so the hash must too, or sets and dicts of
    # keys hold "equal" keys twice.
    key = key_of("EC-P-256")
    renamed = with_members(key, kid="renamed", alg="ES256")
    assert key == renamed
    assert hash(key) == hash(renamed)
    assert len({key, renamed}) == 1
