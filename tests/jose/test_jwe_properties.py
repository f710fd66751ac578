"""JWE properties (Hypothesis): every alg/enc round-trips, and mutated or random tokens,
headers and JSON serializations only ever raise `JoseError` subclasses.

Runs derandomized and without an example database, like the other property tests.
"""

from __future__ import annotations

import base64
import contextlib
import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keys import key_of

from ostiary.jose import JoseError, jwe, jwk

ALGS = sorted(jwe.KEY_MANAGEMENT_ALGORITHMS)
ENCS = sorted(jwe.CONTENT_ENCRYPTION_ALGORITHMS)
ENCRYPTING = [alg for alg in ALGS if alg != "RSA1_5"]
PASSWORD = b"hunter2 but longer"
CEK_BYTES = {"A128GCM": 16, "A192GCM": 24, "A256GCM": 32}
CEK_BYTES |= {"A128CBC-HS256": 32, "A192CBC-HS384": 48, "A256CBC-HS512": 64}
B64URL = string.ascii_letters + string.digits + "-_"
# Cheap PBES2 both ways: mutated tokens may ask for more, the bound refuses them.
LIMITS: dict[str, Any] = {"max_pbes2_count": 2000}
ALLOW: dict[str, Any] = {"algorithms": ALGS, "encryptions": ENCS, **LIMITS}


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def keys_for(alg: str, enc: str) -> tuple[Any, Any, dict[str, Any] | None]:
    """(encryption key, decryption key, headers) for one alg/enc pair."""
    if alg.startswith("RSA"):
        return key_of("RSA-2048").public(), key_of("RSA-2048"), None
    if alg.startswith("ECDH"):
        return key_of("OKP-X25519").public(), key_of("OKP-X25519"), None
    if alg.startswith("PBES2"):
        return PASSWORD, PASSWORD, {"p2c": 1000}
    size = CEK_BYTES[enc] if alg == "dir" else int(alg[1:4]) // 8
    secret = bytes(range(7, 7 + size))
    return secret, secret, None


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ENCRYPTING)
@_settings(12)
@given(
    plaintext=st.binary(max_size=300),
    enc=st.sampled_from(ENCS),
    compress=st.booleans(),
)
def test_every_alg_and_enc_round_trips(
    alg: str, plaintext: bytes, enc: str, compress: bool
) -> None:
    enc_key, dec_key, headers = keys_for(alg, enc)
    zip_ = "DEF" if compress else None
    token = jwe.encrypt(plaintext, enc_key, alg=alg, enc=enc, headers=headers, zip=zip_)
    assert jwe.decrypt(token, dec_key, algorithms=[alg], encryptions=[enc]) == plaintext
    obj = jwe.encrypt_json(
        plaintext, [(enc_key, alg, headers)], enc=enc, zip=zip_, aad=plaintext[:7] or None
    )
    assert jwe.decrypt_json(obj, dec_key, algorithms=[alg], encryptions=[enc]) == plaintext


# -- mutated compact tokens -----------------------------------------------------------------

CORPUS_SPECS = [
    ("dir", "A256GCM", None),
    ("dir", "A128CBC-HS256", "DEF"),
    ("A128KW", "A192CBC-HS384", None),
    ("A256GCMKW", "A128GCM", None),
    ("RSA-OAEP-256", "A256GCM", None),
    ("ECDH-ES", "A256CBC-HS512", None),
    ("ECDH-ES+A192KW", "A192GCM", "DEF"),
    ("PBES2-HS384+A192KW", "A256GCM", None),
]


def _corpus() -> list[tuple[str, Any]]:
    out = []
    for alg, enc, zip_ in CORPUS_SPECS:
        enc_key, dec_key, headers = keys_for(alg, enc)
        token = jwe.encrypt(b'{"sub":"u_1"}', enc_key, alg=alg, enc=enc, headers=headers, zip=zip_)
        out.append((token, dec_key))
    return out


CORPUS = _corpus()
ALPHABET = B64URL + '.=+/ \x00\u00e9{}"'


@st.composite
def mutated_tokens(draw: st.DrawFn) -> tuple[str, Any]:
    token, key = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["replace", "delete", "insert", "segment", "splice"]))
        if kind == "segment":
            parts = token.split(".")
            other = draw(st.sampled_from(CORPUS))[0].split(".")
            index = draw(st.integers(min_value=0, max_value=len(parts) - 1))
            parts[index] = other[index % len(other)]
            token = ".".join(parts)
            continue
        if kind == "splice":
            cut = draw(st.integers(min_value=0, max_value=len(token)))
            token = token[:cut] + draw(st.sampled_from(CORPUS))[0][cut:]
            continue
        at = draw(st.integers(min_value=0, max_value=max(0, len(token) - 1)))
        if kind == "replace" and token:
            token = token[:at] + draw(st.sampled_from(ALPHABET)) + token[at + 1 :]
        elif kind == "delete":
            token = token[:at] + token[at + draw(st.integers(min_value=1, max_value=8)) :]
        else:
            token = token[:at] + draw(st.text(alphabet=ALPHABET, max_size=6)) + token[at:]
    return token, key


@_settings(300)
@given(case=mutated_tokens())
def test_mutated_compact_tokens_raise_only_jose_errors(case: tuple[str, Any]) -> None:
    token, key = case
    with contextlib.suppress(JoseError):
        assert isinstance(jwe.decrypt(token, key, **ALLOW), bytes)
    with contextlib.suppress(JoseError):
        jwe.unverified_header(token)


# -- random headers over real ciphertext ----------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.text(alphabet=B64URL, max_size=60)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)
HEADER_NAMES = ["alg", "enc", "zip", "kid", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c"]
HEADER_NAMES += ["crit", "jwk", "jku", "x5u", "cty", "typ", "b64"]


def _public_jwk_dicts() -> list[dict[str, Any]]:
    ids = ["EC-P-256", "EC-P-384", "EC-secp256k1", "OKP-X25519", "OKP-X448", "OKP-Ed25519"]
    return [key_of(key_id, slot=1).to_dict() for key_id in ids]


def _jwk_like() -> st.SearchStrategy[Any]:
    real = st.sampled_from(_public_jwk_dicts())
    return st.one_of(
        real,
        st.tuples(real, st.sampled_from(["x", "y", "crv", "kty", "d"]), json_values).map(
            lambda t: {**t[0], t[1]: t[2]}
        ),
    )


header_values = {
    "alg": st.sampled_from([*ALGS, "none", "HS256"]) | json_values,
    "enc": st.sampled_from([*ENCS, "A256CTR"]) | json_values,
    "zip": st.sampled_from(["DEF", "def", ""]) | json_values,
    "epk": _jwk_like() | json_values,
    "p2c": st.integers(min_value=-5, max_value=5000) | json_values,
}


@st.composite
def headers(draw: st.DrawFn) -> dict[str, Any]:
    header: dict[str, Any] = {
        "alg": draw(st.sampled_from(ALGS)),
        "enc": draw(st.sampled_from(ENCS)),
    }
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=5, unique=True)):
        header[name] = draw(header_values.get(name, json_values))
    return header


@_settings(300)
@given(header=headers(), case=st.sampled_from(CORPUS), key_index=st.integers(0, len(CORPUS) - 1))
def test_random_headers_raise_only_jose_errors(
    header: dict[str, Any], case: tuple[str, Any], key_index: int
) -> None:
    token, _ = case
    segment = b64u(json.dumps(header, separators=(",", ":")).encode())
    forged = segment + token[token.index(".") :]
    key = CORPUS[key_index][1]
    with contextlib.suppress(JoseError):
        jwe.decrypt(forged, key, **ALLOW)


# -- mutated JSON serializations ------------------------------------------------------------

JSON_MEMBERS = ["protected", "unprotected", "header", "recipients", "encrypted_key", "aad"]
JSON_MEMBERS += ["iv", "ciphertext", "tag"]
RECIPIENT_KEYS = [key_of("RSA-2048"), key_of("OKP-X25519"), bytes(range(7, 39))]


def _json_corpus() -> list[dict[str, Any]]:
    general = jwe.encrypt_json(
        b"payload",
        [
            (RECIPIENT_KEYS[0].public(), "RSA-OAEP", {"kid": "r"}),
            (RECIPIENT_KEYS[1].public(), "ECDH-ES+A128KW"),
            (RECIPIENT_KEYS[2], "A256KW"),
        ],
        enc="A128CBC-HS256",
        unprotected={"cty": "x"},
        aad=b"aad",
        zip="DEF",
    )
    flat = jwe.encrypt_json(
        b"payload", [(RECIPIENT_KEYS[2], "A256GCMKW")], enc="A256GCM", flatten=True
    )
    return [general, flat]


JSON_CORPUS = _json_corpus()


@st.composite
def mutated_json(draw: st.DrawFn) -> Any:
    obj = json.loads(json.dumps(draw(st.sampled_from(JSON_CORPUS))))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        target = obj
        if "recipients" in obj and isinstance(obj["recipients"], list) and draw(st.booleans()):
            recipients = obj["recipients"]
            if recipients and isinstance(recipients[0], dict):
                target = recipients[draw(st.integers(0, len(recipients) - 1))]
                if isinstance(target.get("header"), dict) and draw(st.booleans()):
                    target = target["header"]
        if not isinstance(target, dict):
            break
        name = draw(st.sampled_from(JSON_MEMBERS + HEADER_NAMES))
        action = draw(st.sampled_from(["set", "delete", "tweak"]))
        if action == "delete":
            target.pop(name, None)
        elif action == "tweak" and isinstance(target.get(name), str) and target[name]:
            text = target[name]
            at = draw(st.integers(0, len(text) - 1))
            target[name] = text[:at] + draw(st.sampled_from(ALPHABET)) + text[at + 1 :]
        else:
            target[name] = draw(header_values.get(name, json_values))
    if draw(st.booleans()):
        return json.dumps(obj)
    return obj


@_settings(250)
@given(obj=mutated_json(), key=st.sampled_from(RECIPIENT_KEYS))
def test_mutated_json_raises_only_jose_errors(obj: Any, key: Any) -> None:
    with contextlib.suppress(JoseError):
        assert isinstance(jwe.decrypt_json(obj, key, **ALLOW), bytes)


@_settings(200)
@given(text=st.text(max_size=200) | json_values.map(json.dumps))
def test_random_json_text_raises_only_jose_errors(text: str) -> None:
    with contextlib.suppress(JoseError):
        jwe.decrypt_json(text, RECIPIENT_KEYS[2], **ALLOW)


def test_the_fuzz_corpus_is_valid() -> None:
    # The mutations start from tokens that do decrypt, or they would prove little.
    for token, key in CORPUS:
        assert jwe.decrypt(token, key, **ALLOW) == b'{"sub":"u_1"}'
    for obj in JSON_CORPUS:
        for key in RECIPIENT_KEYS[2:] if "header" in obj else RECIPIENT_KEYS:
            assert jwe.decrypt_json(obj, key, **ALLOW) == b"payload"
    assert isinstance(jwk.JWK.from_dict(_public_jwk_dicts()[0]), jwk.JWK)
