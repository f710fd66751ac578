"""The rule both logout URIs share (Back-Channel Logout 1.0 §2.2, Front-Channel Logout 1.0
§2): absolute, https (http only on a loopback address), a host and no user info, no fragment;
the front-channel one also keeps `iss` and `sid` out of its query."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ostiary.oauth.frontchannel_logout import check_frontchannel_logout_uri
from ostiary.oauth.logout_uri import check_logout_uri

CHECKS = pytest.mark.parametrize(
    "check",
    [check_logout_uri, check_frontchannel_logout_uri],
    ids=["backchannel", "frontchannel"],
)


@CHECKS
@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/logout",
        "https://app.example:8443/logout?tenant=7&x",
        "http://127.0.0.1:5000/logout",
        "http://[::1]/logout",
        "http://localhost:3000/logout",
    ],
)
def test_both_logout_uris_take_the_same_uris(check: Callable[[str], None], uri: str) -> None:
    check(uri)


@CHECKS
@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("/logout", "absolute"),
        ("https://app.example/logout#done", "fragment"),
        ("javascript:alert(1)", "https"),
        ("com.example.app:/logout", "https"),
        ("https://user:pw@app.example/logout", "user info"),
        ("http://app.example/logout", "loopback"),
        ("http://127.0.0.2/logout", "loopback"),
        ("https://app.example/" + "a" * 2000, "too long"),
    ],
)
def test_both_logout_uris_refuse_the_same_uris(
    check: Callable[[str], None], uri: str, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        check(uri)


def test_only_the_frontchannel_uri_keeps_iss_and_sid_out_of_its_query() -> None:
    # the OP adds them to the front-channel URI's query (§2); a logout token is POSTed to the
    # back-channel one (§2.5), whose query the OP never touches
    check_logout_uri("https://app.example/logout?sid=mine&iss=x")
    with pytest.raises(ValueError, match="iss, sid"):
        check_frontchannel_logout_uri("https://app.example/logout?sid=mine&iss=x")
