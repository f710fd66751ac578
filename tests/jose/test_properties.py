"""Properties (Hypothesis): round trips for every JWS algorithm, and parsers of untrusted
input (tokens, JSON serializations, JWKs, JWK Sets, PEM and DER) that only ever raise
`JoseError` subclasses.

Every test runs derandomized and without an example database, so CI sees the same examples
on every run; the budgets keep the whole file well under 30 seconds.
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
from keys import SIGNATURE_ALGS, key_for, key_of

from ostiary.jose import InvalidKey, JoseError, jws, jwt
from ostiary.jose._b64 import b64encode
from ostiary.jose.jwk import JWK, JWKSet

NOW = 1_800_000_000
EXP = NOW + 3600
REGISTERED_CLAIMS = frozenset({"exp", "nbf", "iat", "aud", "iss", "sub", "jti"})
B64URL = string.ascii_letters + string.digits + "-_"


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


ROUND_TRIP = _settings(25)
FUZZ = _settings(200)
FUZZ_SLOW = _settings(60)  # examples that sign or verify with RSA

# -- strategies ---------------------------------------------------------------------------

# Integers stay within 64 bits here; larger ones have their own property below.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
private_claims = st.dictionaries(
    st.text(max_size=10).filter(lambda name: name not in REGISTERED_CLAIMS),
    json_values,
    max_size=6,
)
b64_text = st.text(alphabet=B64URL, max_size=120)


def _canonical_b64(size: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return size.flatmap(lambda n: st.binary(min_size=n, max_size=n)).map(b64encode)


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_decode_encode_round_trip(alg: str) -> None:
    key = key_for(alg)
    verifier = key if key.is_symmetric else key.public()

    @ROUND_TRIP
    @given(claims=private_claims)
    def check(claims: dict[str, Any]) -> None:
        claims = {**claims, "exp": EXP}
        token = jwt.encode(claims, key, alg=alg)
        assert jwt.decode(token, verifier, algorithms=[alg], now=NOW) == claims

    check()


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_jws_compact_and_json_round_trip(alg: str) -> None:
    key = key_for(alg)

    @ROUND_TRIP
    @given(payload=st.binary(max_size=200), detached=st.booleans())
    def check(payload: bytes, detached: bool) -> None:
        token = jws.sign(payload, key, alg=alg, detached=detached)
        extra = {"detached_payload": payload} if detached else {}
        assert jws.verify(token, key, algorithms=[alg], **extra) == payload
        obj = jws.sign_json(payload, [(key, alg)], flatten=detached, detached=detached)
        assert jws.verify_json(obj, key, algorithms=[alg], **extra) == payload

    check()


@ROUND_TRIP
@given(
    big=st.one_of(
        st.integers(min_value=2**63, max_value=2**200),
        st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
    )
)
def test_integers_beyond_64_bits_survive_round_trip(big: int) -> None:
    # A claim is never silently turned into a (lossy) float on the way through.
    token = jwt.encode({"exp": EXP, "n": big}, key_for("HS256"), alg="HS256")
    claims = jwt.decode(token, key_for("HS256"), algorithms=["HS256"], now=NOW)
    assert claims["n"] == big
    assert type(claims["n"]) is int


# -- random input only ever raises JoseError ----------------------------------------------

hs_key = key_for("HS256")


def _only_jose_errors_from_token_parsers(token: str | bytes) -> None:
    for call in (
        lambda: jwt.decode(token, hs_key, algorithms=["HS256"], now=NOW),
        lambda: jws.verify(token, hs_key, algorithms=["HS256"]),
        lambda: jws.verify_json(token, hs_key, algorithms=["HS256"]),
        lambda: jwt.unverified_header(token),
        lambda: jws.unverified_header(token),
    ):
        with contextlib.suppress(JoseError):
            call()


@FUZZ
@given(token=st.binary(max_size=300))
def test_random_bytes_only_raise_jose_errors(token: bytes) -> None:
    _only_jose_errors_from_token_parsers(token)


@FUZZ
@given(token=st.text(max_size=300))
def test_random_text_only_raises_jose_errors(token: str) -> None:
    _only_jose_errors_from_token_parsers(token)


segment = st.one_of(
    b64_text,
    st.text(max_size=20),
    st.builds(lambda v: b64encode(json.dumps(v).encode()), json_values),
    st.builds(
        lambda v: b64encode(json.dumps(v).encode()),
        st.dictionaries(
            st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jwk", "cty", "x"]),
            json_values | st.sampled_from(["HS256", "ES256", "none", "b64"]),
            max_size=4,
        ),
    ),
)


@FUZZ
@given(parts=st.lists(segment, min_size=1, max_size=6))
def test_random_dotted_segments_only_raise_jose_errors(parts: list[str]) -> None:
    _only_jose_errors_from_token_parsers(".".join(parts))


@FUZZ
@given(
    obj=st.dictionaries(
        st.sampled_from(["payload", "protected", "header", "signature", "signatures", "x"]),
        json_values
        | segment
        | st.lists(
            st.dictionaries(
                st.sampled_from(["protected", "header", "signature"]),
                segment | json_values,
                max_size=3,
            ),
            max_size=3,
        ),
        max_size=5,
    )
)
def test_random_json_jws_only_raises_jose_errors(obj: dict[str, Any]) -> None:
    for candidate in (obj, json.dumps(obj)):
        with contextlib.suppress(JoseError):
            jws.verify_json(candidate, hs_key, algorithms=["HS256"])


# -- mutated valid tokens never verify ----------------------------------------------------

_MUTATION_ALPHABET = B64URL + ".=+/ \n\u00e9"


@st.composite
def mutations(draw: st.DrawFn, token: str) -> str:
    kind = draw(st.sampled_from(["replace", "insert", "delete", "swap", "truncate", "repeat"]))
    if kind == "swap":
        parts = token.split(".")
        i, j = draw(st.permutations(range(len(parts))))[:2]
        parts[i], parts[j] = parts[j], parts[i]
        return ".".join(parts)
    if kind == "repeat":
        parts = token.split(".")
        i = draw(st.integers(0, len(parts) - 1))
        return ".".join([*parts[: i + 1], parts[i], *parts[i + 1 :]])
    pos = draw(st.integers(0, len(token) - 1))
    if kind == "truncate":
        return token[:pos]
    if kind == "delete":
        return token[:pos] + token[pos + 1 :]
    char = draw(st.sampled_from(_MUTATION_ALPHABET))
    if kind == "insert":
        return token[:pos] + char + token[pos:]
    return token[:pos] + char + token[pos + 1 :]


@pytest.mark.parametrize("alg", ["HS256", "RS256", "PS256", "ES256", "ES512", "EdDSA", "Ed448"])
def test_mutated_token_never_verifies(alg: str) -> None:
    key = key_for(alg)
    verifier = key if key.is_symmetric else key.public()
    claims = {"sub": "u_123", "exp": EXP, "admin": False}
    token = jwt.encode(claims, key, alg=alg)

    @(FUZZ_SLOW if alg.startswith(("RS", "PS")) else FUZZ)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        mutated = data.draw(mutations(token))
        for call in (
            lambda: jwt.decode(mutated, verifier, algorithms=[alg], now=NOW),
            lambda: jws.verify(mutated, verifier, algorithms=[alg]),
        ):
            try:
                result = call()
            except JoseError:
                continue
            # Only the untouched token verifies: base64url, JSON and signatures each have
            # one spelling, so no other text may carry the same meaning.
            assert mutated == token, f"a mutated token verified: {mutated!r} -> {result!r}"
        with contextlib.suppress(JoseError):
            jwt.unverified_header(mutated)

    check()


# -- JWKs, JWK Sets, PEM and DER ----------------------------------------------------------

_MEMBER_NAMES = [
    "kty", "crv", "x", "y", "d", "n", "e", "p", "q", "dp", "dq", "qi", "oth", "k",
    "kid", "alg", "use", "key_ops", "ext",
]  # fmt: skip
_MEMBER_WORDS = [
    "RSA", "EC", "OKP", "oct", "P-256", "P-521", "secp256k1", "Ed25519", "X448",
    "sig", "enc", "AQAB", "AQ", "ES256", "",
]  # fmt: skip
_MEMBER_VALUES = st.one_of(
    st.sampled_from(_MEMBER_WORDS),
    st.lists(st.sampled_from(["sign", "verify", "encrypt", "wrapKey", "x", 1]), max_size=3),
    _canonical_b64(st.sampled_from([0, 1, 31, 32, 33, 56, 57, 66, 255, 256])),
    b64_text,
    json_values,
)
random_jwks = st.one_of(
    st.dictionaries(st.sampled_from(_MEMBER_NAMES), _MEMBER_VALUES, max_size=8),
    st.dictionaries(st.text(max_size=5), json_values, max_size=4),
    json_values,
)


_MANGLED_KEY_IDS = ["RSA-2048", "EC-P-256", "EC-P-521", "OKP-Ed25519", "OKP-X448", "oct-256"]


@st.composite
def near_valid_jwks(draw: st.DrawFn) -> dict[str, Any]:
    """A real key's JWK with some members replaced, dropped, or borrowed from another key."""
    key_id = draw(st.sampled_from(_MANGLED_KEY_IDS))
    data = key_of(key_id).to_dict(private=True)
    for name in draw(st.lists(st.sampled_from(sorted(data) + _MEMBER_NAMES), max_size=3)):
        if draw(st.booleans()):
            data.pop(name, None)
        else:
            data[name] = draw(_MEMBER_VALUES)
    return data


def _only_invalid_key(data: object) -> None:
    try:
        key = JWK.from_dict(data)  # type: ignore[arg-type]
    except InvalidKey:
        return
    # Whatever imports must export and import again as the same key.
    again = JWK.from_dict(key.to_dict(private=key.is_private))
    assert again == key
    assert again.thumbprint() == key.thumbprint()


@FUZZ
@given(data=random_jwks)
def test_random_jwk_dicts_only_raise_invalid_key(data: Any) -> None:
    _only_invalid_key(data)


@FUZZ
@given(data=near_valid_jwks())
def test_mangled_jwks_only_raise_invalid_key(data: dict[str, Any]) -> None:
    _only_invalid_key(data)


@FUZZ
@given(
    data=st.one_of(
        st.fixed_dictionaries({"keys": st.lists(random_jwks | near_valid_jwks(), max_size=3)}),
        random_jwks,
    ),
    strict=st.booleans(),
)
def test_random_jwk_sets_only_raise_invalid_key(data: Any, strict: bool) -> None:
    try:
        keys = JWKSet.from_dict(data, strict=strict)
    except InvalidKey:
        return
    assert len(keys) <= len(data["keys"])


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200), random_jwks.map(json.dumps)))
def test_random_jwk_json_only_raises_invalid_key(text: str | bytes) -> None:
    for parse in (JWK.from_json, JWKSet.from_json):
        with contextlib.suppress(InvalidKey):
            parse(text)


_PEM_LABELS = [
    "PRIVATE KEY", "PUBLIC KEY", "RSA PRIVATE KEY", "RSA PUBLIC KEY", "EC PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY", "CERTIFICATE", "OPENSSH PRIVATE KEY",
]  # fmt: skip


@st.composite
def pem_like(draw: st.DrawFn) -> bytes:
    label = draw(st.sampled_from(_PEM_LABELS)).encode()
    text = base64.encodebytes(draw(st.binary(max_size=300)))
    return b"-----BEGIN " + label + b"-----\n" + text + b"-----END " + label + b"-----\n"


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=400), pem_like()),
    password=st.none() | st.binary(min_size=1, max_size=8),
)
def test_random_pem_and_der_only_raise_invalid_key(data: bytes, password: bytes | None) -> None:
    for parse in (JWK.from_pem, JWK.from_der):
        with contextlib.suppress(InvalidKey):
            parse(data, password=password)


@FUZZ
@given(secret=st.binary(max_size=64))
def test_random_secrets_import_or_raise_invalid_key(secret: bytes) -> None:
    try:
        key = JWK.from_secret(secret)
    except InvalidKey:
        return
    assert key.secret() == secret
