"""Scopes: RFC 6749 §3.3 syntax; issued = requested ∩ client's scopes; refresh may only shrink."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ostiary.oauth.errors import InvalidScope
from ostiary.oauth.scopes import (
    MAX_SCOPE_TOKENS,
    format_scope,
    is_scope_token,
    narrow_scope,
    parse_scope,
    require_subset,
)

TOKEN_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=20)
CLIENT = frozenset({"read", "write", "openid"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("read", {"read"}),
        ("read write", {"read", "write"}),
        ("write read read", {"read", "write"}),
        (
            "notes:read https://api.example/x!#$%&'()*+,-./",
            {"notes:read", "https://api.example/x!#$%&'()*+,-./"},
        ),
    ],
)
def test_parse_scope(value: str | None, expected: set[str] | None) -> None:
    parsed = parse_scope(value)
    assert parsed == (None if expected is None else frozenset(expected))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("read  write", id="double-space"),
        pytest.param(" read", id="leading-space"),
        pytest.param("read ", id="trailing-space"),
        pytest.param(" ", id="only-space"),
        pytest.param("read\twrite", id="tab"),
        pytest.param("read\nwrite", id="newline"),
        pytest.param('re"ad', id="double-quote"),
        pytest.param("re\\ad", id="backslash"),
        pytest.param("r\u00e9ad", id="non-ascii"),
        pytest.param("read\x00", id="nul"),
    ],
)
def test_malformed_scope_rejected(value: str) -> None:
    with pytest.raises(InvalidScope, match="printable ASCII"):
        parse_scope(value)


def test_oversized_scope_rejected() -> None:
    with pytest.raises(InvalidScope, match="too long"):
        parse_scope("a" * 2049)


def test_too_many_scope_tokens_rejected() -> None:
    many = " ".join(f"s{i}" for i in range(MAX_SCOPE_TOKENS + 1))
    with pytest.raises(InvalidScope, match="too many"):
        parse_scope(many)
    assert parse_scope(" ".join(f"s{i}" for i in range(MAX_SCOPE_TOKENS))) is not None


@pytest.mark.parametrize(("value", "ok"), [("read", True), ("re ad", False), ("", False)])
def test_is_scope_token(value: str, ok: bool) -> None:
    assert is_scope_token(value) is ok


def test_format_scope_is_sorted_and_stable() -> None:
    assert format_scope({"write", "read", "openid"}) == "openid read write"
    assert format_scope(frozenset()) == ""


def test_nothing_requested_gets_client_scopes() -> None:
    assert narrow_scope(None, CLIENT) == CLIENT


def test_requested_subset_issued_as_asked() -> None:
    assert narrow_scope(frozenset({"read"}), CLIENT) == {"read"}


def test_scope_escalation_beyond_client_dropped() -> None:
    assert narrow_scope(frozenset({"read", "admin"}), CLIENT) == {"read"}


def test_only_forbidden_scopes_requested_rejected() -> None:
    with pytest.raises(InvalidScope, match="none of the requested scopes"):
        narrow_scope(frozenset({"admin"}), CLIENT)


def test_client_without_scopes_gets_empty_scope() -> None:
    assert narrow_scope(None, frozenset()) == frozenset()


def test_refresh_may_shrink_scope() -> None:
    assert require_subset(frozenset({"read"}), CLIENT) == {"read"}
    assert require_subset(None, CLIENT) == CLIENT


def test_refresh_scope_escalation_rejected() -> None:
    with pytest.raises(InvalidScope, match="exceeds"):
        require_subset(frozenset({"read", "admin"}), frozenset({"read"}))


@given(st.frozensets(tokens, min_size=1, max_size=MAX_SCOPE_TOKENS))
def test_format_parse_round_trip(scope: frozenset[str]) -> None:
    assert parse_scope(format_scope(scope)) == scope


@given(st.text(max_size=300))
def test_arbitrary_scope_raises_only_invalid_scope(value: str) -> None:
    try:
        parsed = parse_scope(value)
    except InvalidScope:
        return
    assert parsed is None or all(is_scope_token(t) for t in parsed)


@given(st.frozensets(tokens), st.frozensets(tokens))
def test_narrowed_scope_never_exceeds_client(
    requested: frozenset[str], allowed: frozenset[str]
) -> None:
    try:
        issued = narrow_scope(requested, allowed)
    except InvalidScope:
        assert requested and not requested & allowed
        return
    assert issued <= allowed
    assert issued <= requested
