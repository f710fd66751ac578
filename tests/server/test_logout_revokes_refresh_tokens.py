"""Back-Channel Logout 1.0 §2.7 through the app, on SQLite and PostgreSQL: when a login
session ends (RP-initiated logout, confirmed or hinted; a new sign-in in the same browser;
expiry) the refresh tokens issued in it stop working at the server (refresh is
`invalid_grant`, introspection says inactive), unless their grant holds `offline_access`;
other sessions' tokens keep working; refreshes racing the logout leave nothing live."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from server_app import PASSWORD, REDIRECT_URI, Pkce, Served, authorize_params, query_of, submit

from ostiary.oauth.backchannel_logout import SESSION_END_EVENT
from ostiary.oauth.models import Client, ClientOidc, User
from ostiary.server.backchannel import DeliveryPolicy, LogoutSender

pytestmark = pytest.mark.anyio

OFFLINE = "openid offline_access"


async def add_client(served: Served) -> tuple[Client, str]:
    client, secret = await served.add_client(
        scopes=frozenset({"openid", "read", "offline_access"}),
        oidc=ClientOidc(post_logout_redirect_uris=("https://app.example/bye",)),
    )
    assert secret is not None
    return client, secret


async def sign_in(
    served: Served,
    client: Client,
    secret: str,
    user: User,
    *,
    scope: str = "openid read",
    http: httpx.AsyncClient | None = None,
    **extra: str,
) -> dict[str, Any]:
    """Sign in (when asked), allow (when asked) and redeem the code; the token response."""
    http = http or served.http
    pkce = Pkce.new()
    page = await http.get(
        "/authorize?" + urlencode(authorize_params(client, pkce, scope=scope, **extra))
    )
    if 'name="password"' in page.text:
        page = await submit(http, page, username=user.username, password=PASSWORD)
    if page.status_code == 200:
        page = await submit(http, page, decision="allow")
    assert page.status_code == 303, page.text
    token = await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(page.headers["location"])["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=(client.client_id, secret),
    )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    assert "refresh_token" in body
    return body


async def refresh(served: Served, client: Client, secret: str, token: str) -> httpx.Response:
    return await served.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=(client.client_id, secret),
    )


async def is_active(served: Served, client: Client, secret: str, token: str) -> bool:
    response = await served.http.post(
        "/introspect", data={"token": token}, auth=(client.client_id, secret)
    )
    assert response.status_code == 200, response.text
    active: bool = response.json()["active"]
    return active


async def assert_revoked(
    served: Served, client: Client, secret: str, tokens: dict[str, Any]
) -> None:
    assert not await is_active(served, client, secret, tokens["refresh_token"])
    assert not await is_active(served, client, secret, tokens["access_token"])
    response = await refresh(served, client, secret, tokens["refresh_token"])
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


async def assert_working(
    served: Served, client: Client, secret: str, tokens: dict[str, Any]
) -> None:
    assert await is_active(served, client, secret, tokens["refresh_token"])
    response = await refresh(served, client, secret, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert await is_active(served, client, secret, response.json()["access_token"])


async def session_events(served: Served) -> list[dict[str, Any]]:
    return [
        dict(e.detail) for e in await served.store.audit.tail(200) if e.event == SESSION_END_EVENT
    ]


# Each way a browser's session ends at the server, after `sign_in` ran in `served.http`.
async def by_hinted_logout(served: Served, tokens: dict[str, Any], user: User) -> None:
    response = await served.http.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"]}))
    assert response.status_code == 200 and "signed out" in response.text


async def by_confirmed_logout(served: Served, tokens: dict[str, Any], user: User) -> None:
    page = await served.http.get("/logout")  # no hint: asked first
    assert page.status_code == 200 and "Sign out?" in page.text
    response = await submit(served.http, page, decision="logout")
    assert response.status_code == 200 and "signed out" in response.text


async def by_a_new_sign_in(served: Served, tokens: dict[str, Any], user: User) -> None:
    client, secret = await add_client(served)
    await sign_in(served, client, secret, user, prompt="login")


async def by_expiry(served: Served, tokens: dict[str, Any], user: User) -> None:
    # the session began a second before the other device's: only it has expired
    served.clock.advance(served.runtime.settings.session_ttl - 1)
    sender = LogoutSender(served.runtime.ctx, DeliveryPolicy(attempts=1, first_delay=1))
    try:
        assert await sender.sweep() == 1
    finally:
        await sender.close()


ROUTES: dict[str, tuple[Callable[[Served, dict[str, Any], User], Awaitable[None]], str]] = {
    "hinted logout": (by_hinted_logout, "logout"),
    "confirmed logout": (by_confirmed_logout, "logout"),
    "new sign-in": (by_a_new_sign_in, "replaced"),
    "expiry": (by_expiry, "expired"),
}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_the_end_of_a_session_revokes_its_refresh_tokens_but_not_offline_ones(
    served: Served, route: str
) -> None:
    end, reason = ROUTES[route]
    mail, mail_secret = await add_client(served)
    notes, notes_secret = await add_client(served)
    user = await served.add_user()
    online = await sign_in(served, mail, mail_secret, user)
    rotated = (await refresh(served, mail, mail_secret, online["refresh_token"])).json()
    offline = await sign_in(served, notes, notes_secret, user, scope=OFFLINE)
    served.clock.advance(1)
    async with served.browser() as other:  # the same person on another device
        elsewhere = await sign_in(served, mail, mail_secret, user, http=other)

    await end(served, rotated, user)

    await assert_revoked(served, mail, mail_secret, rotated)
    assert not await is_active(served, mail, mail_secret, online["access_token"])
    await assert_working(served, notes, notes_secret, offline)
    await assert_working(served, mail, mail_secret, elsewhere)
    (event,) = await session_events(served)
    assert event["reason"] == reason
    assert (event["revoked_grants"], event["kept_offline_grants"]) == (1, 1)
    assert event["revoked_tokens"] >= 2  # both refresh tokens, and access tokens if recorded


async def test_the_audit_log_counts_and_never_holds_a_token(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    client, secret = await add_client(served)
    user = await served.add_user()
    tokens = await sign_in(served, client, secret, user)
    with caplog.at_level("INFO", logger="ostiary.audit"):
        await by_hinted_logout(served, tokens, user)
    (event,) = [e for e in await served.store.audit.tail(50) if e.event == SESSION_END_EVENT]
    assert event.user_id == user.user_id and event.grant_id is None
    lines = [r.getMessage() for r in caplog.records if SESSION_END_EVENT in r.getMessage()]
    assert len(lines) == 1
    shown = repr(event) + lines[0]
    for value in (tokens["refresh_token"], tokens["access_token"], tokens["id_token"]):
        assert value not in shown
    for cookie in served.http.cookies.values():
        assert cookie not in shown


async def test_refreshes_racing_a_logout_leave_no_live_token(served: Served) -> None:
    clients = [await add_client(served) for _ in range(8)]
    user = await served.add_user()
    first = [await sign_in(served, client, secret, user) for client, secret in clients]

    async def keep_refreshing(client: Client, secret: str, token: str) -> list[str]:
        issued = []
        for _ in range(4):
            response = await refresh(served, client, secret, token)
            if response.status_code != 200:
                break
            token = response.json()["refresh_token"]
            issued.append(token)
        return issued

    racers: list[Awaitable[Any]] = [
        keep_refreshing(client, secret, tokens["refresh_token"])
        for (client, secret), tokens in zip(clients, first, strict=True)
    ]
    racers.insert(3, by_hinted_logout(served, first[0], user))
    results = await asyncio.gather(*racers)
    chains = [r for r in results if isinstance(r, list)]
    for (client, secret), tokens, chain in zip(clients, first, chains, strict=True):
        for token in [tokens["refresh_token"], *chain]:
            assert not await is_active(served, client, secret, token)
        last = chain[-1] if chain else tokens["refresh_token"]
        response = await refresh(served, client, secret, last)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


async def test_an_untrusted_logout_request_revokes_nothing(served: Served) -> None:
    client, secret = await add_client(served)
    user = await served.add_user()
    tokens = await sign_in(served, client, secret, user)
    forged = tokens["id_token"][:-4] + (
        "AAAA" if not tokens["id_token"].endswith("AAAA") else "BBBB"
    )
    for params in (
        {"id_token_hint": forged},
        {"id_token_hint": tokens["access_token"]},
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example/"},
        {"id_token_hint": tokens["id_token"], "client_id": "someone-else"},
    ):
        response = await served.http.get("/logout?" + urlencode(params))
        assert response.status_code == 400, response.text
    page = await served.http.get("/logout")  # asked first; and then declined
    declined = await submit(served.http, page, decision="stay")
    assert declined.status_code == 200 and "still signed in" in declined.text
    async with served.browser() as stranger:  # nobody signed in there: nothing to end
        response = await stranger.get("/logout")
        assert response.status_code == 200
    await assert_working(served, client, secret, tokens)
    assert await session_events(served) == []
