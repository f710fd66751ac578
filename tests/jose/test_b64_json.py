"""Strict base64url (RFC 7515 §2) and strict JSON (RFC 7159 §4, RFC 7515 §5.2, RFC 7519 §4)."""

from __future__ import annotations

import binascii
import hmac
import string

import pytest
from keys import key_for

from ostiary.jose import InvalidClaims, JoseError, MalformedToken, jws, jwt
from ostiary.jose._b64 import b64decode, b64encode, uint_b64encode
from ostiary.jose._json import dumps, loads_claims, loads_object

NOW = 1_800_000_000
B64URL_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"

# -- base64url ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(10), ids=lambda n: f"{n}-bytes")
def test_b64_round_trip(size: int) -> None:
    data = bytes(range(250, 250 - size, -1))
    text = b64encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64decode(text) == data
    assert b64decode(text.encode("ascii")) == data


def test_b64_encode_uses_url_alphabet() -> None:
    assert b64encode(b"\xfb\xff\xbf") == "-_-_"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("YQ==", id="padding"),
        pytest.param("YWE=", id="single-padding"),
        pytest.param("YQ=", id="short-padding"),
        pytest.param("+w", id="plus"),
        pytest.param("/w", id="slash"),
        pytest.param("Y Q", id="inner-space"),
        pytest.param(" YQ", id="leading-space"),
        pytest.param("YQ\n", id="trailing-newline"),
        pytest.param("YQ\t", id="tab"),
        pytest.param("YQ\r\n", id="crlf"),
        pytest.param("Y\x00Q", id="nul"),
        pytest.param("Y", id="length-mod-4-is-1"),
        pytest.param("YWFhY", id="length-mod-4-is-1-long"),
        pytest.param("YR", id="non-canonical-2-chars"),
        pytest.param("YWF", id="non-canonical-3-chars"),
        pytest.param("YQ.", id="dot"),
        pytest.param("YQ*", id="star"),
        pytest.param("Y\u00e9", id="non-ascii"),
        pytest.param("\uff39\uff31", id="fullwidth-letters"),
    ],
)
def test_b64_decode_refuses_non_strict_input(text: str) -> None:
    with pytest.raises(MalformedToken):
        b64decode(text)


@pytest.mark.parametrize(
    "data",
    [pytest.param(b"\xff\xfe", id="not-ascii"), pytest.param(b"YQ==", id="padding")],
)
def test_b64_decode_refuses_bad_bytes(data: bytes) -> None:
    with pytest.raises(MalformedToken):
        b64decode(data)


@pytest.mark.parametrize("prefix", ["", "AAAA", "YWJj"], ids=["bare", "after-block", "after-abc"])
@pytest.mark.parametrize("tail_len", [2, 3], ids=["2-char-tail", "3-char-tail"])
def test_b64_decode_accepts_exactly_the_canonical_spelling(prefix: str, tail_len: int) -> None:
    # Each final character either spells the bytes canonically or smuggles non-zero pad bits;
    # every other spelling of the same bytes would let a token change without its meaning.
    accepted = 0
    for last in B64URL_ALPHABET:
        text = prefix + "Q" * (tail_len - 1) + last
        try:
            data = b64decode(text)
        except MalformedToken:
            continue
        accepted += 1
        assert b64encode(data) == text
    assert accepted == (4 if tail_len == 2 else 16)


def test_b64_decode_matches_stdlib_on_canonical_input() -> None:
    for size in range(40):
        data = bytes((7 * i + 3) % 256 for i in range(size))
        text = binascii.b2a_base64(data, newline=False).decode()
        text = text.rstrip("=").replace("+", "-").replace("/", "_")
        assert b64decode(text) == data


@pytest.mark.parametrize(
    ("value", "length", "text"),
    [
        pytest.param(0, None, "AA", id="zero"),
        pytest.param(65537, None, "AQAB", id="f4"),
        pytest.param(1, 4, "AAAAAQ", id="fixed-length"),
    ],
)
def test_uint_encoding(value: int, length: int | None, text: str) -> None:
    assert uint_b64encode(value, length) == text
    assert int.from_bytes(b64decode(text, "n"), "big") == value


# -- JSON ---------------------------------------------------------------------------------

BAD_JSON = [
    pytest.param(b'{"a":NaN}', id="nan"),
    pytest.param(b'{"a":Infinity}', id="infinity"),
    pytest.param(b'{"a":-Infinity}', id="minus-infinity"),
    pytest.param(b'{"a":1,"a":2}', id="duplicate"),
    pytest.param(b'{"a":1,"a":1}', id="duplicate-same-value"),
    pytest.param(b'{"a":{"b":1,"b":2}}', id="nested-duplicate"),
    pytest.param(b'{"a":[{"b":1,"b":2}]}', id="duplicate-in-array"),
    pytest.param(b'{"alg":"HS256","\\u0061lg":"none"}', id="escaped-duplicate"),
    pytest.param(b'{"a":"x:","a":":"}', id="duplicate-with-colons"),
    pytest.param(b"[1,2]", id="array"),
    pytest.param(b'"text"', id="string"),
    pytest.param(b"1", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b"", id="empty"),
    pytest.param(b"{", id="truncated"),
    pytest.param(b'{"a":1} x', id="trailing-garbage"),
    pytest.param(b"{'a':1}", id="single-quotes"),
    pytest.param(b'{"a":1,}', id="trailing-comma"),
    pytest.param(b'{"a":"\x01"}', id="control-char"),
    pytest.param(b'{"a":"\xff"}', id="not-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
    pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="deep-objects"),
]


@pytest.mark.parametrize("data", BAD_JSON)
def test_loads_object_refuses_non_standard_json(data: bytes) -> None:
    with pytest.raises(MalformedToken):
        loads_object(data, "header")


@pytest.mark.parametrize("data", BAD_JSON)
def test_loads_claims_refuses_non_standard_json(data: bytes) -> None:
    with pytest.raises(MalformedToken):
        loads_claims(data, "claims")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b'{"a":1}', {"a": 1}, id="simple"),
        pytest.param(b' { "a" : "b:c" } ', {"a": "b:c"}, id="whitespace-and-colon"),
        pytest.param(b'{"a":"\\u00e9"}', {"a": "\u00e9"}, id="escape"),
        pytest.param('{"a":"é"}'.encode(), {"a": "\u00e9"}, id="utf8"),
        pytest.param(b'{"n":1234567890123456789012}', {"n": 1234567890123456789012}, id="big-int"),
        pytest.param(b'{"a":{"a":1}}', {"a": {"a": 1}}, id="same-name-other-level"),
    ],
)
def test_loads_accept_standard_json(data: bytes, expected: dict[str, object]) -> None:
    assert loads_object(data, "x") == expected
    assert loads_claims(data, "x") == expected


def test_loads_object_accepts_text() -> None:
    assert loads_object('{"a":[1,2]}', "x") == {"a": [1, 2]}


def test_dumps_is_compact_utf8() -> None:
    assert dumps({"a": [1, "\u00e9"], "b": None}) == '{"a":[1,"\u00e9"],"b":null}'.encode()


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), float("-inf")],
    ids=["nan", "infinity", "minus-infinity"],
)
def test_dumps_refuses_non_finite_numbers(value: float) -> None:
    # Writing NaN as null (or as the bare word NaN) silently changes what was signed.
    with pytest.raises((TypeError, ValueError)):
        dumps({"x": value})


def test_dumps_refuses_unserializable_values() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})


# -- the rules applied to real tokens -----------------------------------------------------


def _token_with_header(header: bytes, payload: bytes = b'{"exp":1900000000}') -> str:
    """A compact HS256 token over exactly these header and payload bytes."""
    signing_input = f"{b64encode(header)}.{b64encode(payload)}"
    tag = hmac.digest(key_for("HS256").secret(), signing_input.encode(), "sha256")
    return f"{signing_input}.{b64encode(tag)}"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b'{"alg":"HS256","alg":"HS256"}', id="duplicate-alg"),
        pytest.param(b'{"alg":"HS256","kid":"a","kid":"b"}', id="duplicate-kid"),
        pytest.param(b'{"alg":"HS256","x":NaN}', id="nan"),
        pytest.param(b'{"alg":"HS256","x":Infinity}', id="infinity"),
    ],
)
def test_header_with_non_standard_json_refused(header: bytes) -> None:
    token = _token_with_header(header)
    with pytest.raises(MalformedToken):
        jws.verify(token, key_for("HS256"), algorithms=["HS256"])
    with pytest.raises(MalformedToken):
        jwt.decode(token, key_for("HS256"), algorithms=["HS256"], now=NOW)
    with pytest.raises(MalformedToken):
        jwt.unverified_header(token)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"exp":1900000000,"sub":"a","sub":"b"}', id="duplicate-sub"),
        pytest.param(b'{"exp":1900000000,"exp":1}', id="duplicate-exp"),
        pytest.param(b'{"exp":1900000000,"s\\u0075b":"a","sub":"b"}', id="escaped-duplicate"),
        pytest.param(b'{"exp":NaN}', id="nan-exp"),
        pytest.param(b'{"exp":1900000000,"x":Infinity}', id="infinity"),
    ],
)
def test_claims_with_non_standard_json_refused(payload: bytes) -> None:
    token = _token_with_header(b'{"alg":"HS256"}', payload)
    with pytest.raises(MalformedToken):
        jwt.decode(token, key_for("HS256"), algorithms=["HS256"], now=NOW)


def test_exp_that_overflows_to_infinity_refused() -> None:
    # 1e999 is valid JSON syntax that parses to infinity: a token that never expires.
    token = _token_with_header(b'{"alg":"HS256"}', b'{"exp":1e999}')
    with pytest.raises(InvalidClaims):
        jwt.decode(token, key_for("HS256"), algorithms=["HS256"], now=NOW)


def test_signed_token_with_json_errors_never_escapes_jose_error() -> None:
    for payload in (b"[]", b"null", b"\xff", b'{"a":'):
        token = _token_with_header(b'{"alg":"HS256"}', payload)
        with pytest.raises(JoseError):
            jwt.decode(token, key_for("HS256"), algorithms=["HS256"], now=NOW)
