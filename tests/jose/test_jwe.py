"""JWE round trips and API behaviour: every alg x enc, JSON serializations, keys, headers."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
from keys import key_of, with_members

from ostiary.jose import DecryptionFailed, JoseError, KeyNotFound, UnsupportedAlgorithm, jwe, jwk
from ostiary.jose._b64 import b64decode

PLAINTEXT = b'{"sub":"u_123","aud":"billing","note":"caf\xc3\xa9"}'
P2C = 1000  # the floor the decrypt side accepts; keeps PBES2 tests fast

ENCS: dict[str, int] = {  # enc -> CEK bytes
    "A128CBC-HS256": 32,
    "A192CBC-HS384": 48,
    "A256CBC-HS512": 64,
    "A128GCM": 16,
    "A192GCM": 24,
    "A256GCM": 32,
}
KW_BYTES = {"128": 16, "192": 24, "256": 32}
ENCRYPTING_ALGS = (
    *("RSA-OAEP", "RSA-OAEP-256", "RSA-OAEP-384", "RSA-OAEP-512"),
    *("A128KW", "A192KW", "A256KW", "dir"),
    *("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW"),
    *("A128GCMKW", "A192GCMKW", "A256GCMKW"),
    *("PBES2-HS256+A128KW", "PBES2-HS384+A192KW", "PBES2-HS512+A256KW"),
)
PASSWORD = b"correct horse battery staple"
SECRETS = {size: bytes(range(1, size + 1)) for size in (16, 24, 32, 48, 64)}


def keys_for(alg: str, enc: str) -> tuple[Any, Any, dict[str, Any] | None]:
    """(encryption key, decryption key, headers) for one alg/enc pair."""
    if alg.startswith("RSA"):
        private = key_of("RSA-2048")
        return private.public(), private, None
    if alg.startswith("ECDH"):
        private = key_of("EC-P-256")
        return private.public(), private, None
    if alg.startswith("PBES2"):
        return PASSWORD, PASSWORD, {"p2c": P2C}
    if alg == "dir":
        secret = SECRETS[ENCS[enc]]
        return secret, secret, None
    secret = SECRETS[KW_BYTES[alg[1:4]]]
    return secret, secret, None


def test_registry_matches_this_suite() -> None:
    assert set(jwe.KEY_MANAGEMENT_ALGORITHMS) == {*ENCRYPTING_ALGS, "RSA1_5"}
    assert set(jwe.CONTENT_ENCRYPTION_ALGORITHMS) == set(ENCS)


def test_public_all_is_pinned() -> None:
    assert sorted(jwe.__all__) == [
        "CONTENT_ENCRYPTION_ALGORITHMS",
        "KEY_MANAGEMENT_ALGORITHMS",
        "MAX_RECIPIENTS",
        "decrypt",
        "decrypt_json",
        "encrypt",
        "encrypt_json",
        "unverified_header",
    ]
    for name in jwe.__all__:
        assert hasattr(jwe, name)


@pytest.mark.parametrize("enc", list(ENCS))
@pytest.mark.parametrize("alg", ENCRYPTING_ALGS)
def test_compact_round_trip(alg: str, enc: str) -> None:
    enc_key, dec_key, headers = keys_for(alg, enc)
    token = jwe.encrypt(PLAINTEXT, enc_key, alg=alg, enc=enc, headers=headers)
    assert token.count(".") == 4
    header = jwe.unverified_header(token)
    assert (header["alg"], header["enc"]) == (alg, enc)
    assert jwe.decrypt(token, dec_key, algorithms=[alg], encryptions=[enc]) == PLAINTEXT


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521", "X25519", "X448"])
@pytest.mark.parametrize("alg", ["ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW"])
def test_ecdh_es_round_trip_on_every_curve(alg: str, crv: str) -> None:
    private = key_of(("EC-" if crv.startswith("P") else "OKP-") + crv)
    token = jwe.encrypt(PLAINTEXT, private.public(), alg=alg, enc="A128GCM")
    epk = jwe.unverified_header(token)["epk"]
    assert epk["crv"] == crv
    assert "d" not in epk
    assert jwe.decrypt(token, private, algorithms=[alg], encryptions=["A128GCM"]) == PLAINTEXT


def test_ecdh_es_party_info_binds_the_key() -> None:
    private = key_of("OKP-X25519")
    call: dict[str, Any] = {"algorithms": ["ECDH-ES"], "encryptions": ["A256GCM"]}
    token = jwe.encrypt(
        PLAINTEXT, private.public(), alg="ECDH-ES", enc="A256GCM", headers={"apu": "QWxpY2U"}
    )
    assert jwe.unverified_header(token)["apu"] == "QWxpY2U"
    assert jwe.decrypt(token, private, **call) == PLAINTEXT
    # In a per-recipient header `apv` is outside the AAD, so only the KDF sees a change.
    obj = jwe.encrypt_json(
        PLAINTEXT, [(private.public(), "ECDH-ES", {"apv": "Qm9i"})], enc="A256GCM", flatten=True
    )
    assert jwe.decrypt_json(obj, private, **call) == PLAINTEXT
    tampered = {**obj, "header": {**obj["header"], "apv": "Qm9j"}}
    with pytest.raises(DecryptionFailed):
        jwe.decrypt_json(tampered, private, **call)


def test_pbes2_default_count_and_salt() -> None:
    token = jwe.encrypt(b"x", PASSWORD, alg="PBES2-HS256+A128KW", enc="A128GCM")
    header = jwe.unverified_header(token)
    assert header["p2c"] == 600_000
    assert len(b64decode(header["p2s"])) == 16
    other = jwe.unverified_header(
        jwe.encrypt(b"x", PASSWORD, alg="PBES2-HS256+A128KW", enc="A128GCM", headers={"p2c": P2C})
    )
    assert other["p2s"] != header["p2s"]  # a fresh salt every time


def test_gcm_key_wrap_header_members() -> None:
    token = jwe.encrypt(b"x", SECRETS[16], alg="A128GCMKW", enc="A128GCM")
    header = jwe.unverified_header(token)
    assert len(b64decode(header["iv"])) == 12
    assert len(b64decode(header["tag"])) == 16


@pytest.mark.parametrize("enc", list(ENCS))
def test_zip_deflate_round_trip(enc: str) -> None:
    text = b"compress me " * 200
    key = SECRETS[ENCS[enc]]
    token = jwe.encrypt(text, key, alg="dir", enc=enc, zip="DEF")
    plain = jwe.encrypt(text, key, alg="dir", enc=enc)
    assert jwe.unverified_header(token)["zip"] == "DEF"
    assert len(token) < len(plain) / 4
    assert jwe.decrypt(token, key, algorithms=["dir"], encryptions=[enc]) == text


def test_zip_is_raw_deflate() -> None:
    # RFC 7516 §4.1.3 names RFC 1951 DEFLATE: no zlib header, no checksum.
    from ostiary.jose._jwe_content import CONTENT_ENCRYPTION

    key = SECRETS[32]
    token = jwe.encrypt(PLAINTEXT, key, alg="dir", enc="A256GCM", zip="DEF")
    segment, _, iv, ciphertext, tag = token.split(".")
    body = CONTENT_ENCRYPTION["A256GCM"].decrypt(
        key, b64decode(iv), b64decode(ciphertext), b64decode(tag), segment.encode("ascii")
    )
    assert zlib.decompress(body, -zlib.MAX_WBITS) == PLAINTEXT


@pytest.mark.parametrize("plaintext", [b"", b"x", b"0123456789abcdef", bytes(range(256)) * 5])
@pytest.mark.parametrize("enc", ["A128CBC-HS256", "A256GCM"])
def test_plaintext_lengths(plaintext: bytes, enc: str) -> None:
    key = SECRETS[ENCS[enc]]
    token = jwe.encrypt(plaintext, key, alg="dir", enc=enc)
    assert jwe.decrypt(token, key, algorithms=["dir"], encryptions=[enc]) == plaintext


def test_bytearray_and_memoryview_plaintext() -> None:
    key = SECRETS[32]
    for data in (bytearray(PLAINTEXT), memoryview(PLAINTEXT)):
        token = jwe.encrypt(data, key, alg="dir", enc="A256GCM")  # type: ignore[arg-type]
        assert jwe.decrypt(token, key, algorithms=["dir"], encryptions=["A256GCM"]) == PLAINTEXT


def test_text_plaintext_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        jwe.encrypt("text", SECRETS[32], alg="dir", enc="A256GCM")  # type: ignore[arg-type]


def test_tokens_are_randomized() -> None:
    key = SECRETS[32]
    first = jwe.encrypt(PLAINTEXT, key, alg="dir", enc="A256GCM")
    second = jwe.encrypt(PLAINTEXT, key, alg="dir", enc="A256GCM")
    assert first.split(".")[0] == second.split(".")[0]
    assert first.split(".")[2] != second.split(".")[2]  # fresh IV
    assert first != second


# -- keys -----------------------------------------------------------------------------------


def test_key_kid_goes_into_the_header() -> None:
    key = jwk.JWK.from_secret(SECRETS[32], kid="k-2026")
    token = jwe.encrypt(PLAINTEXT, key, alg="dir", enc="A256GCM")
    assert jwe.unverified_header(token) == {"alg": "dir", "enc": "A256GCM", "kid": "k-2026"}
    override = jwe.encrypt(PLAINTEXT, key, alg="dir", enc="A256GCM", headers={"kid": "other"})
    assert jwe.unverified_header(override)["kid"] == "other"


def test_key_set_selects_by_kid() -> None:
    keys = jwk.JWKSet(
        [
            jwk.JWK.from_secret(SECRETS[16], kid="a"),
            jwk.JWK.from_secret(bytes(16), kid="b"),
        ]
    )
    token = jwe.encrypt(PLAINTEXT, keys.get("b"), alg="A128KW", enc="A128GCM")
    assert jwe.decrypt(token, keys, algorithms=["A128KW"], encryptions=["A128GCM"]) == PLAINTEXT
    stranger = jwe.encrypt(
        PLAINTEXT, jwk.JWK.from_secret(SECRETS[16], kid="c"), alg="A128KW", enc="A128GCM"
    )
    with pytest.raises(KeyNotFound):
        jwe.decrypt(stranger, keys, algorithms=["A128KW"], encryptions=["A128GCM"])


def test_key_set_without_kids_tries_each_key() -> None:
    right = key_of("RSA-2048")
    keys = jwk.JWKSet([key_of("RSA-2048", slot=1), right])
    token = jwe.encrypt(PLAINTEXT, right.public(), alg="RSA-OAEP-256", enc="A256GCM")
    call: dict[str, Any] = {"algorithms": ["RSA-OAEP-256"], "encryptions": ["A256GCM"]}
    assert jwe.decrypt(token, keys, **call) == PLAINTEXT
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(token, jwk.JWKSet([key_of("RSA-2048", slot=1)]), **call)


def test_encrypt_with_a_key_set_picks_a_fitting_key() -> None:
    ec_key = key_of("EC-P-256")
    keys = jwk.JWKSet([key_of("RSA-2048").public(), ec_key.public()])
    token = jwe.encrypt(PLAINTEXT, keys, alg="ECDH-ES", enc="A128GCM")
    assert jwe.decrypt(token, ec_key, algorithms=["ECDH-ES"], encryptions=["A128GCM"]) == PLAINTEXT
    with pytest.raises(KeyNotFound):
        jwe.encrypt(PLAINTEXT, keys, alg="A128KW", enc="A128GCM")


def test_every_key_form_is_accepted() -> None:
    private = key_of("RSA-2048")
    call: dict[str, Any] = {"algorithms": ["RSA-OAEP"], "encryptions": ["A128GCM"]}
    for enc_key in (private.public(), private.to_dict(), private.public_key()):
        token = jwe.encrypt(PLAINTEXT, enc_key, alg="RSA-OAEP", enc="A128GCM")
        for dec_key in (private, private.to_dict(private=True), private.private_key()):
            assert jwe.decrypt(token, dec_key, **call) == PLAINTEXT


def test_dir_key_may_name_its_content_algorithm() -> None:
    # RFC 7517 §4.4: `alg` may be an enc value for a key used directly as the CEK.
    for alg_member in ("dir", "A256GCM"):
        key = jwk.JWK.from_secret(SECRETS[32], alg=alg_member)
        token = jwe.encrypt(PLAINTEXT, key, alg="dir", enc="A256GCM")
        assert jwe.decrypt(token, key, algorithms=["dir"], encryptions=["A256GCM"]) == PLAINTEXT
        keys = jwk.JWKSet([key])
        assert jwe.decrypt(token, keys, algorithms=["dir"], encryptions=["A256GCM"]) == PLAINTEXT


def test_key_ops_that_allow_the_operation() -> None:
    private = with_members(key_of("RSA-2048"), use="enc", key_ops=["unwrapKey"])
    public = with_members(key_of("RSA-2048"), private=False, use="enc", key_ops=["wrapKey"])
    token = jwe.encrypt(PLAINTEXT, public, alg="RSA-OAEP", enc="A128GCM")
    assert jwe.decrypt(token, private, algorithms=["RSA-OAEP"], encryptions=["A128GCM"]) == (
        PLAINTEXT
    )


# -- headers --------------------------------------------------------------------------------


def test_extra_headers_are_protected() -> None:
    key = SECRETS[32]
    token = jwe.encrypt(
        PLAINTEXT, key, alg="dir", enc="A256GCM", headers={"typ": "JWT", "cty": "JWT"}
    )
    assert jwe.unverified_header(token) == {
        "alg": "dir",
        "enc": "A256GCM",
        "typ": "JWT",
        "cty": "JWT",
    }
    assert jwe.decrypt(token, key, algorithms=["dir"], encryptions=["A256GCM"]) == PLAINTEXT


@pytest.mark.parametrize("name", ["alg", "enc", "zip", "epk", "iv", "tag"])
def test_library_owned_header_names_cannot_be_set(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        jwe.encrypt(PLAINTEXT, SECRETS[32], alg="dir", enc="A256GCM", headers={name: "x"})


def test_decrypt_compact_returns_a_copy_of_the_header() -> None:
    from ostiary.jose import _jwe

    key = SECRETS[32]
    token = jwe.encrypt(PLAINTEXT, key, alg="dir", enc="A256GCM", headers={"cty": "JWT"})
    call: dict[str, Any] = {"algorithms": ["dir"], "encryptions": ["A256GCM"]}
    plaintext, header = _jwe.decrypt_compact(token, key, **call)
    assert plaintext == PLAINTEXT
    assert header == {"alg": "dir", "enc": "A256GCM", "cty": "JWT"}
    header["cty"] = "tampered"
    assert _jwe.decrypt_compact(token, key, **call)[1]["cty"] == "JWT"


def test_unverified_header_does_not_decrypt() -> None:
    token = jwe.encrypt(PLAINTEXT, SECRETS[32], alg="dir", enc="A256GCM")
    broken = token[: token.rindex(".") + 1] + "AAAAAAAAAAAAAAAAAAAAAA"
    assert jwe.unverified_header(broken) == {"alg": "dir", "enc": "A256GCM"}


def test_unknown_algorithms_on_encrypt() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        jwe.encrypt(PLAINTEXT, SECRETS[32], alg="dir", enc="A256CTR")
    with pytest.raises(UnsupportedAlgorithm):
        jwe.encrypt(PLAINTEXT, SECRETS[32], alg="A256CTRKW", enc="A256GCM")
    with pytest.raises(ValueError, match="DEF"):
        jwe.encrypt(PLAINTEXT, SECRETS[32], alg="dir", enc="A256GCM", zip="GZIP")


# -- JSON serializations --------------------------------------------------------------------


def test_general_json_with_several_recipients() -> None:
    rsa_key = with_members(key_of("RSA-2048"), kid="rsa")
    x25519 = with_members(key_of("OKP-X25519"), kid="x")
    secret = jwk.JWK.from_secret(SECRETS[32], kid="kw")
    obj = jwe.encrypt_json(
        PLAINTEXT,
        [
            (rsa_key.public(), "RSA-OAEP-256"),
            (x25519.public(), "ECDH-ES+A128KW", {"apu": "QWxpY2U"}),
            (secret, "A256KW"),
            (PASSWORD, "PBES2-HS256+A128KW", {"p2c": P2C}),
        ],
        enc="A256CBC-HS512",
        protected={"cty": "text/plain"},
        unprotected={"jku_hint": "unused"},
        aad=b"bound but not encrypted",
        zip="DEF",
    )
    assert json.loads(b64decode(obj["protected"])) == {
        "enc": "A256CBC-HS512",
        "zip": "DEF",
        "cty": "text/plain",
    }
    assert obj["unprotected"] == {"jku_hint": "unused"}
    assert [r["header"]["alg"] for r in obj["recipients"]] == [
        "RSA-OAEP-256",
        "ECDH-ES+A128KW",
        "A256KW",
        "PBES2-HS256+A128KW",
    ]
    assert [r["header"].get("kid") for r in obj["recipients"]] == ["rsa", "x", "kw", None]
    assert "epk" in obj["recipients"][1]["header"]
    encs = ["A256CBC-HS512"]
    for key, alg in (
        (rsa_key, "RSA-OAEP-256"),
        (x25519, "ECDH-ES+A128KW"),
        (secret, "A256KW"),
        (PASSWORD, "PBES2-HS256+A128KW"),
    ):
        assert jwe.decrypt_json(obj, key, algorithms=[alg], encryptions=encs) == PLAINTEXT
    as_text = json.dumps(obj)
    assert jwe.decrypt_json(as_text, secret, algorithms=["A256KW"], encryptions=encs) == PLAINTEXT
    assert (
        jwe.decrypt_json(as_text.encode(), secret, algorithms=["A256KW"], encryptions=encs)
        == PLAINTEXT
    )


def test_json_recipient_with_a_disallowed_alg_is_skipped() -> None:
    secret = SECRETS[16]
    obj = jwe.encrypt_json(
        PLAINTEXT,
        [(key_of("RSA-2048").public(), "RSA-OAEP"), (secret, "A128KW")],
        enc="A128GCM",
    )
    assert jwe.decrypt_json(obj, secret, algorithms=["A128KW"], encryptions=["A128GCM"]) == (
        PLAINTEXT
    )


def test_json_with_a_key_for_no_recipient() -> None:
    obj = jwe.encrypt_json(PLAINTEXT, [(SECRETS[16], "A128KW")], enc="A128GCM")
    with pytest.raises(DecryptionFailed):
        jwe.decrypt_json(obj, bytes(16), algorithms=["A128KW"], encryptions=["A128GCM"])
    with pytest.raises(JoseError):
        jwe.decrypt_json(obj, key_of("RSA-2048"), algorithms=["A128KW"], encryptions=["A128GCM"])


def test_flattened_json() -> None:
    private = key_of("EC-P-384")
    obj = jwe.encrypt_json(
        PLAINTEXT, [(private.public(), "ECDH-ES")], enc="A192GCM", flatten=True, aad=b"extra"
    )
    assert set(obj) == {"protected", "header", "aad", "iv", "ciphertext", "tag"}
    assert "encrypted_key" not in obj  # RFC 7516 §7.2.1: absent when empty
    assert jwe.decrypt_json(obj, private, algorithms=["ECDH-ES"], encryptions=["A192GCM"]) == (
        PLAINTEXT
    )


def test_json_aad_is_authenticated() -> None:
    obj = jwe.encrypt_json(PLAINTEXT, [(SECRETS[32], "dir")], enc="A256GCM", aad=b"v1")
    call: dict[str, Any] = {"algorithms": ["dir"], "encryptions": ["A256GCM"]}
    assert jwe.decrypt_json(obj, SECRETS[32], **call) == PLAINTEXT
    for change in ({"aad": "djI"}, {"aad": None}):
        tampered = {k: v for k, v in {**obj, **change}.items() if v is not None}
        with pytest.raises(DecryptionFailed):
            jwe.decrypt_json(tampered, SECRETS[32], **call)


def test_json_without_protected_header() -> None:
    # RFC 7516 §7.2.1 allows every header member to be unprotected; the AAD is then empty.
    from ostiary.jose._b64 import b64encode
    from ostiary.jose._jwe_content import CONTENT_ENCRYPTION

    iv, ciphertext, tag = CONTENT_ENCRYPTION["A128GCM"].encrypt(SECRETS[16], PLAINTEXT, b"")
    obj = {
        "unprotected": {"enc": "A128GCM"},
        "header": {"alg": "dir"},
        "iv": b64encode(iv),
        "ciphertext": b64encode(ciphertext),
        "tag": b64encode(tag),
    }
    assert jwe.decrypt_json(obj, SECRETS[16], algorithms=["dir"], encryptions=["A128GCM"]) == (
        PLAINTEXT
    )


def test_encrypt_json_argument_errors() -> None:
    secret = SECRETS[32]
    with pytest.raises(ValueError, match="recipient"):
        jwe.encrypt_json(PLAINTEXT, [], enc="A256GCM")
    with pytest.raises(ValueError, match="one recipient"):
        jwe.encrypt_json(
            PLAINTEXT, [(secret, "A256KW"), (secret, "A256KW")], enc="A256GCM", flatten=True
        )
    with pytest.raises(ValueError, match="dir"):
        jwe.encrypt_json(PLAINTEXT, [(secret, "dir"), (secret, "A256KW")], enc="A256GCM")
    with pytest.raises(ValueError, match="ECDH-ES"):
        ec_public = key_of("EC-P-256").public()
        jwe.encrypt_json(PLAINTEXT, [(ec_public, "ECDH-ES"), (secret, "A256KW")], enc="A256GCM")
    with pytest.raises(ValueError, match="more than one header"):
        jwe.encrypt_json(
            PLAINTEXT, [(secret, "A256KW", {"cty": "a"})], enc="A256GCM", protected={"cty": "b"}
        )
    with pytest.raises(TypeError):
        jwe.encrypt_json(PLAINTEXT, [secret], enc="A256GCM")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at most"):
        jwe.encrypt_json(PLAINTEXT, [(secret, "A256KW")] * 65, enc="A256GCM")
