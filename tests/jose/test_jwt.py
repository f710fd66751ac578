"""JWT: encode/decode, claims validation boundaries, typ, nested (signed then encrypted) JWTs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from keys import SIGNATURE_ALGS, key_for, key_of, with_members

from ostiary.jose import (
    BadSignature,
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaims,
    InvalidHeader,
    InvalidIssuer,
    InvalidKey,
    InvalidType,
    JoseError,
    KeyNotFound,
    MalformedToken,
    MissingClaim,
    TokenTooLarge,
    UnsupportedAlgorithm,
    jws,
    jwt,
)
from ostiary.jose._b64 import b64decode, b64encode
from ostiary.jose.jwk import JWK, JWKSet

NOW = 1_800_000_000
ISSUER = "https://issuer.example"


def _hs256(claims: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(claims, key_for("HS256"), alg="HS256", headers=headers or None)


def _decode(token: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("now", NOW)
    return jwt.decode(token, key_for("HS256"), algorithms=["HS256"], **kwargs)


def _raw_token(payload: bytes, header: bytes = b'{"alg":"HS256","typ":"JWT"}') -> str:
    """An HS256 token over exactly these payload bytes (claims a caller could not encode)."""
    signing_input = f"{b64encode(header)}.{b64encode(payload)}"
    tag = jws.SIGNATURE_ALGORITHMS["HS256"].sign(key_for("HS256"), signing_input.encode())
    return f"{signing_input}.{b64encode(tag)}"


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", SIGNATURE_ALGS)
def test_round_trip(alg: str) -> None:
    key = key_for(alg)
    claims = {"sub": "u_123", "exp": NOW + 60, "scope": "read write", "n": [1, 2.5, None]}
    token = jwt.encode(claims, key, alg=alg)
    verifier = key if key.is_symmetric else key.public()
    assert jwt.decode(token, verifier, algorithms=[alg], now=NOW) == claims
    assert jwt.unverified_header(token) == {"alg": alg, "typ": "JWT"}


def test_headers_extend_and_override_defaults() -> None:
    key = with_members(key_for("ES256"), kid="2026-11")
    token = jwt.encode({"exp": NOW + 1}, key, alg="ES256", headers={"typ": "at+jwt", "x": 1})
    assert jwt.unverified_header(token) == {
        "alg": "ES256",
        "typ": "at+jwt",
        "kid": "2026-11",
        "x": 1,
    }
    assert jwt.decode(token, JWKSet([key.public()]), algorithms=["ES256"], now=NOW, typ="at+jwt")


def test_encode_does_not_mutate_claims() -> None:
    exp = datetime.fromtimestamp(NOW + 60, UTC)
    claims: dict[str, Any] = {"exp": exp, "nested": {"a": [1]}}
    jwt.encode(claims, key_for("HS256"), alg="HS256")
    assert claims == {"exp": exp, "nested": {"a": [1]}}


def test_decode_returns_a_fresh_dict() -> None:
    token = _hs256({"exp": NOW + 60, "a": 1})
    first = _decode(token)
    first["a"] = 2
    assert _decode(token)["a"] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(datetime.fromtimestamp(NOW + 60, UTC), NOW + 60, id="utc"),
        pytest.param(
            datetime.fromtimestamp(NOW + 60, timezone(timedelta(hours=-5))), NOW + 60, id="offset"
        ),
        pytest.param(datetime.fromtimestamp(NOW + 60.9, UTC), NOW + 60, id="fraction-dropped"),
        pytest.param(NOW + 60.5, NOW + 60.5, id="float"),
    ],
)
def test_datetime_claims_become_numeric_dates(value: Any, expected: float) -> None:
    token = _hs256({"exp": value, "nbf": value, "iat": datetime.fromtimestamp(NOW, UTC)})
    payload = json.loads(b64decode(token.split(".")[1]))
    assert payload == {"exp": expected, "nbf": expected, "iat": NOW}
    assert _decode(token, now=expected - 1, leeway=1)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(datetime(2027, 1, 1), id="naive-datetime"),
        pytest.param("1800000000", id="string"),
        pytest.param(True, id="bool"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="infinity"),
        pytest.param([NOW], id="list"),
    ],
)
@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
def test_encode_refuses_bad_time_claims(name: str, value: Any) -> None:
    with pytest.raises(ValueError):
        jwt.encode({"exp": NOW + 60, name: value}, key_for("HS256"), alg="HS256")


def test_encode_argument_errors() -> None:
    key = key_for("HS256")
    with pytest.raises(TypeError):
        jwt.encode([("exp", NOW)], key, alg="HS256")  # type: ignore[arg-type]
    with pytest.raises(UnsupportedAlgorithm):
        jwt.encode({"exp": NOW}, key, alg="none")
    with pytest.raises(ValueError):
        jwt.encode({"exp": NOW}, key, alg="HS256", enc="A256GCM")
    with pytest.raises(ValueError):
        jwt.encode({"exp": NOW}, key, alg="HS256", encrypt_key=key_of("oct-256"))


def test_encode_refuses_unserializable_claims() -> None:
    with pytest.raises(TypeError):
        _hs256({"exp": NOW + 1, "x": object()})
    with pytest.raises((TypeError, ValueError)):
        _hs256({"exp": NOW + 1, "x": float("nan")})


# -- exp, nbf, iat ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exp_delta", "leeway", "ok"),
    [
        pytest.param(-1, 0, False, id="past"),
        pytest.param(0, 0, False, id="exp-equals-now-is-expired"),  # RFC 7519 §4.1.4
        pytest.param(1, 0, True, id="one-second-left"),
        pytest.param(0, 1, True, id="now-within-leeway"),
        pytest.param(-1, 1, False, id="leeway-boundary"),
        pytest.param(-1, 2, True, id="past-within-leeway"),
        pytest.param(-60, 30, False, id="past-beyond-leeway"),
        pytest.param(0.5, 0, True, id="fractional-future"),
        pytest.param(-0.5, 0, False, id="fractional-past"),
    ],
)
def test_exp_boundary(exp_delta: float, leeway: float, ok: bool) -> None:
    token = _hs256({"exp": NOW + exp_delta})
    if ok:
        assert _decode(token, leeway=leeway)["exp"] == NOW + exp_delta
    else:
        with pytest.raises(ExpiredToken) as info:
            _decode(token, leeway=leeway)
        assert info.value.claim == "exp"


@pytest.mark.parametrize(
    ("nbf_delta", "leeway", "ok"),
    [
        pytest.param(-1, 0, True, id="past"),
        pytest.param(0, 0, True, id="nbf-equals-now-is-valid"),  # RFC 7519 §4.1.5
        pytest.param(1, 0, False, id="one-second-early"),
        pytest.param(1, 1, True, id="early-within-leeway"),
        pytest.param(2, 1, False, id="early-beyond-leeway"),
        pytest.param(0.5, 0, False, id="fractional-early"),
    ],
)
def test_nbf_boundary(nbf_delta: float, leeway: float, ok: bool) -> None:
    token = _hs256({"exp": NOW + 600, "nbf": NOW + nbf_delta})
    if ok:
        assert _decode(token, leeway=leeway)
    else:
        with pytest.raises(ImmatureToken) as info:
            _decode(token, leeway=leeway)
        assert info.value.claim == "nbf"


@pytest.mark.parametrize(
    ("iat_delta", "leeway", "ok"),
    [
        pytest.param(-600, 0, True, id="past"),
        pytest.param(0, 0, True, id="now"),
        pytest.param(1, 0, False, id="issued-in-the-future"),
        pytest.param(1, 1, True, id="future-within-leeway"),
        pytest.param(2, 1, False, id="future-beyond-leeway"),
    ],
)
def test_iat_boundary(iat_delta: int, leeway: int, ok: bool) -> None:
    token = _hs256({"exp": NOW + 600, "iat": NOW + iat_delta})
    if ok:
        assert _decode(token, leeway=leeway)
    else:
        with pytest.raises(ImmatureToken) as info:
            _decode(token, leeway=leeway)
        assert info.value.claim == "iat"


@pytest.mark.parametrize(
    ("age", "max_age", "leeway", "ok"),
    [
        pytest.param(99, 100, 0, True, id="younger"),
        pytest.param(100, 100, 0, True, id="exactly-max-age"),
        pytest.param(101, 100, 0, False, id="older"),
        pytest.param(101, 100, 1, True, id="older-within-leeway"),
        pytest.param(102, 100, 1, False, id="older-beyond-leeway"),
    ],
)
def test_max_age_boundary(age: int, max_age: int, leeway: int, ok: bool) -> None:
    token = _hs256({"exp": NOW + 600, "iat": NOW - age})
    if ok:
        assert _decode(token, max_age=max_age, leeway=leeway)
    else:
        with pytest.raises(ExpiredToken):
            _decode(token, max_age=max_age, leeway=leeway)


def test_max_age_needs_iat() -> None:
    with pytest.raises(MissingClaim) as info:
        _decode(_hs256({"exp": NOW + 600}), max_age=100)
    assert info.value.claim == "iat"


def test_missing_exp_rejected_unless_waived() -> None:
    token = _hs256({"sub": "u"})
    with pytest.raises(MissingClaim) as info:
        _decode(token)
    assert info.value.claim == "exp"
    assert _decode(token, require_exp=False) == {"sub": "u"}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"exp":"1900000000"}', id="string"),
        pytest.param(b'{"exp":true}', id="bool"),
        pytest.param(b'{"exp":null}', id="null"),
        pytest.param(b'{"exp":[1900000000]}', id="list"),
        pytest.param(b'{"exp":{"t":1900000000}}', id="object"),
        pytest.param(b'{"exp":1e999}', id="overflows-to-infinity"),
        pytest.param(b'{"exp":1900000000,"nbf":"0"}', id="nbf-string"),
        pytest.param(b'{"exp":1900000000,"iat":false}', id="iat-bool"),
        pytest.param(b'{"exp":1900000000,"nbf":-1e999}', id="nbf-minus-infinity"),
    ],
)
def test_time_claims_must_be_finite_numbers(payload: bytes) -> None:
    with pytest.raises(InvalidClaims):
        _decode(_raw_token(payload), require_exp=False)


def test_negative_leeway_refused() -> None:
    with pytest.raises(ValueError):
        _decode(_hs256({"exp": NOW + 60}), leeway=-1)


def test_wall_clock_is_the_default() -> None:
    token = _hs256({"exp": 2**40})
    assert jwt.decode(token, key_for("HS256"), algorithms=["HS256"])["exp"] == 2**40
    expired = _hs256({"exp": 1})
    with pytest.raises(ExpiredToken):
        jwt.decode(expired, key_for("HS256"), algorithms=["HS256"])


# -- aud ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aud", "audience", "error"),
    [
        pytest.param("billing", "billing", None, id="string-match"),
        pytest.param(["a", "billing"], "billing", None, id="list-contains"),
        pytest.param("billing", ["other", "billing"], None, id="accepted-list"),
        pytest.param(["a", "b"], ("x", "b"), None, id="list-and-accepted-tuple"),
        pytest.param("billing", "billing2", InvalidAudience, id="no-match"),
        pytest.param("bill", "billing", InvalidAudience, id="substring-of-expected"),
        pytest.param("billing", "bill", InvalidAudience, id="expected-is-substring"),
        pytest.param(["bill", "ing"], "billing", InvalidAudience, id="pieces"),
        pytest.param("Billing", "billing", InvalidAudience, id="case-differs"),
        pytest.param([], "billing", InvalidAudience, id="empty-list"),
        pytest.param([], None, InvalidAudience, id="empty-list-no-audience"),
        pytest.param(123, "123", InvalidAudience, id="number"),
        pytest.param(["billing", 1], "billing", InvalidAudience, id="list-with-number"),
        pytest.param([["billing"]], "billing", InvalidAudience, id="nested-list"),
        pytest.param({"billing": True}, "billing", InvalidAudience, id="object"),
        pytest.param(None, "billing", InvalidAudience, id="null"),
        pytest.param("billing", None, InvalidAudience, id="aud-present-no-audience"),
    ],
)
def test_audience(aud: Any, audience: Any, error: type[Exception] | None) -> None:
    token = _hs256({"exp": NOW + 60, "aud": aud})
    if error is None:
        assert _decode(token, audience=audience)["aud"] == aud
    else:
        with pytest.raises(error):
            _decode(token, audience=audience)


def test_audience_required_when_expected() -> None:
    with pytest.raises(MissingClaim) as info:
        _decode(_hs256({"exp": NOW + 60}), audience="billing")
    assert info.value.claim == "aud"


# -- iss, sub, jti ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iss", "ok"),
    [
        pytest.param(ISSUER, True, id="exact"),
        pytest.param(ISSUER + "/", False, id="trailing-slash"),
        pytest.param(ISSUER[:-1], False, id="prefix"),
        pytest.param("issuer", False, id="substring"),  # PyJWT CVE-2024-53861
        pytest.param(ISSUER + ".evil", False, id="suffix-domain"),
        pytest.param(ISSUER.upper(), False, id="case"),
        pytest.param("", False, id="empty"),
    ],
)
def test_issuer_exact_match(iss: str, ok: bool) -> None:
    token = _hs256({"exp": NOW + 60, "iss": iss})
    if ok:
        assert _decode(token, issuer=ISSUER)["iss"] == iss
    else:
        with pytest.raises(InvalidIssuer):
            _decode(token, issuer=ISSUER)


def test_issuer_from_a_list() -> None:
    token = _hs256({"exp": NOW + 60, "iss": ISSUER})
    assert _decode(token, issuer=["https://a.example", ISSUER])
    with pytest.raises(InvalidIssuer):
        _decode(token, issuer=["https://a.example"])


@pytest.mark.parametrize("iss", [1, ["https://issuer.example"], None], ids=["int", "list", "null"])
def test_issuer_must_be_a_string(iss: Any) -> None:
    token = _hs256({"exp": NOW + 60, "iss": iss})
    with pytest.raises(InvalidClaims):
        _decode(token, issuer=ISSUER)


def test_issuer_required_when_expected() -> None:
    with pytest.raises(MissingClaim) as info:
        _decode(_hs256({"exp": NOW + 60}), issuer=ISSUER)
    assert info.value.claim == "iss"


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        pytest.param({"sub": "u_123"}, None, id="match"),
        pytest.param({"sub": "u_1234"}, InvalidClaims, id="different"),
        pytest.param({"sub": "u_12"}, InvalidClaims, id="prefix"),
        pytest.param({}, MissingClaim, id="missing"),
        pytest.param({"sub": 123}, InvalidClaims, id="not-string"),
    ],
)
def test_subject(claims: dict[str, Any], error: type[Exception] | None) -> None:
    token = _hs256({"exp": NOW + 60, **claims})
    if error is None:
        assert _decode(token, subject="u_123")["sub"] == "u_123"
    else:
        with pytest.raises(error):
            _decode(token, subject="u_123")


@pytest.mark.parametrize(
    ("claims", "required", "ok"),
    [
        pytest.param({"jti": "id-1"}, ("jti",), True, id="present"),
        pytest.param({}, ("jti",), False, id="missing"),
        pytest.param({"jti": "id-1", "sub": "u"}, ("jti", "sub"), True, id="several"),
        pytest.param({"jti": "id-1"}, ("jti", "sub"), False, id="one-missing"),
        pytest.param({"jti": None}, ("jti",), False, id="null-is-not-a-jti"),
    ],
)
def test_required_claims(claims: dict[str, Any], required: tuple[str, ...], ok: bool) -> None:
    token = _hs256({"exp": NOW + 60, **claims})
    if ok:
        assert _decode(token, required=required)
    else:
        with pytest.raises(InvalidClaims):
            _decode(token, required=required)


@pytest.mark.parametrize("claim", ["jti", "sub"])
def test_string_claims_must_be_strings(claim: str) -> None:
    with pytest.raises(InvalidClaims) as info:
        _decode(_hs256({"exp": NOW + 60, claim: 7}))
    assert info.value.claim == claim


# -- typ ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header_typ", "expected", "ok"),
    [
        pytest.param("at+jwt", "at+jwt", True, id="exact"),
        pytest.param("AT+JWT", "at+jwt", True, id="case-insensitive"),
        pytest.param("application/at+jwt", "at+jwt", True, id="application-prefix-in-token"),
        pytest.param("at+jwt", "application/at+jwt", True, id="application-prefix-expected"),
        pytest.param("Application/AT+JWT", "at+jwt", True, id="prefix-case-insensitive"),
        pytest.param("JWT", "at+jwt", False, id="plain-jwt"),
        pytest.param("at+jwt ", "at+jwt", False, id="trailing-space"),
        pytest.param("text/at+jwt", "at+jwt", False, id="other-media-type"),
        pytest.param("application/x/at+jwt", "at+jwt", False, id="nested-slash"),
        pytest.param("dpop+jwt", "at+jwt", False, id="other-type"),
        pytest.param(None, "at+jwt", False, id="missing"),
    ],
)
def test_typ(header_typ: str | None, expected: str, ok: bool) -> None:
    headers = {"typ": header_typ} if header_typ is not None else {}
    key = key_for("HS256")
    if header_typ is None:
        token = _raw_token(b'{"exp":1900000000}', b'{"alg":"HS256"}')
    else:
        token = jwt.encode({"exp": NOW + 60}, key, alg="HS256", headers=headers)
    if ok:
        assert _decode(token, typ=expected)
    else:
        with pytest.raises(InvalidType):
            _decode(token, typ=expected)


def test_typ_not_checked_unless_asked() -> None:
    token = jwt.encode({"exp": NOW + 60}, key_for("HS256"), alg="HS256", headers={"typ": "x"})
    assert _decode(token)


def test_non_string_typ_rejected() -> None:
    with pytest.raises(InvalidHeader):
        _decode(_raw_token(b'{"exp":1900000000}', b'{"alg":"HS256","typ":1}'), typ="JWT")


# -- signature and algorithm, through jwt.decode ------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
def test_tampered_claims_rejected(alg: str) -> None:
    token = jwt.encode({"exp": NOW + 60, "admin": False}, key_for(alg), alg=alg)
    header, _, signature = token.split(".")
    payload = b64encode(b'{"exp":1900000000,"admin":true}')
    forged = f"{header}.{payload}.{signature}"
    with pytest.raises(BadSignature):
        jwt.decode(forged, key_for(alg), algorithms=[alg], now=NOW)


def test_signature_checked_before_claims() -> None:
    # An expired token with a bad signature must say "bad signature": claims are untrusted
    # until the signature verifies, and their errors would otherwise leak what they hold.
    token = jwt.encode({"exp": NOW - 60}, key_for("HS256", slot=1), alg="HS256")
    with pytest.raises(BadSignature):
        _decode(token)


def test_alg_not_in_allowlist_rejected() -> None:
    token = jwt.encode({"exp": NOW + 60}, key_for("HS512"), alg="HS512")
    with pytest.raises(UnsupportedAlgorithm):
        jwt.decode(token, key_for("HS512"), algorithms=["HS256"], now=NOW)


@pytest.mark.parametrize(
    "algorithms",
    [pytest.param("HS256", id="string"), pytest.param([], id="empty")],
)
def test_allowlist_is_required(algorithms: Any) -> None:
    with pytest.raises(TypeError):
        jwt.decode(_hs256({"exp": NOW + 60}), key_for("HS256"), algorithms=algorithms)


def test_algorithms_keyword_has_no_default() -> None:
    # jsonwebtoken CVE-2022-23540: a verify call without algorithms must not pick them itself.
    with pytest.raises(TypeError):
        jwt.decode(_hs256({"exp": NOW + 60}), key_for("HS256"))  # type: ignore[call-arg]


def test_unsigned_token_rejected() -> None:
    header = b64encode(b'{"alg":"none","typ":"JWT"}')
    token = header + "." + b64encode(b'{"exp":1900000000}') + "."
    with pytest.raises(UnsupportedAlgorithm):
        jwt.decode(token, key_for("HS256"), algorithms=["none", "HS256"], now=NOW)


def test_hmac_forged_with_rsa_public_key_rejected() -> None:
    # CVE-2015-9235 (jsonwebtoken), CVE-2022-29217 (PyJWT), CVE-2024-33663 (python-jose).
    rsa_key = key_for("RS256")
    for public_bytes in (rsa_key.to_pem(), rsa_key.to_der()):
        signing_input = b64encode(b'{"alg":"HS256"}') + "." + b64encode(b'{"exp":1900000000}')
        forged_key = JWK("oct", secret=public_bytes)
        tag = jws.SIGNATURE_ALGORITHMS["HS256"].sign(forged_key, signing_input.encode())
        forged = f"{signing_input}.{b64encode(tag)}"
        for key in (rsa_key.public(), public_bytes, rsa_key.to_dict()):
            with pytest.raises(InvalidKey):
                jwt.decode(forged, key, algorithms=["RS256", "HS256"], now=NOW)


def test_b64_header_refused_in_jwt() -> None:
    token = jws.sign(b'{"exp":1900000000}', key_for("HS256"), alg="HS256", b64=False)
    with pytest.raises(InvalidHeader):
        _decode(token)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: "a.b", id="two-parts"),
        pytest.param(lambda: "a.b.c.d", id="four-parts"),
        pytest.param(lambda: "a.b.c.d.e.f", id="six-parts"),
        pytest.param(
            lambda: json.dumps(jws.sign_json(b"{}", [(key_for("HS256"), "HS256")])), id="json"
        ),
        pytest.param(lambda: _hs256({"exp": NOW + 60}) + "\u00e9", id="non-ascii"),
        pytest.param(lambda: jws.sign(b"[1]", key_for("HS256"), alg="HS256"), id="array-claims"),
        pytest.param(lambda: jws.sign(b"not json", key_for("HS256"), alg="HS256"), id="not-json"),
        pytest.param(lambda: jws.sign(b"\xff", key_for("HS256"), alg="HS256"), id="not-utf8"),
    ],
)
def test_malformed_token_rejected(make: Any) -> None:
    with pytest.raises(MalformedToken):
        _decode(make())


def test_oversized_token_rejected() -> None:
    token = _hs256({"exp": NOW + 60, "pad": "x" * 300_000})
    with pytest.raises(TokenTooLarge):
        _decode(token)
    assert _decode(token, max_size=len(token))["pad"] == "x" * 300_000


def test_keyset_lookup_by_kid() -> None:
    a = with_members(key_for("ES256"), kid="a")
    b = with_members(key_for("ES256", slot=1), kid="b")
    keys = JWKSet([a.public(), b.public()])
    assert jwt.decode(
        jwt.encode({"exp": NOW + 1}, b, alg="ES256"), keys, algorithms=["ES256"], now=NOW
    )
    stranger = with_members(key_for("ES256", slot=2), kid="c")
    with pytest.raises(KeyNotFound):
        jwt.decode(
            jwt.encode({"exp": NOW + 1}, stranger, alg="ES256"), keys, algorithms=["ES256"], now=NOW
        )
    as_dict = keys.to_dict()
    assert jwt.decode(
        jwt.encode({"exp": NOW + 1}, a, alg="ES256"), as_dict, algorithms=["ES256"], now=NOW
    )


def test_unverified_header_does_not_verify() -> None:
    token = jwt.encode({"exp": 1}, key_for("HS256", slot=1), alg="HS256", headers={"kid": "k"})
    assert jwt.unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": "k"}
    with pytest.raises(MalformedToken):
        jwt.unverified_header("not a token")


def test_validate_claims_is_the_same_check() -> None:
    jwt.validate_claims({"exp": NOW + 1, "aud": "a"}, audience="a", now=NOW)
    with pytest.raises(ExpiredToken):
        jwt.validate_claims({"exp": NOW}, now=NOW)


# -- nested JWT (RFC 7519 §5.2) -----------------------------------------------------------


def test_documented_jwe_import_works_in_a_fresh_interpreter() -> None:
    # docs/jose.md: `from ostiary.jose import JoseError, jwe, jwk, jws, jwt`. A fresh process,
    # because any earlier `import ostiary.jose.jwe` in this one would hide a failure.
    code = "from ostiary.jose import jwe; print(jwe.encrypt.__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "encrypt"


def _nested(claims: dict[str, Any], enc_key: JWK, alg: str = "ECDH-ES+A256KW") -> str:
    return jwt.encode(
        claims,
        key_for("ES256"),
        alg="ES256",
        encrypt_key=enc_key.public() if not enc_key.is_symmetric else enc_key,
        encrypt_alg=alg,
        enc="A256GCM",
    )


def test_nested_jwt_round_trip() -> None:
    from ostiary.jose.jwe import unverified_header

    enc_key = key_of("EC-P-256", slot=1)
    token = _nested({"sub": "u", "exp": NOW + 60}, enc_key)
    assert token.count(".") == 4
    assert unverified_header(token)["cty"] == "JWT"
    claims = jwt.decode(
        token,
        key_for("ES256").public(),
        algorithms=["ES256"],
        decrypt_key=enc_key,
        decrypt_algorithms=["ECDH-ES+A256KW"],
        encryptions=["A256GCM"],
        now=NOW,
    )
    assert claims == {"sub": "u", "exp": NOW + 60}


def test_nested_jwt_made_with_jwe_module() -> None:
    from ostiary.jose.jwe import encrypt

    inner = jwt.encode({"exp": NOW + 60}, key_for("EdDSA"), alg="EdDSA")
    enc_key = key_of("RSA-2048", slot=1)
    token = encrypt(
        inner.encode(), enc_key.public(), alg="RSA-OAEP-256", enc="A128GCM", headers={"cty": "JWT"}
    )
    claims = jwt.decode(
        token,
        key_for("EdDSA").public(),
        algorithms=["EdDSA"],
        decrypt_key=enc_key,
        decrypt_algorithms=["RSA-OAEP-256"],
        encryptions=["A128GCM"],
        now=NOW,
    )
    assert claims == {"exp": NOW + 60}


def test_nested_jwt_needs_decryption_arguments() -> None:
    token = _nested({"exp": NOW + 60}, key_of("EC-P-256", slot=1))
    with pytest.raises(MalformedToken):
        jwt.decode(token, key_for("ES256"), algorithms=["ES256"], now=NOW)


def test_nested_jwt_claims_still_validated() -> None:
    enc_key = key_of("EC-P-256", slot=1)
    token = _nested({"exp": NOW}, enc_key)
    with pytest.raises(ExpiredToken):
        jwt.decode(
            token,
            key_for("ES256"),
            algorithms=["ES256"],
            decrypt_key=enc_key,
            decrypt_algorithms=["ECDH-ES+A256KW"],
            encryptions=["A256GCM"],
            now=NOW,
        )


def test_nested_jwt_inner_signature_still_checked() -> None:
    enc_key = key_of("EC-P-256", slot=1)
    token = _nested({"exp": NOW + 60}, enc_key)
    with pytest.raises(BadSignature):
        jwt.decode(
            token,
            key_for("ES256", slot=1),
            algorithms=["ES256"],
            decrypt_key=enc_key,
            decrypt_algorithms=["ECDH-ES+A256KW"],
            encryptions=["A256GCM"],
            now=NOW,
        )


def test_encrypted_but_unsigned_jwt_rejected() -> None:
    # The attacker encrypts bare claims to our public key: anyone can do that, so an
    # encrypted JWT is only accepted around a signed one.
    from ostiary.jose.jwe import encrypt

    enc_key = key_of("EC-P-256", slot=1)
    for headers in ({"cty": "JWT"}, None):
        token = encrypt(
            b'{"exp":1900000000,"admin":true}',
            enc_key.public(),
            alg="ECDH-ES+A256KW",
            enc="A256GCM",
            headers=headers,
        )
        with pytest.raises(JoseError):
            jwt.decode(
                token,
                key_for("ES256"),
                algorithms=["ES256"],
                decrypt_key=enc_key,
                decrypt_algorithms=["ECDH-ES+A256KW"],
                encryptions=["A256GCM"],
                now=NOW,
            )


def test_signed_only_jwt_rejected_when_encryption_expected() -> None:
    with pytest.raises(InvalidHeader):
        jwt.decode(
            jwt.encode({"exp": NOW + 60}, key_for("ES256"), alg="ES256"),
            key_for("ES256"),
            algorithms=["ES256"],
            decrypt_key=key_of("EC-P-256", slot=1),
            decrypt_algorithms=["ECDH-ES+A256KW"],
            encryptions=["A256GCM"],
            now=NOW,
        )


def test_nested_jwt_encryption_allowlists_apply() -> None:
    enc_key = key_of("EC-P-256", slot=1)
    token = _nested({"exp": NOW + 60}, enc_key)
    with pytest.raises(UnsupportedAlgorithm):
        jwt.decode(
            token,
            key_for("ES256"),
            algorithms=["ES256"],
            decrypt_key=enc_key,
            decrypt_algorithms=["RSA-OAEP-256"],
            encryptions=["A256GCM"],
            now=NOW,
        )
