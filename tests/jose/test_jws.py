"""JWS: compact, JSON (general and flattened), detached and unencoded payloads, key selection."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from keys import SIGNATURE_ALGS, key_for, with_members

from ostiary.jose import (
    BadSignature,
    InvalidHeader,
    InvalidKey,
    JoseError,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
    jws,
)
from ostiary.jose._b64 import b64decode, b64encode
from ostiary.jose.jwk import JWK, JWKSet

PAYLOAD = b'{"iss":"joe",\r\n "http://example.com/is_root":true}'
BAD_SIGNATURE_MESSAGE = "the signature is invalid"


def _segments(token: str) -> list[str]:
    return token.split(".")


def _header(token: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(b64decode(_segments(token)[0]))
    return result


def _with_header(token: str, **changes: Any) -> str:
    """The token with its protected header replaced (the signature no longer matches)."""
    header = _header(token) | changes
    _, payload, signature = _segments(token)
    return f"{b64encode(json.dumps(header).encode())}.{payload}.{signature}"


def _resign(header: dict[str, Any], payload: bytes, alg: str, key: JWK | None = None) -> str:
    """A token over exactly this header, signed as an attacker holding `key` would."""
    signing_input = f"{b64encode(json.dumps(header).encode())}.{b64encode(payload)}"
    raw = jws.SIGNATURE_ALGORITHMS[alg].sign(key or key_for(alg), signing_input.encode())
    return f"{signing_input}.{b64encode(raw)}"


def test_every_registered_algorithm_is_covered() -> None:
    assert set(jws.SIGNATURE_ALGORITHMS) == set(SIGNATURE_ALGS)
    assert "none" not in jws.SIGNATURE_ALGORITHMS


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_compact_round_trip(alg: str) -> None:
    key = key_for(alg)
    token = jws.sign(PAYLOAD, key, alg=alg)
    assert jws.verify(token, key, algorithms=[alg]) == PAYLOAD
    if not key.is_symmetric:
        assert jws.verify(token, key.public(), algorithms=[alg]) == PAYLOAD
    assert _header(token) == {"alg": alg}
    assert jws.unverified_header(token) == {"alg": alg}


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_compact_round_trip_with_key_in_every_form(alg: str) -> None:
    key = key_for(alg)
    token = jws.sign("text payload", key.to_dict(private=True), alg=alg)
    verifier: Any = key.secret() if key.is_symmetric else key.public_key()
    assert jws.verify(token.encode("ascii"), verifier, algorithms=[alg]) == b"text payload"
    public = key.to_dict(private=key.is_symmetric)
    assert jws.verify(token, public, algorithms=[alg]) == b"text payload"
    assert jws.verify(token, {"keys": [public]}, algorithms=[alg]) == b"text payload"


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_detached_round_trip(alg: str) -> None:
    key = key_for(alg)
    token = jws.sign(PAYLOAD, key, alg=alg, detached=True)
    assert _segments(token)[1] == ""
    assert jws.verify(token, key, algorithms=[alg], detached_payload=PAYLOAD) == PAYLOAD
    with pytest.raises(BadSignature):
        jws.verify(token, key, algorithms=[alg], detached_payload=PAYLOAD + b" ")
    with pytest.raises(BadSignature):
        jws.verify(token, key, algorithms=[alg])  # the empty payload is not the signed one


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_unencoded_payload_round_trip(alg: str) -> None:
    # RFC 7797: the payload is signed as is, and b64 must be critical.
    key = key_for(alg)
    token = jws.sign(b"$.02", key, alg=alg, b64=False, detached=True)
    header = _header(token)
    assert header["b64"] is False and header["crit"] == ["b64"]
    assert jws.verify(token, key, algorithms=[alg], detached_payload=b"$.02") == b"$.02"
    with pytest.raises(BadSignature):
        jws.verify(token, key, algorithms=[alg], detached_payload=b"$.03")
    attached = jws.sign(b"$02", key, alg=alg, b64=False)
    assert _segments(attached)[1] == "$02"
    assert jws.verify(attached, key, algorithms=[alg]) == b"$02"


def test_unencoded_attached_payload_with_dot_refused() -> None:
    with pytest.raises(ValueError):
        jws.sign(b"$.02", key_for("HS256"), alg="HS256", b64=False)


def test_unencoded_payload_keeps_caller_crit() -> None:
    token = jws.sign(b"x", key_for("HS256"), alg="HS256", b64=False, headers={"crit": ["b64"]})
    assert _header(token)["crit"] == ["b64"]


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_flattened_json_round_trip(alg: str) -> None:
    key = key_for(alg)
    obj = jws.sign_json(PAYLOAD, [(key, alg, {"kid": "k"}, {"note": "unprotected"})], flatten=True)
    assert set(obj) == {"payload", "protected", "header", "signature"}
    assert jws.verify_json(obj, key, algorithms=[alg]) == PAYLOAD
    assert jws.verify_json(json.dumps(obj), key, algorithms=[alg]) == PAYLOAD
    assert jws.verify_json(json.dumps(obj).encode(), key, algorithms=[alg]) == PAYLOAD
    payload, header = jws.verify_json_detailed(obj, key, algorithms=[alg])
    assert payload == PAYLOAD
    assert header == {"alg": alg, "kid": "k", "note": "unprotected"}


def test_general_json_with_every_algorithm() -> None:
    signers = [(key_for(alg), alg) for alg in SIGNATURE_ALGS]
    obj = jws.sign_json(PAYLOAD, signers)
    assert set(obj) == {"payload", "signatures"}
    assert len(obj["signatures"]) == len(SIGNATURE_ALGS)
    for alg in SIGNATURE_ALGS:
        # Each key verifies its own signature; the others are skipped, not fatal.
        assert jws.verify_json(obj, key_for(alg), algorithms=[alg]) == PAYLOAD
    everyone = [(alg, key_for(alg)) for alg in SIGNATURE_ALGS if alg.startswith(("ES", "Ed"))]
    keys = JWKSet([with_members(k, kid=a) for a, k in everyone])
    assert jws.verify_json(obj, keys, algorithms=[a for a, _ in everyone]) == PAYLOAD


@pytest.mark.parametrize("flatten", [False, True], ids=["general", "flattened"])
def test_detached_json_round_trip(flatten: bool) -> None:
    key = key_for("ES256")
    obj = jws.sign_json(PAYLOAD, [(key, "ES256")], flatten=flatten, detached=True)
    assert "payload" not in obj
    assert jws.verify_json(obj, key, algorithms=["ES256"], detached_payload=PAYLOAD) == PAYLOAD
    with pytest.raises(BadSignature):
        jws.verify_json(obj, key, algorithms=["ES256"], detached_payload=b"other")


def test_unencoded_json_round_trip() -> None:
    key = key_for("HS256")
    obj = jws.sign_json(b"$.02", [(key, "HS256", {"b64": False, "crit": ["b64"]}, None)])
    assert obj["payload"] == "$.02"
    assert jws.verify_json(obj, key, algorithms=["HS256"]) == b"$.02"


def test_general_json_one_good_signature_is_enough() -> None:
    good, other = key_for("ES256"), key_for("ES256", slot=1)
    obj = jws.sign_json(PAYLOAD, [(other, "ES256"), (good, "ES256")])
    assert jws.verify_json(obj, good, algorithms=["ES256"]) == PAYLOAD
    with pytest.raises(BadSignature):
        jws.verify_json(obj, key_for("ES256", slot=2), algorithms=["ES256"])


def test_sign_does_not_mutate_headers() -> None:
    headers = {"kid": "k", "crit": ["b64"]}
    jws.sign(b"x", key_for("HS256"), alg="HS256", headers=headers, b64=False)
    jws.sign(b"x", key_for("HS256"), alg="HS256", headers=headers | {"b64": False})
    assert headers == {"kid": "k", "crit": ["b64"]}


def test_key_kid_goes_into_the_header() -> None:
    key = with_members(key_for("EdDSA"), kid="2026-11")
    assert _header(jws.sign(b"x", key, alg="EdDSA"))["kid"] == "2026-11"
    token = jws.sign(b"x", key, alg="EdDSA", headers={"kid": "override", "typ": "x"})
    assert _header(token) == {"alg": "EdDSA", "kid": "override", "typ": "x"}


def test_alg_in_headers_must_match() -> None:
    with pytest.raises(ValueError):
        jws.sign(b"x", key_for("HS256"), alg="HS256", headers={"alg": "HS512"})


# -- tampering ----------------------------------------------------------------------------


def _flip_signature_bit(token: str) -> str:
    protected, payload, signature = _segments(token)
    raw = bytearray(b64decode(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{protected}.{payload}.{b64encode(bytes(raw))}"


def _replace_payload(token: str) -> str:
    protected, _, signature = _segments(token)
    return f"{protected}.{b64encode(PAYLOAD + b' ')}.{signature}"


def _truncate_signature(token: str) -> str:
    protected, payload, signature = _segments(token)
    return f"{protected}.{payload}.{b64encode(b64decode(signature)[:-1])}"


def _empty_signature(token: str) -> str:
    protected, payload, _ = _segments(token)
    return f"{protected}.{payload}."


def _extend_signature(token: str) -> str:
    protected, payload, signature = _segments(token)
    longer = b64encode(b64decode(signature) + bytes(1))
    return f"{protected}.{payload}.{longer}"


def _prepend_zero_to_signature(token: str) -> str:
    protected, payload, signature = _segments(token)
    longer = b64encode(bytes(1) + b64decode(signature))
    return f"{protected}.{payload}.{longer}"


TAMPERS: list[Any] = [
    pytest.param(lambda t: _with_header(t, typ="JWT"), id="header-member-added"),
    pytest.param(lambda t: _with_header(t, kid="k"), id="header-kid-added"),
    pytest.param(_replace_payload, id="payload"),
    pytest.param(_flip_signature_bit, id="signature-bit"),
    pytest.param(_truncate_signature, id="signature-truncated"),
    pytest.param(_extend_signature, id="signature-extended"),
    pytest.param(_prepend_zero_to_signature, id="signature-zero-prefixed"),
    pytest.param(_empty_signature, id="signature-empty"),
]


@pytest.mark.parametrize("tamper", TAMPERS)
@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_tampered_token_rejected_with_one_message(alg: str, tamper: Callable[[str], str]) -> None:
    key = key_for(alg)
    verifier = key if key.is_symmetric else key.public()
    bad = tamper(jws.sign(PAYLOAD, key, alg=alg))
    for keys in (verifier, JWKSet([verifier])):
        with pytest.raises(BadSignature) as info:
            jws.verify(bad, keys, algorithms=[alg])
        assert str(info.value) == BAD_SIGNATURE_MESSAGE


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_signature_from_another_key_rejected(alg: str) -> None:
    token = jws.sign(PAYLOAD, key_for(alg, slot=1), alg=alg)
    with pytest.raises(BadSignature) as info:
        jws.verify(token, key_for(alg), algorithms=[alg])
    assert str(info.value) == BAD_SIGNATURE_MESSAGE


@pytest.mark.parametrize("alg", ["HS256", "ES256", "EdDSA"])
def test_tampered_json_rejected_with_one_message(alg: str) -> None:
    key = key_for(alg)
    obj = jws.sign_json(PAYLOAD, [(key, alg)], flatten=True)
    variants = [
        obj | {"payload": b64encode(PAYLOAD + b" ")},
        obj | {"signature": _segments(_flip_signature_bit(f"a.b.{obj['signature']}"))[2]},
        obj | {"protected": b64encode(json.dumps({"alg": alg, "x": 1}).encode())},
    ]
    for bad in variants:
        with pytest.raises(BadSignature) as info:
            jws.verify_json(bad, key, algorithms=[alg])
        assert str(info.value) == BAD_SIGNATURE_MESSAGE


def test_unprotected_header_is_not_covered_but_cannot_change_alg() -> None:
    key = key_for("HS256")
    obj = jws.sign_json(PAYLOAD, [(key, "HS256")], flatten=True)
    with pytest.raises(InvalidHeader):
        jws.verify_json(obj | {"header": {"alg": "HS512"}}, key, algorithms=["HS256", "HS512"])


# -- ECDSA signature encoding -------------------------------------------------------------

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _es256_with_signature(signature: bytes) -> str:
    protected = b64encode(b'{"alg":"ES256"}')
    return f"{protected}.{b64encode(PAYLOAD)}.{b64encode(signature)}"


@pytest.mark.parametrize(
    ("r", "s"),
    [
        pytest.param(0, 0, id="psychic-zero-zero"),
        pytest.param(0, 1, id="r-zero"),
        pytest.param(1, 0, id="s-zero"),
        pytest.param(P256_N, P256_N, id="r-s-equal-order"),
        pytest.param(P256_N + 1, 1, id="r-above-order"),
    ],
)
def test_ecdsa_signature_out_of_range_rejected(r: int, s: int) -> None:
    # CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify.
    token = _es256_with_signature(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    with pytest.raises(BadSignature):
        jws.verify(token, key_for("ES256").public(), algorithms=["ES256"])


def test_ecdsa_der_signature_rejected() -> None:
    key = key_for("ES256")
    raw = b64decode(_segments(jws.sign(PAYLOAD, key, alg="ES256"))[2])
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    with pytest.raises(BadSignature):
        jws.verify(_es256_with_signature(der), key.public(), algorithms=["ES256"])


def test_ecdsa_signature_is_raw_r_s() -> None:
    for alg, size in (("ES256", 64), ("ES384", 96), ("ES512", 132), ("ES256K", 64)):
        assert len(b64decode(_segments(jws.sign(b"x", key_for(alg), alg=alg))[2])) == size


# -- algorithm allow-list and key binding -------------------------------------------------


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_alg_not_in_allowlist_rejected(alg: str) -> None:
    key = key_for(alg)
    token = jws.sign(PAYLOAD, key, alg=alg)
    others = [a for a in SIGNATURE_ALGS if a != alg]
    with pytest.raises(UnsupportedAlgorithm):
        jws.verify(token, key, algorithms=others)
    with pytest.raises(UnsupportedAlgorithm):
        jws.verify_json(jws.sign_json(PAYLOAD, [(key, alg)]), key, algorithms=others)


@pytest.mark.parametrize(
    "algorithms",
    [
        pytest.param("HS256", id="string"),
        pytest.param([], id="empty"),
        pytest.param(None, id="none"),
    ],
)
def test_allowlist_is_required(algorithms: Any) -> None:
    token = jws.sign(PAYLOAD, key_for("HS256"), alg="HS256")
    with pytest.raises(TypeError):
        jws.verify(token, key_for("HS256"), algorithms=algorithms)
    with pytest.raises(TypeError):
        jws.verify_json(
            jws.sign_json(PAYLOAD, [(key_for("HS256"), "HS256")]),
            key_for("HS256"),
            algorithms=algorithms,
        )


@pytest.mark.parametrize("name", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_never_accepted(name: str) -> None:
    header = b64encode(json.dumps({"alg": name}).encode())
    token = f"{header}.{b64encode(PAYLOAD)}."
    with pytest.raises(UnsupportedAlgorithm):
        jws.verify(token, key_for("HS256"), algorithms=[name])
    with pytest.raises(UnsupportedAlgorithm):
        jws.sign(PAYLOAD, key_for("HS256"), alg=name)


def test_alg_names_are_case_sensitive() -> None:
    token = _resign({"alg": "hs256"}, PAYLOAD, "HS256")
    with pytest.raises(UnsupportedAlgorithm):
        jws.verify(token, key_for("HS256"), algorithms=["hs256", "HS256"])


def test_hmac_token_signed_with_public_key_pem_rejected() -> None:
    # CVE-2015-9235 / CVE-2016-10555 / CVE-2022-29217: the attacker signs HS256 with the
    # verifier's public key bytes as the secret and hopes the verifier uses them that way.
    rsa_key = key_for("RS256")
    for public_bytes in (rsa_key.to_pem(), rsa_key.to_der(), rsa_key.to_json().encode()):
        forged = _resign({"alg": "HS256"}, PAYLOAD, "HS256", JWK("oct", secret=public_bytes))
        with pytest.raises(InvalidKey):
            jws.verify(forged, rsa_key.public(), algorithms=["RS256", "HS256"])
        with pytest.raises(InvalidKey):
            jws.verify(forged, public_bytes, algorithms=["RS256", "HS256"])
        with pytest.raises(KeyNotFound):
            jws.verify(forged, JWKSet([rsa_key.public()]), algorithms=["RS256", "HS256"])


@pytest.mark.parametrize(
    ("token_alg", "key_alg"),
    [
        ("HS256", "RS256"),
        ("RS256", "ES256"),
        ("ES256", "EdDSA"),
        ("EdDSA", "ES256"),
        ("PS256", "HS256"),
        ("ES256", "HS256"),
    ],
)
def test_wrong_key_family_rejected(token_alg: str, key_alg: str) -> None:
    token = jws.sign(PAYLOAD, key_for(token_alg), alg=token_alg)
    with pytest.raises(InvalidKey):
        jws.verify(token, key_for(key_alg), algorithms=[token_alg])
    with pytest.raises(KeyNotFound):
        jws.verify(token, JWKSet([key_for(key_alg)]), algorithms=[token_alg])
    with pytest.raises(InvalidKey):
        jws.sign(PAYLOAD, key_for(key_alg), alg=token_alg)


@pytest.mark.parametrize(
    ("alg", "key_alg"),
    [("ES256", "ES384"), ("ES256K", "ES256"), ("Ed448", "Ed25519"), ("Ed25519", "Ed448")],
)
def test_wrong_curve_rejected(alg: str, key_alg: str) -> None:
    # The curve is part of the algorithm: a set holding only other curves has no key for it.
    token = jws.sign(PAYLOAD, key_for(alg), alg=alg)
    with pytest.raises((BadSignature, InvalidKey)):
        jws.verify(token, key_for(key_alg), algorithms=[alg])
    with pytest.raises(KeyNotFound):
        jws.verify(token, JWKSet([key_for(key_alg)]), algorithms=[alg])
    with pytest.raises(InvalidKey):
        jws.sign(PAYLOAD, key_for(key_alg), alg=alg)


@pytest.mark.parametrize(
    ("token_alg", "key_alg"),
    [("RS256", "PS256"), ("PS256", "RS256"), ("HS256", "HS512"), ("ES256", "ES256K")],
)
def test_key_alg_mismatch_rejected(token_alg: str, key_alg: str) -> None:
    # RFC 7517 §4.4: a key that names its algorithm is used with that algorithm only.
    key = with_members(key_for(token_alg), alg=key_alg)
    with pytest.raises(InvalidKey):
        jws.sign(PAYLOAD, key, alg=token_alg)
    token = jws.sign(PAYLOAD, key_for(token_alg), alg=token_alg)
    with pytest.raises(InvalidKey):
        jws.verify(token, key, algorithms=[token_alg])
    with pytest.raises(KeyNotFound):
        jws.verify(token, JWKSet([key]), algorithms=[token_alg])


def test_key_with_matching_alg_verifies() -> None:
    key = with_members(key_for("PS384"), alg="PS384")
    token = jws.sign(PAYLOAD, key, alg="PS384")
    assert jws.verify(token, key.public(), algorithms=["PS384"]) == PAYLOAD


def test_public_key_cannot_sign() -> None:
    with pytest.raises(InvalidKey):
        jws.sign(PAYLOAD, key_for("ES256").public(), alg="ES256")


def test_signing_with_a_set_needs_exactly_one_signing_key() -> None:
    one = JWKSet([key_for("ES256"), key_for("RS256").public()])
    token = jws.sign(PAYLOAD, one, alg="ES256")
    assert jws.verify(token, key_for("ES256"), algorithms=["ES256"]) == PAYLOAD
    with pytest.raises(InvalidKey):
        jws.sign(PAYLOAD, JWKSet([key_for("ES256"), key_for("ES256", slot=1)]), alg="ES256")


@pytest.mark.parametrize(("size", "ok"), [(31, False), (32, True)], ids=["31-bytes", "32-bytes"])
def test_hmac_secret_at_least_hash_length(size: int, ok: bool) -> None:
    key = JWK.from_secret(b"k" * size)
    if ok:
        token = jws.sign(PAYLOAD, key, alg="HS256")
        assert jws.verify(token, key, algorithms=["HS256"]) == PAYLOAD
    else:
        with pytest.raises(InvalidKey):
            jws.sign(PAYLOAD, key, alg="HS256")


def test_legacy_short_secret_verifies_but_never_signs() -> None:
    short = b"short secret"
    signing_input = b64encode(b'{"alg":"HS256"}') + "." + b64encode(PAYLOAD)
    tag = hmac.digest(short, signing_input.encode(), "sha256")
    token = f"{signing_input}.{b64encode(tag)}"
    with pytest.raises(InvalidKey):
        jws.verify(token, JWK.from_secret(short), algorithms=["HS256"])
    legacy = JWK.from_secret(short, legacy_short_secret=True)
    assert jws.verify(token, legacy, algorithms=["HS256"]) == PAYLOAD
    with pytest.raises(InvalidKey):
        jws.sign(PAYLOAD, legacy, alg="HS256")


def test_empty_secret_refused() -> None:
    with pytest.raises(InvalidKey):
        jws.sign(PAYLOAD, b"", alg="HS256")


def test_text_key_refused() -> None:
    with pytest.raises(TypeError):
        jws.sign(PAYLOAD, "secret" * 8, alg="HS256")


# -- key sets and kid ---------------------------------------------------------------------


def _es256_set() -> tuple[JWK, JWK, JWKSet]:
    a = with_members(key_for("ES256"), kid="a")
    b = with_members(key_for("ES256", slot=1), kid="b")
    return a, b, JWKSet([a.public(), b.public()])


def test_kid_selects_the_key() -> None:
    a, b, keys = _es256_set()
    assert jws.verify(jws.sign(b"1", a, alg="ES256"), keys, algorithms=["ES256"]) == b"1"
    assert jws.verify(jws.sign(b"2", b, alg="ES256"), keys, algorithms=["ES256"]) == b"2"


def test_unknown_kid_is_key_not_found() -> None:
    _, _, keys = _es256_set()
    stranger = with_members(key_for("ES256", slot=2), kid="c")
    with pytest.raises(KeyNotFound):
        jws.verify(jws.sign(b"x", stranger, alg="ES256"), keys, algorithms=["ES256"])


def test_kid_naming_the_wrong_key_is_bad_signature() -> None:
    _, _, keys = _es256_set()
    impostor = with_members(key_for("ES256", slot=2), kid="a")
    with pytest.raises(BadSignature):
        jws.verify(jws.sign(b"x", impostor, alg="ES256"), keys, algorithms=["ES256"])


def test_token_without_kid_tries_each_candidate() -> None:
    _, b, keys = _es256_set()
    token = jws.sign(b"x", key_for("ES256", slot=1), alg="ES256")
    assert "kid" not in _header(token)
    assert jws.verify(token, keys, algorithms=["ES256"]) == b"x"
    del b


def test_non_string_kid_rejected() -> None:
    _, _, keys = _es256_set()
    token = _resign({"alg": "ES256", "kid": ["a"]}, PAYLOAD, "ES256")
    with pytest.raises(InvalidHeader):
        jws.verify(token, keys, algorithms=["ES256"])


# -- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"alg": "HS256", "crit": ["exp"], "exp": 1}, id="crit-unknown-extension"),
        pytest.param({"alg": "HS256", "crit": []}, id="crit-empty"),
        pytest.param({"alg": "HS256", "crit": "b64", "b64": False}, id="crit-not-list"),
        pytest.param({"alg": "HS256", "crit": ["alg"]}, id="crit-registered-name"),
        pytest.param({"alg": "HS256", "crit": ["kid"], "kid": "a"}, id="crit-registered-kid"),
        pytest.param({"alg": "HS256", "crit": ["b64"]}, id="crit-absent-member"),
        pytest.param({"alg": "HS256", "crit": [1]}, id="crit-non-string"),
        pytest.param({"alg": "HS256", "crit": ["b64", "b64"], "b64": True}, id="crit-repeated"),
        pytest.param({"alg": "HS256", "b64": False}, id="b64-not-critical"),
        pytest.param({"alg": "HS256", "b64": "false", "crit": ["b64"]}, id="b64-not-bool"),
        pytest.param({"alg": "HS256", "jwk": {"kty": "oct", "k": "AAAA"}}, id="embedded-jwk"),
        pytest.param({"alg": "HS256", "jku": "https://attacker.example/jwks"}, id="jku"),
        pytest.param({"alg": "HS256", "x5u": "https://attacker.example/cert"}, id="x5u"),
        pytest.param({"alg": "HS256", "typ": 1}, id="typ-not-string"),
        pytest.param({"alg": "HS256", "cty": None}, id="cty-not-string"),
        pytest.param({"alg": ["HS256"]}, id="alg-not-string"),
        pytest.param({}, id="alg-missing"),
    ],
)
def test_invalid_header_rejected(header: dict[str, Any]) -> None:
    token = _resign(header, PAYLOAD, "HS256")
    with pytest.raises(InvalidHeader):
        jws.verify(token, key_for("HS256"), algorithms=["HS256"])
    protected = _segments(token)[0]
    flattened = {"protected": protected, "payload": b64encode(PAYLOAD), "signature": "AAAA"}
    with pytest.raises(InvalidHeader):
        jws.verify_json(flattened, key_for("HS256"), algorithms=["HS256"])


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"crit": ["exp"], "exp": 1}, id="crit-unknown"),
        pytest.param({"crit": ["alg"]}, id="crit-registered"),
    ],
)
def test_signing_with_invalid_crit_refused(headers: dict[str, Any]) -> None:
    with pytest.raises((InvalidHeader, ValueError)):
        jws.sign(PAYLOAD, key_for("HS256"), alg="HS256", headers=headers)


def test_embedded_key_is_never_used() -> None:
    # The attacker embeds their own key and signs with it: an x5c chain is not refused, but
    # it is never used to find the key either.
    attacker = key_for("ES256", slot=2)
    forged = _resign({"alg": "ES256", "x5c": ["MIIB"]}, PAYLOAD, "ES256", attacker)
    with pytest.raises(BadSignature):
        jws.verify(forged, key_for("ES256").public(), algorithms=["ES256"])


def test_b64_false_token_verified_as_b64_true_fails() -> None:
    key = key_for("HS256")
    token = jws.sign(b"YWJj", key, alg="HS256", b64=False)
    assert jws.verify(token, key, algorithms=["HS256"]) == b"YWJj"
    stripped = _with_header(token, b64=True)
    with pytest.raises(BadSignature):
        jws.verify(stripped, key, algorithms=["HS256"])


# -- JSON serialization rules -------------------------------------------------------------


def _flattened() -> dict[str, Any]:
    return jws.sign_json(PAYLOAD, [(key_for("HS256"), "HS256")], flatten=True)


def _general() -> dict[str, Any]:
    return jws.sign_json(PAYLOAD, [(key_for("HS256"), "HS256")])


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _general() | {"signature": _flattened()["signature"]}, id="both"),
        pytest.param(lambda: _general() | {"protected": _flattened()["protected"]}, id="both-p"),
        pytest.param(lambda: _general() | {"header": {"kid": "a"}}, id="both-header"),
        pytest.param(lambda: _general() | {"signatures": []}, id="no-signatures"),
        pytest.param(lambda: _general() | {"signatures": {}}, id="signatures-object"),
        pytest.param(lambda: {"payload": _general()["payload"]}, id="no-signature-at-all"),
        pytest.param(lambda: _flattened() | {"payload": 1}, id="payload-not-string"),
        pytest.param(
            lambda: {k: v for k, v in _flattened().items() if k != "payload"}, id="no-payload"
        ),
        pytest.param(lambda: _flattened() | {"signature": 1}, id="signature-not-string"),
        pytest.param(lambda: _flattened() | {"protected": 1}, id="protected-not-string"),
        pytest.param(lambda: _flattened() | {"header": "x"}, id="header-not-object"),
        pytest.param(lambda: _flattened() | {"signature": "AA=="}, id="signature-padded"),
        pytest.param(lambda: _general() | {"signatures": ["x"]}, id="signature-entry-string"),
        pytest.param(
            lambda: _general() | {"signatures": [_general()["signatures"][0] | {"x": 1}]},
            id="signature-entry-unknown-member",
        ),
    ],
)
def test_malformed_json_jws_rejected(make: Callable[[], dict[str, Any]]) -> None:
    with pytest.raises(MalformedToken):
        jws.verify_json(make(), key_for("HS256"), algorithms=["HS256"])


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param("{", id="truncated"),
        pytest.param("[]", id="array"),
        pytest.param('{"payload":"","payload":"","signature":""}', id="duplicate-member"),
        pytest.param(42, id="number"),
    ],
)
def test_malformed_json_text_rejected(obj: Any) -> None:
    with pytest.raises(MalformedToken):
        jws.verify_json(obj, key_for("HS256"), algorithms=["HS256"])


@pytest.mark.parametrize("name", ["alg", "kid", "typ"])
def test_header_member_in_both_protected_and_unprotected_rejected(name: str) -> None:
    # RFC 7515 §7.2.1: the header parameter names in the two headers must be disjoint.
    key = with_members(key_for("HS256"), kid="k")
    obj = jws.sign_json(PAYLOAD, [(key, "HS256", {"typ": "JWT"}, None)], flatten=True)
    value = {"alg": "HS256", "kid": "k", "typ": "JWT"}[name]
    with pytest.raises(InvalidHeader):
        jws.verify_json(obj | {"header": {name: value}}, key, algorithms=["HS256"])


def test_sign_json_refuses_overlapping_headers() -> None:
    # The caller's own arguments: a programmer mistake, so ValueError like the other ones.
    with pytest.raises(ValueError):
        jws.sign_json(PAYLOAD, [(key_for("HS256"), "HS256", {"kid": "a"}, {"kid": "b"})])


def test_crit_in_unprotected_header_rejected() -> None:
    obj = _flattened() | {"header": {"crit": ["x"], "x": 1}}
    with pytest.raises(InvalidHeader):
        jws.verify_json(obj, key_for("HS256"), algorithms=["HS256"])
    with pytest.raises(ValueError):
        jws.sign_json(PAYLOAD, [(key_for("HS256"), "HS256", None, {"crit": ["x"], "x": 1})])


def test_b64_in_unprotected_header_rejected() -> None:
    obj = _flattened() | {"header": {"b64": False}}
    with pytest.raises(InvalidHeader):
        jws.verify_json(obj, key_for("HS256"), algorithms=["HS256"])


def test_embedded_jwk_in_unprotected_header_rejected() -> None:
    obj = _flattened() | {"header": {"jwk": key_for("ES256").to_dict()}}
    with pytest.raises(InvalidHeader):
        jws.verify_json(obj, key_for("HS256"), algorithms=["HS256"])


def test_sign_json_argument_errors() -> None:
    key = key_for("HS256")
    with pytest.raises(ValueError):
        jws.sign_json(PAYLOAD, [])
    with pytest.raises(ValueError):
        jws.sign_json(PAYLOAD, [(key, "HS256"), (key, "HS256")], flatten=True)
    with pytest.raises(ValueError):
        jws.sign_json(PAYLOAD, [(key,)])
    with pytest.raises(ValueError):
        jws.sign_json(
            PAYLOAD, [(key, "HS256", {"b64": False, "crit": ["b64"]}, None), (key, "HS256")]
        )


def test_detached_payload_with_attached_payload_rejected() -> None:
    key = key_for("HS256")
    with pytest.raises(MalformedToken):
        jws.verify(
            jws.sign(PAYLOAD, key, alg="HS256"), key, algorithms=["HS256"], detached_payload=PAYLOAD
        )
    with pytest.raises(MalformedToken):
        jws.verify_json(_flattened(), key, algorithms=["HS256"], detached_payload=PAYLOAD)


# -- compact serialization rules ----------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: t.rsplit(".", 1)[0], id="two-parts"),
        pytest.param(lambda t: t + ".", id="four-parts"),
        pytest.param(lambda t: t + "....", id="seven-parts"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: t.replace(".", "", 1), id="missing-dot"),
        pytest.param(lambda t: t + "\u00e9", id="non-ascii"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t + "\n", id="trailing-newline"),
        pytest.param(lambda t: "=" + t, id="padding-in-header"),
        pytest.param(lambda t: json.dumps(_flattened()), id="json"),
    ],
)
def test_malformed_compact_rejected(make: Callable[[str], str]) -> None:
    token = jws.sign(PAYLOAD, key_for("HS256"), alg="HS256")
    with pytest.raises(MalformedToken):
        jws.verify(make(token), key_for("HS256"), algorithms=["HS256"])


def test_non_ascii_bytes_token_rejected() -> None:
    with pytest.raises(MalformedToken):
        jws.verify(b"\xff.\xff.\xff", key_for("HS256"), algorithms=["HS256"])


def test_oversized_token_rejected() -> None:
    key = key_for("HS256")
    token = jws.sign(b"x" * 300_000, key, alg="HS256")
    with pytest.raises(TokenTooLarge):
        jws.verify(token, key, algorithms=["HS256"])
    with pytest.raises(TokenTooLarge):
        jws.verify(token.encode(), key, algorithms=["HS256"])
    assert jws.verify(token, key, algorithms=["HS256"], max_size=len(token)) == b"x" * 300_000
    small = jws.sign(b"x", key, alg="HS256")
    with pytest.raises(TokenTooLarge):
        jws.verify(small, key, algorithms=["HS256"], max_size=len(small) - 1)
    with pytest.raises(TokenTooLarge):
        jws.unverified_header(small, max_size=len(small) - 1)
    obj = json.dumps(jws.sign_json(b"x" * 300_000, [(key, "HS256")]))
    with pytest.raises(TokenTooLarge):
        jws.verify_json(obj, key, algorithms=["HS256"])


def test_unverified_header_does_not_verify() -> None:
    token = _with_header(jws.sign(PAYLOAD, key_for("HS256"), alg="HS256"), kid="x")
    assert jws.unverified_header(token) == {"alg": "HS256", "kid": "x"}
    header = jws.unverified_header(token)
    header["alg"] = "changed"
    assert jws.unverified_header(token)["alg"] == "HS256"


@pytest.mark.parametrize("token", ["", "x", "W10.x.y", "!!!.a.b", "e30=.a.b"], ids=str)
def test_unverified_header_of_garbage_is_malformed(token: str) -> None:
    with pytest.raises(MalformedToken):
        jws.unverified_header(token)


def test_returned_header_cannot_poison_the_cache() -> None:
    key = key_for("HS256")
    token = jws.sign(PAYLOAD, key, alg="HS256")
    obj = jws.sign_json(PAYLOAD, [(key, "HS256")], flatten=True)
    _, header = jws.verify_json_detailed(obj, key, algorithms=["HS256"])
    header["alg"] = "HS512"
    assert jws.verify(token, key, algorithms=["HS256"]) == PAYLOAD


def test_errors_are_jose_errors() -> None:
    for cls in (BadSignature, InvalidHeader, InvalidKey, KeyNotFound, MalformedToken):
        assert issubclass(cls, JoseError)
    assert str(BadSignature()) == BAD_SIGNATURE_MESSAGE
