"""PKCE (RFC 7636): S256 only, strict verifier and challenge syntax, no oracle on failure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ostiary.oauth.errors import InvalidGrant, InvalidRequest
from ostiary.oauth.pkce import (
    is_code_verifier,
    is_s256_challenge,
    parse_code_challenge,
    s256_challenge,
    verify_code_verifier,
)

# RFC 7636 Appendix B
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)


def test_rfc7636_appendix_b_known_answer() -> None:
    assert s256_challenge(RFC_VERIFIER) == RFC_CHALLENGE
    verify_code_verifier(RFC_VERIFIER, RFC_CHALLENGE)


def test_valid_challenge_accepted() -> None:
    assert parse_code_challenge(RFC_CHALLENGE, "S256") == RFC_CHALLENGE


def test_missing_code_challenge_rejected() -> None:
    with pytest.raises(InvalidRequest, match="code_challenge is required"):
        parse_code_challenge(None, "S256")


def test_missing_method_means_plain_and_is_rejected() -> None:
    # RFC 7636 §4.3: no method defaults to plain, which OAuth 2.1 servers may refuse.
    with pytest.raises(InvalidRequest, match="code_challenge_method"):
        parse_code_challenge(RFC_CHALLENGE, None)


@pytest.mark.parametrize("method", ["plain", "s256", "S512", "S256 ", "", "none"])
def test_plain_or_unknown_method_rejected(method: str) -> None:
    with pytest.raises(InvalidRequest, match="must be S256"):
        parse_code_challenge(RFC_CHALLENGE, method)


@pytest.mark.parametrize(
    "challenge",
    [
        pytest.param(RFC_CHALLENGE[:-1], id="42-chars"),
        pytest.param(RFC_CHALLENGE + "A", id="44-chars"),
        pytest.param(RFC_CHALLENGE[:-1] + "N", id="non-canonical-last-char"),
        pytest.param(RFC_CHALLENGE + "=", id="padded"),
        pytest.param(RFC_CHALLENGE[:-2] + "+/", id="standard-base64-alphabet"),
        pytest.param(RFC_CHALLENGE[:-1] + "~", id="unreserved-but-not-base64url"),
        pytest.param("x" * 128, id="128-chars"),
        pytest.param("E" * 10_000, id="oversized"),
        pytest.param(RFC_CHALLENGE[:-1] + "\u00e9", id="non-ascii"),
    ],
)
def test_malformed_s256_challenge_rejected(challenge: str) -> None:
    with pytest.raises(InvalidRequest, match="not a valid S256 challenge"):
        parse_code_challenge(challenge, "S256")


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param(RFC_CHALLENGE, id="challenge-replayed-as-verifier"),
        pytest.param(RFC_VERIFIER[:-1] + "l", id="one-char-off"),
        pytest.param(RFC_VERIFIER[:42], id="42-chars-too-short"),
        pytest.param("a" * 129, id="129-chars-too-long"),
        pytest.param(RFC_VERIFIER[:-1] + "+", id="reserved-char"),
        pytest.param(RFC_VERIFIER + " ", id="trailing-space"),
        pytest.param(RFC_VERIFIER[:-1] + "\u00e9", id="non-ascii"),
        pytest.param("a" * 100_000, id="oversized"),
    ],
)
def test_wrong_verifier_rejected_with_one_message(verifier: str | None) -> None:
    with pytest.raises(InvalidGrant) as caught:
        verify_code_verifier(verifier, RFC_CHALLENGE)
    # Same words for missing, malformed and wrong: nothing to probe.
    assert caught.value.description == "code_verifier does not match the code challenge"


@pytest.mark.parametrize(("length", "ok"), [(42, False), (43, True), (128, True), (129, False)])
def test_verifier_length_boundary(length: int, ok: bool) -> None:
    assert is_code_verifier("a" * length) is ok


@given(verifiers)
def test_every_valid_verifier_round_trips(verifier: str) -> None:
    challenge = s256_challenge(verifier)
    assert is_s256_challenge(challenge)
    assert parse_code_challenge(challenge, "S256") == challenge
    verify_code_verifier(verifier, challenge)


@given(st.text(max_size=200), st.text(max_size=60))
def test_arbitrary_input_raises_only_oauth_errors(verifier: str, challenge: str) -> None:
    try:
        verify_code_verifier(verifier, challenge)
    except InvalidGrant:
        return
    assert s256_challenge(verifier) == challenge


@given(verifiers, verifiers)
def test_other_verifier_never_matches(verifier: str, other: str) -> None:
    if verifier == other:
        return
    with pytest.raises(InvalidGrant):
        verify_code_verifier(other, s256_challenge(verifier))
