"""Resource indicators (RFC 8707): absolute URIs, no fragment, may repeat; they set `aud`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ostiary.oauth.config import ServerConfig
from ostiary.oauth.errors import InvalidTarget
from ostiary.oauth.resources import (
    MAX_RESOURCES,
    audience_for,
    narrow_resources,
    parse_resources,
)

NOTES = "https://notes.example"
BILLING = "https://billing.example/api?v=2"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], ()),
        ([NOTES], (NOTES,)),
        ([NOTES, BILLING], (NOTES, BILLING)),
        ([NOTES, BILLING, NOTES], (NOTES, BILLING)),
        (
            ["urn:uuid:33336dcd-a239-444a-90ae-76d381c3e6d5"],
            ("urn:uuid:33336dcd-a239-444a-90ae-76d381c3e6d5",),
        ),
    ],
)
def test_parse_resources(values: list[str], expected: tuple[str, ...]) -> None:
    assert parse_resources(values) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(NOTES + "#section", id="fragment"),
        pytest.param(NOTES + "#", id="empty-fragment"),
        pytest.param("/api", id="relative-path"),
        pytest.param("notes.example", id="no-scheme"),
        pytest.param("//notes.example", id="scheme-relative"),
        pytest.param("https:", id="scheme-only"),
        pytest.param("1https://notes.example", id="bad-scheme"),
        pytest.param("https://notes.example/ x", id="space"),
        pytest.param("https://notes.example/\r\n", id="crlf"),
        pytest.param("https://notes.\u00e9xample", id="non-ascii"),
        pytest.param("https://notes.example/" + "a" * 600, id="oversized"),
    ],
)
def test_malformed_resource_rejected(value: str) -> None:
    with pytest.raises(InvalidTarget):
        parse_resources([NOTES, value])


def test_too_many_resources_rejected() -> None:
    many = [f"https://api{i}.example" for i in range(MAX_RESOURCES + 1)]
    with pytest.raises(InvalidTarget, match="too many"):
        parse_resources(many)
    assert len(parse_resources(many[:MAX_RESOURCES])) == MAX_RESOURCES


def test_token_request_without_resource_keeps_granted() -> None:
    assert narrow_resources([], (NOTES, BILLING)) == (NOTES, BILLING)


def test_token_request_may_narrow_resources() -> None:
    assert narrow_resources([BILLING], (NOTES, BILLING)) == (BILLING,)


def test_token_request_for_resource_outside_grant_rejected() -> None:
    with pytest.raises(InvalidTarget, match="not part of the authorization grant"):
        narrow_resources(["https://evil.example"], (NOTES,))


def test_token_request_for_resource_when_grant_had_none_rejected() -> None:
    with pytest.raises(InvalidTarget):
        narrow_resources([NOTES], ())


def test_token_request_with_malformed_resource_rejected() -> None:
    with pytest.raises(InvalidTarget):
        narrow_resources([NOTES + "#x"], (NOTES + "#x",))


def test_audience_is_resources_when_named() -> None:
    config = ServerConfig(issuer="https://auth.example")
    assert audience_for((NOTES, BILLING), config) == (NOTES, BILLING)


@pytest.mark.parametrize(
    ("default_audience", "expected"),
    [(None, "https://auth.example"), (NOTES, NOTES)],
)
def test_audience_defaults_without_resource(default_audience: str | None, expected: str) -> None:
    config = ServerConfig(issuer="https://auth.example", default_audience=default_audience)
    assert audience_for((), config) == (expected,)


@given(st.lists(st.text(max_size=80), max_size=12))
def test_arbitrary_resources_raise_only_invalid_target(values: list[str]) -> None:
    try:
        parsed = parse_resources(values)
    except InvalidTarget:
        return
    assert set(parsed) == set(values)
    assert all("#" not in v and ":" in v for v in parsed)
