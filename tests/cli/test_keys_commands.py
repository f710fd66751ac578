"""`ostiary keys generate | thumbprint`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cli_run import Run, assert_one_line_error

from ostiary.jose import jws
from ostiary.jose.jwk import JWK

GENERATE_CASES = {
    "default-ec-p256": ([], "EC", "P-256", None, "ES256"),
    "alg-es384": (["--alg", "ES384"], "EC", "P-384", "ES384", "ES384"),
    "alg-es256k": (["--alg", "ES256K"], "EC", "secp256k1", "ES256K", "ES256K"),
    "ec-p521": (["--kty", "EC", "--crv", "P-521"], "EC", "P-521", None, "ES512"),
    "alg-eddsa": (["--alg", "EdDSA"], "OKP", "Ed25519", "EdDSA", "EdDSA"),
    "alg-ed448": (["--alg", "Ed448"], "OKP", "Ed448", "Ed448", "Ed448"),
    "okp-default": (["--kty", "OKP"], "OKP", "Ed25519", None, "EdDSA"),
    "alg-hs384": (["--alg", "HS384"], "oct", None, "HS384", "HS384"),
    "alg-ps256": (["--alg", "PS256"], "RSA", None, "PS256", "PS256"),
}


@pytest.mark.parametrize("case", list(GENERATE_CASES))
def test_generate_prints_a_usable_private_jwk(ostiary: Run, case: str) -> None:
    args, kty, crv, alg, sign_alg = GENERATE_CASES[case]
    result = ostiary("keys", "generate", *args)
    assert result.status == 0, result.err
    members = json.loads(result.out)
    key = JWK.from_dict(members)
    assert (key.kty, key.crv, key.alg, key.is_private) == (kty, crv, alg, True)
    assert members["kid"] == key.thumbprint()
    token = jws.sign(b"x", key, alg=sign_alg)
    verifier = key if kty == "oct" else key.public()
    assert jws.verify(token, verifier, algorithms=[sign_alg]) == b"x"


def test_generate_sizes_kid_and_use(ostiary: Run) -> None:
    result = ostiary("keys", "generate", "--kty", "oct", "--size", "512", "--kid", "k1")
    members = json.loads(result.out)
    assert (len(JWK.from_dict(members).secret()), members["kid"]) == (64, "k1")
    result = ostiary("keys", "generate", "--kty", "RSA", "--size", "2048", "--use", "sig")
    key = JWK.from_dict(json.loads(result.out))
    assert (key.key_size, key.use) == (2048, "sig")


def test_generate_encryption_keys(ostiary: Run) -> None:
    ecdh = JWK.from_dict(json.loads(ostiary("keys", "generate", "--alg", "ECDH-ES+A256KW").out))
    x25519 = ostiary("keys", "generate", "--kty", "OKP", "--alg", "ECDH-ES", "--use", "enc")
    aes = JWK.from_dict(json.loads(ostiary("keys", "generate", "--alg", "A256KW").out))
    assert (ecdh.kty, ecdh.crv, ecdh.alg) == ("EC", "P-256", "ECDH-ES+A256KW")
    assert JWK.from_dict(json.loads(x25519.out)).crv == "X25519"
    assert (aes.kty, len(aes.secret())) == ("oct", 32)


@pytest.mark.parametrize(
    ("public", "marker"),
    [(False, "-----BEGIN PRIVATE KEY-----"), (True, "-----BEGIN PUBLIC KEY-----")],
    ids=["private", "public"],
)
def test_generate_pem(ostiary: Run, public: bool, marker: str) -> None:
    result = ostiary(
        "keys", "generate", "--alg", "ES256", "--format", "pem", *(["--public"] * public)
    )
    assert result.status == 0, result.err
    assert result.out.startswith(marker)
    assert JWK.from_pem(result.out.encode()).is_private is not public


def test_generate_public_jwk_has_no_private_members(ostiary: Run) -> None:
    members = json.loads(ostiary("keys", "generate", "--kty", "EC", "--public").out)
    assert "d" not in members
    assert set(members) == {"kty", "crv", "x", "y", "kid"}


def test_generate_out_writes_mode_0600_and_prints_public_jwk(ostiary: Run, tmp_path: Path) -> None:
    out = tmp_path / "signing.jwk"
    old_umask = os.umask(0o000)  # even a permissive umask must not widen the file's mode
    try:
        result = ostiary("keys", "generate", "--alg", "ES256", "--out", str(out))
    finally:
        os.umask(old_umask)
    assert result.status == 0, result.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    private = JWK.from_json(out.read_text(encoding="utf-8"))
    printed = json.loads(result.out)
    assert "d" not in printed
    assert printed == private.public().to_dict()
    assert f"wrote the private key to {out} (mode 0600)" in result.err


def test_generate_out_refuses_to_overwrite_without_force(ostiary: Run, tmp_path: Path) -> None:
    out = tmp_path / "key.pem"
    out.write_text("precious", encoding="utf-8")
    out.chmod(0o644)
    refused = ostiary("keys", "generate", "--format", "pem", "--out", str(out))
    assert_one_line_error(refused, "already exists; pass --force")
    assert out.read_text(encoding="utf-8") == "precious"
    forced = ostiary("keys", "generate", "--format", "pem", "--out", str(out), "--force")
    assert forced.status == 0, forced.err
    assert out.read_text(encoding="utf-8").startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_generate_out_does_not_follow_a_symlink(ostiary: Run, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "key.jwk"
    link.symlink_to(target)
    assert_one_line_error(ostiary("keys", "generate", "--out", str(link)), "already exists")
    assert not target.exists()


def test_generate_oct_out_prints_no_secret(ostiary: Run, tmp_path: Path) -> None:
    out = tmp_path / "hs.jwk"
    result = ostiary("keys", "generate", "--alg", "HS256", "--out", str(out))
    assert result.status == 0, result.err
    assert result.out == ""
    assert JWK.from_json(out.read_text(encoding="utf-8")).secret()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kty", "EC", "--size", "2048"], "--size is for RSA and oct keys"),
        (["--kty", "RSA", "--crv", "P-256"], "--crv is for EC and OKP keys"),
        (["--kty", "RSA", "--size", "1024"], "at least 2048 bits"),
        (["--kty", "EC", "--crv", "P-999"], "unknown EC curve"),
        (["--alg", "ES256", "--crv", "P-384"], "ES256 needs an EC key on P-256"),
        (["--alg", "ES256", "--use", "enc"], "cannot serve ES256"),
        (["--kty", "EC", "--alg", "HS256"], "HS256 needs an oct key"),
        (["--alg", "XYZ"], "cannot tell which key type"),
        (["--alg", "HS256", "--format", "pem"], "no PEM form"),
        (["--kty", "oct", "--public"], "no public part"),
        (["--kty", "oct", "--size", "7"], "multiple of 8"),
    ],
    ids=[
        "size-for-ec",
        "crv-for-rsa",
        "rsa-too-small",
        "unknown-curve",
        "alg-curve-mismatch",
        "alg-use-mismatch",
        "alg-kty-mismatch",
        "unknown-alg",
        "oct-pem",
        "oct-public",
        "oct-odd-size",
    ],
)
def test_generate_refuses_inconsistent_options(ostiary: Run, args: list[str], message: str) -> None:
    assert_one_line_error(ostiary("keys", "generate", *args), message)


# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2"
    "QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
    "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_matches_rfc7638_example(ostiary: Run, tmp_path: Path) -> None:
    path = tmp_path / "rfc7638.jwk"
    path.write_text(json.dumps(RFC7638_KEY), encoding="utf-8")
    assert ostiary("keys", "thumbprint", str(path)).out == RFC7638_THUMBPRINT + "\n"
    uri = ostiary("keys", "thumbprint", "--uri", str(path)).out
    assert uri == f"urn:ietf:params:oauth:jwk-thumbprint:sha-256:{RFC7638_THUMBPRINT}\n"
    pem = tmp_path / "rfc7638.pem"
    pem.write_bytes(JWK.from_dict(RFC7638_KEY).to_pem())
    assert ostiary("keys", "thumbprint", str(pem)).out == RFC7638_THUMBPRINT + "\n"


def test_thumbprint_of_a_jwks_from_stdin(ostiary: Run) -> None:
    other = JWK.generate("OKP", crv="Ed25519")
    jwks = {"keys": [RFC7638_KEY, other.to_dict()]}
    result = ostiary(
        "keys", "thumbprint", "--hash", "sha-256", "-", stdin=json.dumps(jwks).encode()
    )
    assert result.status == 0, result.err
    assert result.out.splitlines() == [
        f'"2011-04-29" {RFC7638_THUMBPRINT}',
        f"null {other.thumbprint()}",
    ]


def test_thumbprint_of_a_missing_file(ostiary: Run, tmp_path: Path) -> None:
    result = ostiary("keys", "thumbprint", str(tmp_path / "nope.jwk"))
    assert_one_line_error(result, "No such file or directory")
