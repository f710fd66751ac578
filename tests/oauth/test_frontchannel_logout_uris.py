"""Front-Channel Logout 1.0 §2, sans-IO: which URIs a client may register as its
frontchannel_logout_uri, and the URL its iframe loads (`iss` and `sid` added, both or neither,
the registered query kept)."""

from __future__ import annotations

import pytest

from ostiary.oauth.frontchannel_logout import (
    check_frontchannel_logout_uri,
    frontchannel_logout_url,
)

ISSUER = "https://id.example"


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/fcl",
        "https://app.example:8443/fcl?tenant=7&x",
        "https://app.example",
        "http://127.0.0.1:5000/fcl",
        "http://[::1]/fcl",
        "http://localhost:3000/fcl",
        "HTTPS://App.Example/fcl",
    ],
)
def test_registrable_uris(uri: str) -> None:
    check_frontchannel_logout_uri(uri)


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("/fcl", "absolute"),
        ("fcl", "absolute"),
        ("https://app.example/fcl#done", "fragment"),
        ("https://app.example/f cl", "absolute"),
        ("javascript:alert(1)", "https"),
        ("data:text/html,hi", "https"),
        ("com.example.app:/fcl", "https"),
        ("ftp://app.example/fcl", "https"),
        ("https:///fcl", "host"),
        ("https://user:pw@app.example/fcl", "user info"),
        ("http://app.example/fcl", "loopback"),
        ("http://127.0.0.2/fcl", "loopback"),
        ("http://127.0.0.1:99999/fcl", "loopback"),
        ("https://app.example/fcl?sid=x", "sid"),
        ("https://app.example/fcl?a=1&iss", "iss"),
        ("https://app.example/fcl?iss=x&sid=y", "iss, sid"),
        ("https://app.example/" + "a" * 2000, "too long"),
    ],
)
def test_unregistrable_uris_say_why(uri: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_frontchannel_logout_uri(uri)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://app.example/fcl", "https://app.example/fcl?iss=https%3A%2F%2Fid.example&sid=s1"),
        (
            "https://app.example/fcl?tenant=7",
            "https://app.example/fcl?tenant=7&iss=https%3A%2F%2Fid.example&sid=s1",
        ),
        ("https://app.example/fcl?", "https://app.example/fcl?iss=https%3A%2F%2Fid.example&sid=s1"),
        (
            "https://app.example/fcl?a=1&",
            "https://app.example/fcl?a=1&iss=https%3A%2F%2Fid.example&sid=s1",
        ),
    ],
    ids=["bare", "own-query", "empty-query", "trailing-ampersand"],
)
def test_iss_and_sid_are_added_and_the_query_kept(uri: str, expected: str) -> None:
    assert frontchannel_logout_url(uri, issuer=ISSUER, sid="s1") == expected


def test_a_session_without_sid_adds_neither() -> None:
    # §2: if either parameter is included, both must be
    uri = "https://app.example/fcl?tenant=7"
    assert frontchannel_logout_url(uri, issuer=ISSUER, sid=None) == uri


def test_values_are_encoded() -> None:
    url = frontchannel_logout_url("https://app.example/fcl", issuer=ISSUER, sid="a&b=c d")
    assert url.endswith("&sid=a%26b%3Dc+d")
