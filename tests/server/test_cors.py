"""CORS rules in detail, in process (real HTTP with Origin headers against `ostiary serve` is
tests/e2e/test_cors_e2e.py): which redirect URIs give which origin, a scheme downgrade, a
repeated Origin header, a client registered over HTTP allowed at once, the per-process cache
read again after its lifetime and never because of a hostile origin."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from server_app import Served

from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Client
from ostiary.oauth.registration import issue_initial_access_token
from ostiary.server.cors import ORIGINS_TTL, ClientOrigins, origin_of

pytestmark = pytest.mark.anyio


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("uri", "origin"),
    [
        ("https://app.example/callback", "https://app.example"),
        ("https://App.Example:443/cb?x=1", "https://app.example"),
        ("http://app.example:80/cb", "http://app.example"),
        ("https://app.example:8443/cb", "https://app.example:8443"),
        ("http://127.0.0.1:5173/cb", "http://127.0.0.1:5173"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("com.example.app:/callback", None),  # a native app's private-use scheme
        ("javascript:alert(1)", None),
        ("https://app.example:99999/cb", None),
        ("ftp://app.example/cb", None),
    ],
)
def test_the_origin_of_a_redirect_uri(uri: str, origin: str | None) -> None:
    assert origin_of(uri) == origin


async def spa(served: Served, *redirect_uris: str) -> Client:
    client, _ = await served.add_client(
        auth_method="none", redirect_uris=redirect_uris, name="Single-page app"
    )
    return client


async def test_a_scheme_downgrade_is_another_origin(served: Served) -> None:
    await spa(served, "https://spa.example/callback")
    for origin, allowed in [("https://spa.example", True), ("http://spa.example", False)]:
        response = await served.http.post(
            "/token", data={"grant_type": "x"}, headers={"Origin": origin}
        )
        assert (response.headers.get("access-control-allow-origin") == origin) is allowed
        assert response.headers["vary"] == "Origin"


async def test_a_repeated_origin_header_is_no_origin(served: Served) -> None:
    await spa(served, "https://spa.example/callback")
    headers = [("Origin", "https://spa.example"), ("Origin", "https://spa.example")]
    token = await served.http.post("/token", data={"grant_type": "x"}, headers=headers)
    assert "access-control-allow-origin" not in token.headers
    userinfo = await served.http.get("/userinfo", headers=headers)
    assert "access-control-allow-origin" not in userinfo.headers
    preflight = await served.http.options(
        "/token", headers=[*headers, ("Access-Control-Request-Method", "POST")]
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_without_an_origin_nothing_is_added(served: Served) -> None:
    await spa(served, "https://spa.example/callback")
    for response in (
        await served.http.post("/token", data={"grant_type": "x"}),
        await served.http.get("/userinfo"),
    ):
        assert not any(name.startswith("access-control-") for name in response.headers)
        assert "vary" not in response.headers


async def test_a_client_registered_over_http_is_allowed_at_once(served: Served) -> None:
    """Registration in this process forgets the cached origins; no wait for their lifetime."""
    preflight = {"Origin": "https://new.example", "Access-Control-Request-Method": "POST"}
    before = await served.http.options("/token", headers=preflight)
    assert "access-control-allow-origin" not in before.headers
    await spa(served, "https://elsewhere.example/cb")  # loads nothing by itself
    token = issue_initial_access_token(served.runtime.ctx.config, ttl=600, now=served.clock())
    registered = await served.http.post(
        "/register",
        json={
            "redirect_uris": ["https://new.example/callback"],
            "token_endpoint_auth_method": "none",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert registered.status_code == 201, registered.text
    after = await served.http.options("/token", headers=preflight)
    assert after.headers["access-control-allow-origin"] == "https://new.example"


async def test_origins_are_read_again_after_their_lifetime_only() -> None:
    store = MemoryStore()
    clock = FakeMonotonic()
    origins = ClientOrigins(store.clients, clock=clock)
    assert not await origins.allows("https://spa.example")
    await store.clients.add(
        Client(
            client_id="spa",
            name="SPA",
            auth_method="none",
            redirect_uris=("https://spa.example/cb",),
        )
    )
    # hostile or unknown origins never make it read again before its time
    for origin in ("https://spa.example", "null", "https://evil.example"):
        assert not await origins.allows(origin)
    clock.advance(ORIGINS_TTL)
    assert await origins.allows("https://spa.example")
    await store.clients.delete("spa")
    assert await origins.allows("https://spa.example")  # until the next read
    origins.forget()
    assert not await origins.allows("https://spa.example")


@pytest.mark.parametrize("origin", ["null", "", "https://spa.example/", "HTTPS://SPA.EXAMPLE"])
async def test_malformed_origins_are_refused_before_any_read(origin: str) -> None:
    store = MemoryStore()
    await store.clients.add(
        Client(
            client_id="spa",
            name="SPA",
            auth_method="none",
            redirect_uris=("https://spa.example/cb",),
        )
    )
    origins = ClientOrigins(store.clients, clock=FakeMonotonic())
    assert not await origins.allows(origin)
    assert await origins.allows("https://spa.example")


@given(st.text(max_size=300))
def test_origin_of_any_text_is_an_origin_or_none(text: str) -> None:
    origin = origin_of(text)
    assert origin is None or origin_of(origin + "/") == origin
