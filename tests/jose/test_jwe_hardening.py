"""JWE hardening: each test is named after what an attacker (or a careless caller) would try.

Hostile tokens are built here from raw primitives, not with the library, so a bug in the
library's encrypt side cannot hide the same bug on its decrypt side.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from keys import key_of, with_members

from ostiary.jose import (
    DecryptionFailed,
    InvalidHeader,
    InvalidKey,
    JoseError,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
    jwe,
    jwk,
)

SECRET = bytes(range(32))
PASSWORD = b"correct horse battery staple"
GCM = {"algorithms": ["dir"], "encryptions": ["A256GCM"]}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(obj: object) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def gcm_token(
    header: dict[str, Any],
    cek: bytes,
    plaintext: bytes = b"secret",
    encrypted_key: bytes = b"",
    *,
    iv: bytes | None = None,
    tag_size: int = 16,
) -> str:
    """A compact AES-GCM JWE over exactly this header, made without the library."""
    segment = b64json(header)
    iv = iv if iv is not None else os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, segment.encode("ascii"))
    ciphertext, tag = sealed[:-16], sealed[-16:][:tag_size]
    return ".".join((segment, b64u(encrypted_key), b64u(iv), b64u(ciphertext), b64u(tag)))


def pkcs1(public: Any, data: bytes) -> bytes:
    encrypted: bytes = public.encrypt(data, padding.PKCS1v15())
    return encrypted


def dir_token(header: dict[str, Any] | None = None, plaintext: bytes = b"secret") -> str:
    return gcm_token({"alg": "dir", "enc": "A256GCM", **(header or {})}, SECRET, plaintext)


# -- allow-lists ----------------------------------------------------------------------------


def test_alg_not_in_allowlist_rejected() -> None:
    token = dir_token()
    with pytest.raises(UnsupportedAlgorithm):
        jwe.decrypt(token, SECRET, algorithms=["A256KW"], encryptions=["A256GCM"])


def test_enc_not_in_allowlist_rejected() -> None:
    token = dir_token()
    with pytest.raises(UnsupportedAlgorithm):
        jwe.decrypt(token, SECRET, algorithms=["dir"], encryptions=["A128CBC-HS256"])


def test_allowlists_are_required() -> None:
    token = dir_token()
    with pytest.raises(TypeError):
        jwe.decrypt(token, SECRET)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        jwe.decrypt(token, SECRET, algorithms=["dir"])  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("algorithms", "encryptions"),
    [([], ["A256GCM"]), (["dir"], []), ("dir", ["A256GCM"]), (["dir"], "A256GCM")],
    ids=["no-algs", "no-encs", "alg-string", "enc-string"],  # a string matches by substring
)
def test_allowlist_mistakes_are_programmer_errors(algorithms: Any, encryptions: Any) -> None:
    with pytest.raises(TypeError):
        jwe.decrypt(dir_token(), SECRET, algorithms=algorithms, encryptions=encryptions)
    with pytest.raises(TypeError):
        jwe.decrypt_json({}, SECRET, algorithms=algorithms, encryptions=encryptions)


def test_allowlist_of_jws_names_explains_itself() -> None:
    with pytest.raises(UnsupportedAlgorithm, match="HS256"):
        jwe.decrypt(dir_token(), SECRET, algorithms=["HS256", "none"], encryptions=["A256GCM"])
    with pytest.raises(UnsupportedAlgorithm, match="A256CTR"):
        jwe.decrypt(dir_token(), SECRET, algorithms=["dir"], encryptions=["A256CTR"])


def test_alg_none_is_not_jwe() -> None:
    token = gcm_token({"alg": "none", "enc": "A256GCM"}, SECRET)
    with pytest.raises(UnsupportedAlgorithm):
        jwe.decrypt(token, SECRET, **GCM)


def test_rsa1_5_decrypts_only_when_named() -> None:
    private = key_of("RSA-2048")
    cek = os.urandom(32)
    wrapped = pkcs1(private.public_key(), cek)
    token = gcm_token({"alg": "RSA1_5", "enc": "A256GCM"}, cek, b"legacy", wrapped)
    with pytest.raises(UnsupportedAlgorithm):
        jwe.decrypt(
            token, private, algorithms=["RSA-OAEP", "RSA-OAEP-256"], encryptions=["A256GCM"]
        )
    assert jwe.decrypt(token, private, algorithms=["RSA1_5"], encryptions=["A256GCM"]) == b"legacy"


def test_rsa1_5_never_encrypts() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        jwe.encrypt(b"x", key_of("RSA-2048").public(), alg="RSA1_5", enc="A256GCM")
    with pytest.raises(UnsupportedAlgorithm):
        jwe.encrypt_json(b"x", [(key_of("RSA-2048").public(), "RSA1_5")], enc="A256GCM")


def test_rsa1_5_padding_oracle_sees_one_error() -> None:
    # RFC 7516 §11.5: a bad PKCS #1 block, a CEK of the wrong length, and a wrong tag must
    # be indistinguishable.
    private = key_of("RSA-2048")
    public = private.public_key()
    header = {"alg": "RSA1_5", "enc": "A256GCM"}
    call: dict[str, Any] = {"algorithms": ["RSA1_5"], "encryptions": ["A256GCM"]}
    cek = os.urandom(32)
    cases = {
        "bad padding": gcm_token(header, cek, b"x", os.urandom(255) + b"\x01"),
        "short cek": gcm_token(header, cek, b"x", pkcs1(public, cek[:16])),
        "wrong cek": gcm_token(header, cek, b"x", pkcs1(public, os.urandom(32))),
    }
    messages = set()
    for token in cases.values():
        with pytest.raises(DecryptionFailed) as info:
            jwe.decrypt(token, private, **call)
        messages.add(str(info.value))
    assert len(messages) == 1


# -- key type bound to the algorithm family -------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "key_id"),
    [
        ("A256KW", "RSA-2048"),
        ("A256KW", "EC-P-256"),
        ("dir", "RSA-2048"),
        ("dir", "OKP-X25519"),
        ("A256GCMKW", "EC-P-256"),
        ("PBES2-HS256+A128KW", "RSA-2048"),
        ("RSA-OAEP", "oct-256"),
        ("RSA-OAEP-256", "EC-P-256"),
        ("ECDH-ES", "RSA-2048"),
        ("ECDH-ES", "oct-256"),
        ("ECDH-ES", "OKP-Ed25519"),
        ("ECDH-ES+A128KW", "EC-secp256k1"),
    ],
)
def test_key_of_another_family_refused(alg: str, key_id: str) -> None:
    key = key_of(key_id)
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", key, alg=alg, enc="A256GCM")
    token = gcm_token(
        {"alg": alg, "enc": "A256GCM"}, SECRET, b"x", b"" if alg == "dir" else b"k" * 40
    )
    with pytest.raises(JoseError) as info:
        jwe.decrypt(token, key, algorithms=[alg], encryptions=["A256GCM"])
    assert not isinstance(info.value, DecryptionFailed)  # refused before any key was used


def test_rsa_public_key_bytes_are_never_an_aes_key() -> None:
    pem = key_of("RSA-2048").to_pem()
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", pem, alg="A256KW", enc="A256GCM")
    with pytest.raises(InvalidKey):
        jwe.decrypt(dir_token(), pem, **GCM)


@pytest.mark.parametrize(
    ("alg", "size"), [("A128KW", 32), ("A256KW", 16), ("A192GCMKW", 16), ("dir", 16)]
)
def test_symmetric_key_of_the_wrong_size_refused(alg: str, size: int) -> None:
    with pytest.raises(InvalidKey, match="bit"):
        jwe.encrypt(b"x", os.urandom(size), alg=alg, enc="A256GCM")


def test_public_key_cannot_decrypt() -> None:
    private = key_of("RSA-2048")
    token = jwe.encrypt(b"x", private.public(), alg="RSA-OAEP", enc="A256GCM")
    with pytest.raises(InvalidKey, match="private"):
        jwe.decrypt(token, private.public(), algorithms=["RSA-OAEP"], encryptions=["A256GCM"])
    with pytest.raises(KeyNotFound):
        jwe.decrypt(
            token, jwk.JWKSet([private.public()]), algorithms=["RSA-OAEP"], encryptions=["A256GCM"]
        )


# -- JWK alg / use / key_ops ----------------------------------------------------------------


def test_key_alg_member_honoured() -> None:
    private = with_members(key_of("RSA-2048"), alg="RSA-OAEP-256")
    with pytest.raises(InvalidKey, match="RSA-OAEP-256"):
        jwe.encrypt(b"x", private.public(), alg="RSA-OAEP", enc="A256GCM")
    token = jwe.encrypt(b"x", key_of("RSA-2048").public(), alg="RSA-OAEP", enc="A256GCM")
    with pytest.raises(InvalidKey):
        jwe.decrypt(token, private, algorithms=["RSA-OAEP"], encryptions=["A256GCM"])
    with pytest.raises(KeyNotFound):
        jwe.decrypt(token, jwk.JWKSet([private]), algorithms=["RSA-OAEP"], encryptions=["A256GCM"])


def test_signing_key_never_decrypts() -> None:
    token = jwe.encrypt(b"x", key_of("RSA-2048").public(), alg="RSA-OAEP", enc="A256GCM")
    signing = with_members(key_of("RSA-2048"), use="sig")
    with pytest.raises(InvalidKey, match="unwrapKey"):
        jwe.decrypt(token, signing, algorithms=["RSA-OAEP"], encryptions=["A256GCM"])
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", signing.public(), alg="RSA-OAEP", enc="A256GCM")


@pytest.mark.parametrize(
    ("alg", "key_id", "needed", "other"),
    [
        ("RSA-OAEP", "RSA-2048", "unwrapKey", "decrypt"),
        ("ECDH-ES+A128KW", "EC-P-256", "deriveKey", "unwrapKey"),
        ("ECDH-ES", "OKP-X25519", "deriveKey", "decrypt"),
    ],
)
def test_key_ops_must_allow_the_operation(alg: str, key_id: str, needed: str, other: str) -> None:
    private = key_of(key_id)
    token = jwe.encrypt(b"ok", private.public(), alg=alg, enc="A128GCM")
    call: dict[str, Any] = {"algorithms": [alg], "encryptions": ["A128GCM"]}
    assert jwe.decrypt(token, with_members(private, key_ops=[needed]), **call) == b"ok"
    with pytest.raises(InvalidKey, match=needed):
        jwe.decrypt(token, with_members(private, key_ops=[other]), **call)


@pytest.mark.parametrize(
    ("alg", "needed", "other"),
    [("dir", "decrypt", "unwrapKey"), ("A256KW", "unwrapKey", "decrypt")],
)
def test_symmetric_key_ops_must_allow_the_operation(alg: str, needed: str, other: str) -> None:
    def key(op: str) -> jwk.JWK:
        return jwk.JWK.from_dict({"kty": "oct", "k": b64u(SECRET), "key_ops": [op]})

    token = jwe.encrypt(b"ok", SECRET, alg=alg, enc="A256GCM")
    call: dict[str, Any] = {"algorithms": [alg], "encryptions": ["A256GCM"]}
    assert jwe.decrypt(token, key(needed), **call) == b"ok"
    with pytest.raises(InvalidKey):
        jwe.decrypt(token, key(other), **call)


# -- PBES2 ----------------------------------------------------------------------------------


def pbes2_token(p2c: object, p2s: bytes = b"saltsalt", alg: str = "PBES2-HS256+A128KW") -> str:
    import hashlib

    cek = os.urandom(32)
    count = p2c if isinstance(p2c, int) and not isinstance(p2c, bool) and p2c > 0 else 1000
    kek = hashlib.pbkdf2_hmac("sha256", PASSWORD, alg.encode() + b"\0" + p2s, count, 16)
    header = {"alg": alg, "enc": "A256GCM", "p2s": b64u(p2s), "p2c": p2c}
    return gcm_token(header, cek, b"pbes2", aes_key_wrap(kek, cek))


PBES2_CALL: dict[str, Any] = {
    "algorithms": ["PBES2-HS256+A128KW"],
    "encryptions": ["A256GCM"],
    "max_pbes2_count": 2000,
}


@pytest.mark.parametrize(
    ("p2c", "ok"),
    [(999, False), (1000, True), (2000, True), (2001, False), (0, False), (-1, False)],
)
def test_pbes2_count_bounded_on_decrypt(p2c: int, ok: bool) -> None:
    token = pbes2_token(p2c)
    if ok:
        assert jwe.decrypt(token, PASSWORD, **PBES2_CALL) == b"pbes2"
    else:
        with pytest.raises(InvalidHeader, match="p2c"):
            jwe.decrypt(token, PASSWORD, **PBES2_CALL)


def test_pbes2_default_bound_is_one_million() -> None:
    token = pbes2_token(1_000_001)
    with pytest.raises(InvalidHeader, match="1000000"):
        jwe.decrypt(token, PASSWORD, algorithms=["PBES2-HS256+A128KW"], encryptions=["A256GCM"])


@pytest.mark.parametrize("p2c", [True, "1000", 1000.0, None])
def test_pbes2_count_must_be_an_integer(p2c: object) -> None:
    with pytest.raises(InvalidHeader):
        jwe.decrypt(pbes2_token(p2c), PASSWORD, **PBES2_CALL)


@pytest.mark.parametrize(("size", "ok"), [(0, False), (7, False), (8, True), (64, True)])
def test_pbes2_salt_input_at_least_8_bytes(size: int, ok: bool) -> None:
    token = pbes2_token(1000, p2s=os.urandom(size))
    if ok:
        assert jwe.decrypt(token, PASSWORD, **PBES2_CALL) == b"pbes2"
    else:
        with pytest.raises(InvalidHeader, match="p2s"):
            jwe.decrypt(token, PASSWORD, **PBES2_CALL)


def test_pbes2_work_is_bounded_across_candidate_keys() -> None:
    # Three passwords without kid would each cost a full derivation: 3 x 1000 > 2000.
    keys = jwk.JWKSet([jwk.JWK.from_secret(os.urandom(16)) for _ in range(2)])
    keys = jwk.JWKSet([*keys, jwk.JWK.from_secret(PASSWORD)])
    with pytest.raises(InvalidHeader, match="PBES2"):
        jwe.decrypt(pbes2_token(1000), keys, **PBES2_CALL)
    assert jwe.decrypt(pbes2_token(1000), keys, **{**PBES2_CALL, "max_pbes2_count": 3000}) == (
        b"pbes2"
    )


def test_pbes2_encrypt_refuses_a_count_decrypt_would_refuse() -> None:
    with pytest.raises(ValueError, match="p2c"):
        jwe.encrypt(b"x", PASSWORD, alg="PBES2-HS256+A128KW", enc="A256GCM", headers={"p2c": 10})


# -- ECDH-ES --------------------------------------------------------------------------------


def ecdh_token(epk: object, alg: str = "ECDH-ES") -> str:
    return gcm_token({"alg": alg, "enc": "A256GCM", "epk": epk}, SECRET, b"x")


ECDH_CALL: dict[str, Any] = {"algorithms": ["ECDH-ES"], "encryptions": ["A256GCM"]}


def test_ecdh_es_ephemeral_key_must_be_on_curve() -> None:
    # Invalid-curve attack: a point off P-256 leaks the private key bit by bit.
    epk = key_of("EC-P-256", slot=1).to_dict()
    y = int.from_bytes(base64.urlsafe_b64decode(epk["y"] + "="), "big")
    off_curve = {**epk, "y": b64u(((y + 1) % 2**256).to_bytes(32, "big"))}
    with pytest.raises(InvalidHeader, match="curve"):
        jwe.decrypt(ecdh_token(off_curve), key_of("EC-P-256"), **ECDH_CALL)


def test_ecdh_es_ephemeral_key_on_another_curve_refused() -> None:
    epk = key_of("EC-P-384").to_dict()
    with pytest.raises(InvalidKey, match="P-384"):
        jwe.decrypt(ecdh_token(epk), key_of("EC-P-256"), **ECDH_CALL)
    with pytest.raises(KeyNotFound):
        jwe.decrypt(ecdh_token(epk), jwk.JWKSet([key_of("EC-P-256")]), **ECDH_CALL)
    okp = key_of("OKP-X448").to_dict()
    with pytest.raises(InvalidKey):
        jwe.decrypt(ecdh_token(okp), key_of("OKP-X25519"), **ECDH_CALL)


@pytest.mark.parametrize(
    "epk",
    [
        None,
        "not an object",
        {"kty": "oct", "k": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": b64u(bytes(32))},
        {"kty": "EC", "crv": "secp256k1", "x": b64u(bytes(32)), "y": b64u(bytes(32))},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
    ],
    ids=["missing", "string", "oct", "ed25519", "secp256k1", "short-coordinates"],
)
def test_ecdh_es_malformed_ephemeral_key_refused(epk: object) -> None:
    with pytest.raises(InvalidHeader):
        jwe.decrypt(ecdh_token(epk), key_of("EC-P-256"), **ECDH_CALL)


def test_ecdh_es_ephemeral_private_key_refused() -> None:
    epk = key_of("EC-P-256", slot=1).to_dict(private=True)
    with pytest.raises(InvalidHeader, match="public"):
        jwe.decrypt(ecdh_token(epk), key_of("EC-P-256"), **ECDH_CALL)


@pytest.mark.parametrize(
    "point",
    [bytes(32), (1).to_bytes(32, "little"), (2**255 - 19 - 1).to_bytes(32, "little")],
    ids=["zero", "one", "p-minus-one"],
)
def test_x25519_low_order_point_refused(point: bytes) -> None:
    # Each of these forces an all-zero shared secret (RFC 7748 §6.1), known to anyone.
    epk = {"kty": "OKP", "crv": "X25519", "x": b64u(point)}
    with pytest.raises(JoseError):
        jwe.decrypt(ecdh_token(epk), key_of("OKP-X25519"), **ECDH_CALL)


def test_x25519_degenerate_recipient_key_refused_on_encrypt() -> None:
    low_order = jwk.JWK.from_dict({"kty": "OKP", "crv": "X25519", "x": b64u(bytes(32))})
    with pytest.raises(InvalidKey):
        jwe.encrypt(b"x", low_order, alg="ECDH-ES", enc="A256GCM")


# -- structure ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["dir", "ECDH-ES"])
def test_direct_mode_with_an_encrypted_key_refused(alg: str) -> None:
    header: dict[str, Any] = {"alg": alg, "enc": "A256GCM"}
    key: Any = SECRET
    if alg == "ECDH-ES":
        header["epk"] = key_of("EC-P-256", slot=1).to_dict()
        key = key_of("EC-P-256")
    token = gcm_token(header, SECRET, b"x", b"smuggled key bytes")
    with pytest.raises(MalformedToken, match="empty"):
        jwe.decrypt(token, key, algorithms=[alg], encryptions=["A256GCM"])


def test_key_wrap_without_an_encrypted_key_refused() -> None:
    token = gcm_token({"alg": "A256KW", "enc": "A256GCM"}, SECRET, b"x", b"")
    with pytest.raises(MalformedToken):
        jwe.decrypt(token, SECRET, algorithms=["A256KW"], encryptions=["A256GCM"])


@pytest.mark.parametrize("size", [0, 8, 11, 13, 16])
def test_gcm_iv_length_checked(size: int) -> None:
    token = gcm_token(
        {"alg": "dir", "enc": "A256GCM"}, SECRET, b"x", iv=os.urandom(size) if size else None
    )
    if size == 0:
        parts = token.split(".")
        token = ".".join((*parts[:2], "", *parts[3:]))
    with pytest.raises(MalformedToken, match="initialization vector"):
        jwe.decrypt(token, SECRET, **GCM)


@pytest.mark.parametrize("size", [0, 1, 4, 8, 12, 15])
def test_truncated_gcm_tag_refused(size: int) -> None:
    # A short GCM tag is forgeable by brute force: only the full 128-bit tag is accepted.
    token = gcm_token({"alg": "dir", "enc": "A256GCM"}, SECRET, b"x", tag_size=size)
    with pytest.raises(MalformedToken, match="tag"):
        jwe.decrypt(token, SECRET, **GCM)


def test_truncated_cbc_hmac_tag_refused() -> None:
    token = jwe.encrypt(b"x", bytes(32), alg="dir", enc="A128CBC-HS256")
    cut = token[: token.rindex(".") + 1] + b64u(b"\0" * 8)
    with pytest.raises(MalformedToken, match="tag"):
        jwe.decrypt(cut, bytes(32), algorithms=["dir"], encryptions=["A128CBC-HS256"])


@pytest.mark.parametrize(
    ("enc", "cek_size"), [("A128GCM", 32), ("A256GCM", 16), ("A128CBC-HS256", 16)]
)
def test_unwrapped_cek_of_the_wrong_length_refused(enc: str, cek_size: int) -> None:
    cek = os.urandom(cek_size)
    segment = b64json({"alg": "A256KW", "enc": enc})
    iv = os.urandom(12 if "GCM" in enc else 16)
    token = ".".join(
        (segment, b64u(aes_key_wrap(SECRET, cek)), b64u(iv), b64u(b"\0" * 16), b64u(b"\0" * 16))
    )
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(token, SECRET, algorithms=["A256KW"], encryptions=[enc])


def test_cbc_hmac_tag_checked_before_padding() -> None:
    # A forger who can tell a padding error from a MAC error has an oracle; both read alike.
    token = jwe.encrypt(b"sixteen bytes!!!", bytes(32), alg="dir", enc="A128CBC-HS256")
    segment, ek, iv, ciphertext, tag = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(ciphertext + "=="))
    raw[-1] ^= 1  # breaks the padding of the last block
    broken = ".".join((segment, ek, iv, b64u(bytes(raw)), tag))
    with pytest.raises(DecryptionFailed) as padding_case:
        jwe.decrypt(broken, bytes(32), algorithms=["dir"], encryptions=["A128CBC-HS256"])
    wrong_tag = ".".join((segment, ek, iv, ciphertext, b64u(b"\0" * 16)))
    with pytest.raises(DecryptionFailed) as tag_case:
        jwe.decrypt(wrong_tag, bytes(32), algorithms=["dir"], encryptions=["A128CBC-HS256"])
    assert str(padding_case.value) == str(tag_case.value)


def test_every_decrypt_failure_reads_the_same() -> None:
    private = key_of("RSA-2048")
    token = jwe.encrypt(b"payload", private.public(), alg="RSA-OAEP-256", enc="A256GCM")
    parts = token.split(".")
    call: dict[str, Any] = {"algorithms": ["RSA-OAEP-256"], "encryptions": ["A256GCM"]}
    messages = set()
    for index in (1, 2, 3, 4):
        raw = bytearray(base64.urlsafe_b64decode(parts[index] + "=" * (-len(parts[index]) % 4)))
        raw[0] ^= 0x80
        tampered = ".".join((*parts[:index], b64u(bytes(raw)), *parts[index + 1 :]))
        with pytest.raises(DecryptionFailed) as info:
            jwe.decrypt(tampered, private, **call)
        messages.add(str(info.value))
    with pytest.raises(DecryptionFailed) as info:
        jwe.decrypt(token, key_of("RSA-2048", slot=1), **call)
    messages.add(str(info.value))
    assert messages == {"decryption failed"}


def test_header_swap_breaks_the_tag() -> None:
    token = dir_token()
    segment = b64json({"enc": "A256GCM", "alg": "dir"})  # same members, other bytes
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(segment + token[token.index(".") :], SECRET, **GCM)


# -- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "crit",
    [["exp"], [], "exp", ["alg"], ["missing"]],
    ids=["unknown-extension", "empty", "not-a-list", "registered-name", "absent-name"],
)
def test_crit_refused(crit: object) -> None:
    token = dir_token({"crit": crit, "exp": 1})
    with pytest.raises(InvalidHeader, match="crit"):
        jwe.decrypt(token, SECRET, **GCM)


@pytest.mark.parametrize("name", ["jwk", "jku", "x5u"])
def test_key_carried_by_the_token_refused(name: str) -> None:
    value: object = key_of("EC-P-256").to_dict() if name == "jwk" else "https://attacker.example/k"
    with pytest.raises(InvalidHeader, match=name):
        jwe.decrypt(dir_token({name: value}), SECRET, **GCM)
    obj = jwe.encrypt_json(b"x", [(SECRET, "A256KW", {name: value})], enc="A256GCM")
    with pytest.raises(InvalidHeader, match=name):
        jwe.decrypt_json(obj, SECRET, algorithms=["A256KW"], encryptions=["A256GCM"])


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ({"enc": "A256GCM"}, InvalidHeader),
        ({"alg": "dir"}, InvalidHeader),
        ({"alg": 1, "enc": "A256GCM"}, InvalidHeader),
        ({"alg": "dir", "enc": "A256GCM", "kid": 7}, InvalidHeader),
        ({"alg": "dir", "enc": "A256GCM", "zip": "GZIP"}, InvalidHeader),
    ],
    ids=["no-alg", "no-enc", "alg-not-string", "kid-not-string", "unknown-zip"],
)
def test_malformed_header_members_refused(header: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        jwe.decrypt(gcm_token(header, SECRET), SECRET, **GCM)


@pytest.mark.parametrize(
    "segment",
    [
        '{"alg":"dir","alg":"A256KW","enc":"A256GCM"}',
        '{"alg":"dir","enc":"A256GCM","x":NaN}',
        '["alg","dir"]',
        '{"alg":"dir","enc":"A256GCM"',
    ],
    ids=["duplicate-member", "nan", "array", "truncated"],
)
def test_non_standard_header_json_refused(segment: str) -> None:
    token = dir_token()
    forged = b64u(segment.encode()) + token[token.index(".") :]
    with pytest.raises(MalformedToken):
        jwe.decrypt(forged, SECRET, **GCM)


def test_zip_outside_the_protected_header_refused() -> None:
    obj = jwe.encrypt_json(b"x", [(SECRET, "A256KW")], enc="A256GCM")
    obj["recipients"][0]["header"]["zip"] = "DEF"
    with pytest.raises(InvalidHeader, match="zip"):
        jwe.decrypt_json(obj, SECRET, algorithms=["A256KW"], encryptions=["A256GCM"])


def test_crit_outside_the_protected_header_refused() -> None:
    obj = jwe.encrypt_json(b"x", [(SECRET, "A256KW")], enc="A256GCM")
    obj["unprotected"] = {"crit": ["exp"], "exp": 1}
    with pytest.raises(InvalidHeader, match="crit"):
        jwe.decrypt_json(obj, SECRET, algorithms=["A256KW"], encryptions=["A256GCM"])


def test_header_member_in_two_places_refused() -> None:
    obj = jwe.encrypt_json(b"x", [(SECRET, "A256KW")], enc="A256GCM")
    obj["unprotected"] = {"alg": "dir"}
    with pytest.raises(InvalidHeader, match="alg"):
        jwe.decrypt_json(obj, SECRET, algorithms=["A256KW", "dir"], encryptions=["A256GCM"])


def test_recipients_must_share_one_enc() -> None:
    obj = jwe.encrypt_json(b"x", [(SECRET, "A256KW"), (SECRET, "A256KW")], enc="A256GCM")
    protected = json.loads(base64.urlsafe_b64decode(obj["protected"] + "=="))
    del protected["enc"]
    obj["protected"] = b64json(protected)
    obj["recipients"][0]["header"]["enc"] = "A256GCM"
    obj["recipients"][1]["header"]["enc"] = "A128GCM"
    with pytest.raises(InvalidHeader, match="enc"):
        jwe.decrypt_json(obj, SECRET, algorithms=["A256KW"], encryptions=["A256GCM", "A128GCM"])


@pytest.mark.parametrize(
    "change",
    [
        {"recipients": []},
        {"recipients": "x"},
        {"recipients": ["x"]},
        {"ciphertext": None},
        {"ciphertext": 5},
        {"protected": 5},
        {"unprotected": "x"},
        {"aad": "a+b"},
        {"iv": "@@@"},
        {"header": {"alg": "A256KW"}},
    ],
    ids=[
        "no-recipients",
        "recipients-string",
        "recipient-string",
        "no-ciphertext",
        "ciphertext-number",
        "protected-number",
        "unprotected-string",
        "aad-not-base64url",
        "iv-not-base64url",
        "general-and-flattened",
    ],
)
def test_malformed_json_serialization_refused(change: dict[str, Any]) -> None:
    obj = jwe.encrypt_json(b"x", [(SECRET, "A256KW")], enc="A256GCM")
    obj = {k: v for k, v in {**obj, **change}.items() if v is not None}
    with pytest.raises(MalformedToken):
        jwe.decrypt_json(obj, SECRET, algorithms=["A256KW"], encryptions=["A256GCM"])


# -- size bounds ----------------------------------------------------------------------------


def test_input_size_bounded_before_parsing() -> None:
    garbage = "x" * 1025  # not even a JWE: the size check comes first
    with pytest.raises(TokenTooLarge):
        jwe.decrypt(garbage, SECRET, max_size=1024, **GCM)
    with pytest.raises(TokenTooLarge):
        jwe.decrypt(garbage.encode(), SECRET, max_size=1024, **GCM)
    with pytest.raises(TokenTooLarge):
        jwe.decrypt_json(garbage, SECRET, max_size=1024, **GCM)
    with pytest.raises(TokenTooLarge):
        jwe.decrypt_json({"ciphertext": garbage}, SECRET, max_size=1024, **GCM)
    with pytest.raises(TokenTooLarge):
        jwe.unverified_header(garbage, max_size=1024)


def test_default_size_bound_is_256_kib() -> None:
    token = dir_token(plaintext=b"\0" * (200 * 1024))
    assert len(token) > 256 * 1024
    with pytest.raises(TokenTooLarge):
        jwe.decrypt(token, SECRET, **GCM)
    assert len(jwe.decrypt(token, SECRET, max_size=len(token), **GCM)) == 200 * 1024


def test_too_many_recipients_refused() -> None:
    obj = jwe.encrypt_json(b"x", [(SECRET, "A256KW")], enc="A256GCM")
    obj["recipients"] = obj["recipients"] * (jwe.MAX_RECIPIENTS + 1)
    with pytest.raises(TokenTooLarge, match="recipients"):
        jwe.decrypt_json(obj, SECRET, algorithms=["A256KW"], encryptions=["A256GCM"])


def deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


@pytest.mark.parametrize(("size", "ok"), [(256 * 1024, True), (256 * 1024 + 1, False)])
def test_zip_bomb_bounded(size: int, ok: bool) -> None:
    token = gcm_token({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}, SECRET, deflate(b"\0" * size))
    assert len(token) < 2048  # a small token ...
    if ok:
        assert len(jwe.decrypt(token, SECRET, **GCM)) == size
    else:
        with pytest.raises(TokenTooLarge):  # ... that may not inflate without bound
            jwe.decrypt(token, SECRET, **GCM)


def test_zip_bound_is_configurable() -> None:
    token = gcm_token({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}, SECRET, deflate(b"a" * 5000))
    with pytest.raises(TokenTooLarge):
        jwe.decrypt(token, SECRET, max_decompressed_size=4999, **GCM)
    assert jwe.decrypt(token, SECRET, max_decompressed_size=5000, **GCM) == b"a" * 5000


@pytest.mark.parametrize(
    "body",
    [
        b"not deflate at all",
        deflate(b"x" * 100)[:-3],
        deflate(b"x") + b"trailing",
        zlib.compress(b"x"),
    ],
    ids=["garbage", "truncated", "trailing-data", "zlib-wrapper"],
)
def test_corrupt_deflate_refused(body: bytes) -> None:
    token = gcm_token({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}, SECRET, body)
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(token, SECRET, **GCM)


@pytest.mark.parametrize(
    "token",
    ["", "a.b.c", "a.b.c.d.e.f", "....", "é.b.c.d.e", b"\xff.a.b.c.d"],
    ids=["empty", "jws-shape", "six-parts", "all-empty", "non-ascii", "non-ascii-bytes"],
)
def test_malformed_compact_refused(token: str | bytes) -> None:
    with pytest.raises(MalformedToken):
        jwe.decrypt(token, SECRET, **GCM)


@pytest.mark.parametrize("token", [None, 5, ["a.b.c.d.e"], {"ciphertext": ""}])
def test_token_of_the_wrong_type_refused(token: object) -> None:
    # Tokens often come out of parsed JSON, where an attacker picks the type.
    with pytest.raises(MalformedToken):
        jwe.decrypt(token, SECRET, **GCM)  # type: ignore[arg-type]
    if not isinstance(token, dict):
        with pytest.raises(MalformedToken):
            jwe.decrypt_json(token, SECRET, **GCM)  # type: ignore[arg-type]
    with pytest.raises(MalformedToken):
        jwe.unverified_header(token)  # type: ignore[arg-type]


def test_oaep_hash_is_bound_to_the_alg() -> None:
    # The same key, wrapped with OAEP-SHA1, must not pass as RSA-OAEP-256.
    private = key_of("RSA-2048")
    cek = os.urandom(32)
    sha1 = hashes.SHA1()  # noqa: S303 - RSA-OAEP is OAEP with SHA-1 (RFC 7518 §4.3)
    oaep_sha1 = padding.OAEP(mgf=padding.MGF1(sha1), algorithm=sha1, label=None)
    wrapped: bytes = private.public_key().encrypt(cek, oaep_sha1)  # type: ignore[union-attr]
    call: dict[str, Any] = {"encryptions": ["A256GCM"]}
    good = gcm_token({"alg": "RSA-OAEP", "enc": "A256GCM"}, cek, b"x", wrapped)
    assert jwe.decrypt(good, private, algorithms=["RSA-OAEP"], **call) == b"x"
    relabelled = gcm_token({"alg": "RSA-OAEP-256", "enc": "A256GCM"}, cek, b"x", wrapped)
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(relabelled, private, algorithms=["RSA-OAEP-256"], **call)
