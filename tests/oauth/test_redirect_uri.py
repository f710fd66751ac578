"""Redirect URIs: exact match only, loopback ports may vary (RFC 8252 §7.3), nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ostiary.oauth.errors import UnregisteredRedirectUri
from ostiary.oauth.redirect_uri import (
    check_registered_redirect_uri,
    is_loopback_redirect_uri,
    match_redirect_uri,
)

APP = "https://app.example/callback"
REGISTERED = (APP, "http://127.0.0.1/cb", "http://[::1]:8000/cb?mode=native", "com.example.app:/cb")


@pytest.mark.parametrize("uri", REGISTERED)
def test_exact_registered_uri_accepted(uri: str) -> None:
    assert match_redirect_uri(uri, REGISTERED) == uri


def test_missing_redirect_uri_uses_the_only_registered_one() -> None:
    assert match_redirect_uri(None, (APP,)) == APP


@pytest.mark.parametrize("registered", [(), (APP, "https://app.example/other")])
def test_missing_redirect_uri_rejected_unless_exactly_one_registered(
    registered: tuple[str, ...],
) -> None:
    with pytest.raises(UnregisteredRedirectUri, match="required"):
        match_redirect_uri(None, registered)


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param("https://evil.example/callback", id="foreign-host"),
        pytest.param("https://app.example/callback/evil", id="path-suffix"),
        pytest.param("https://app.example/callbackx", id="prefix-match"),
        pytest.param("https://app.example/callback?next=https://evil.example", id="added-query"),
        pytest.param("https://app.example/callback/", id="trailing-slash"),
        pytest.param("https://app.example/Callback", id="case-changed-path"),
        pytest.param("HTTPS://APP.EXAMPLE/callback", id="case-changed-host"),
        pytest.param("https://app.example:443/callback", id="explicit-default-port"),
        pytest.param("https://app.example:8443/callback", id="non-loopback-port-change"),
        pytest.param("http://app.example/callback", id="https-downgraded-to-http"),
        pytest.param("https://app.example/%63allback", id="percent-encoded-variant"),
        pytest.param("https://app.example/./callback", id="dot-segment"),
        pytest.param("https://app.example@evil.example/callback", id="userinfo-host-swap"),
        pytest.param("https://app.example.evil.example/callback", id="subdomain-of-attacker"),
        pytest.param("//app.example/callback", id="scheme-relative"),
        pytest.param("/callback", id="relative"),
        pytest.param("", id="empty"),
    ],
)
def test_foreign_redirect_uri_rejected(requested: str) -> None:
    with pytest.raises(UnregisteredRedirectUri):
        match_redirect_uri(requested, REGISTERED)


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param(APP + "#", id="empty-fragment"),
        pytest.param(APP + "#frag", id="fragment"),
        pytest.param("http://127.0.0.1:5000/cb#x", id="loopback-with-fragment"),
    ],
)
def test_fragment_rejected(requested: str) -> None:
    with pytest.raises(UnregisteredRedirectUri, match="fragment"):
        match_redirect_uri(requested, (*REGISTERED, APP + "#frag"))


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param(APP + " ", id="trailing-space"),
        pytest.param(" " + APP, id="leading-space"),
        pytest.param(APP + "\r\nSet-Cookie: x=1", id="header-injection"),
        pytest.param(APP + "\x00", id="nul"),
        pytest.param("https://app.example/caf\u00e9", id="non-ascii"),
    ],
)
def test_unprintable_redirect_uri_rejected(requested: str) -> None:
    with pytest.raises(UnregisteredRedirectUri):
        match_redirect_uri(requested, (*REGISTERED, requested))


def test_oversized_redirect_uri_rejected_even_if_registered() -> None:
    huge = "https://app.example/" + "a" * 5000
    with pytest.raises(UnregisteredRedirectUri, match="too long"):
        match_redirect_uri(huge, (huge,))


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:5123/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:65535/cb"),
        ("http://127.0.0.1:8000/cb", "http://127.0.0.1:1/cb"),
        ("http://127.0.0.1:8000/cb", "http://127.0.0.1/cb"),
        ("http://[::1]/cb", "http://[::1]:49152/cb"),
        ("http://[::1]:8000/cb?mode=native", "http://[::1]:8001/cb?mode=native"),
        ("http://127.0.0.1", "http://127.0.0.1:8080"),
    ],
)
def test_loopback_port_may_vary(registered: str, requested: str) -> None:
    assert match_redirect_uri(requested, (registered,)) == requested


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:5000/other", id="path-differs"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb?x=1", id="query-added"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb/", id="trailing-slash"),
        pytest.param("http://127.0.0.1/cb", "http://[::1]:5000/cb", id="v4-to-v6"),
        pytest.param("http://[::1]/cb", "http://127.0.0.1:5000/cb", id="v6-to-v4"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.2:5000/cb", id="other-loopback"),
        pytest.param("http://127.0.0.1/cb", "https://127.0.0.1:5000/cb", id="scheme-changed"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:0/cb", id="port-zero"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:65536/cb", id="port-too-big"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:123456/cb", id="port-six-digits"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:/cb", id="empty-port"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:80@evil.example/cb", id="userinfo"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1.evil.example/cb", id="dns-suffix"),
        pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:5000\\@evil.example/cb", id="bslash"),
        pytest.param("http://localhost/cb", "http://localhost:5000/cb", id="localhost-not-ip"),
        pytest.param("https://127.0.0.1/cb", "https://127.0.0.1:5000/cb", id="https-loopback"),
        pytest.param("http://app.example/cb", "http://app.example:5000/cb", id="http-non-loopback"),
    ],
)
def test_port_variation_only_for_loopback_ip(registered: str, requested: str) -> None:
    with pytest.raises(UnregisteredRedirectUri):
        match_redirect_uri(requested, (registered,))


@pytest.mark.parametrize(
    ("uri", "loopback"),
    [
        ("http://127.0.0.1", True),
        ("http://127.0.0.1:8080/cb?x=1", True),
        ("http://[::1]:8080", True),
        ("http://localhost:8080", False),
        ("https://127.0.0.1", False),
        ("http://127.0.0.1:99999", False),
        ("http://127.0.0.1#x", False),
    ],
)
def test_is_loopback_redirect_uri(uri: str, loopback: bool) -> None:
    assert is_loopback_redirect_uri(uri) is loopback


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/callback",
        "https://app.example/callback?tenant=a",
        "http://127.0.0.1/callback",
        "http://[::1]:8080/callback",
        "http://localhost:3000/callback",
        "com.example.app:/oauth2redirect",
    ],
)
def test_registrable_redirect_uri(uri: str) -> None:
    check_registered_redirect_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("http://app.example/callback", id="plain-http-non-loopback"),
        pytest.param("https://app.example/callback#x", id="fragment"),
        pytest.param("/callback", id="relative"),
        pytest.param("https:///callback", id="no-host"),
        pytest.param("https://user@app.example/callback", id="userinfo"),
        pytest.param("myapp:/callback", id="private-scheme-without-dot"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("https://app.example/cb?code=x", id="query-uses-code"),
        pytest.param("https://app.example/cb?a=1&state=x", id="query-uses-state"),
        pytest.param("https://app.example/cb?iss=x", id="query-uses-iss"),
        pytest.param("https://app.example/" + "a" * 3000, id="oversized"),
        pytest.param("https://app.example/ callback", id="space"),
    ],
)
def test_unregistrable_redirect_uri(uri: str) -> None:
    with pytest.raises(ValueError, match="redirect URI"):
        check_registered_redirect_uri(uri)


@given(st.text(max_size=300))
def test_arbitrary_redirect_uri_only_matches_or_raises_unregistered(requested: str) -> None:
    try:
        chosen = match_redirect_uri(requested, REGISTERED)
    except UnregisteredRedirectUri:
        return
    assert chosen == requested
    assert requested in REGISTERED or is_loopback_redirect_uri(requested)


@given(st.integers(min_value=1, max_value=65535))
def test_every_loopback_port_accepted(port: int) -> None:
    requested = f"http://127.0.0.1:{port}/cb"
    assert match_redirect_uri(requested, REGISTERED) == requested
