"""Single sign-on across clients and RP-Initiated Logout 1.0 through the app: the session
cookie signs a person in at a second client without the password, `prompt=login` asks again,
and `/logout` ends the session only for a request it can trust."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from server_app import (
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    Served,
    authorize_params,
    form_of,
    query_of,
    sign_in_and_allow,
    submit,
)
from starlette.responses import Response

from ostiary.oauth.models import Client, ClientOidc, User
from ostiary.server.sessions import SESSION_COOKIE, Session, start_session

pytestmark = pytest.mark.anyio

BYE = "https://app.example/signed-out"
SCOPES = frozenset({"openid", "profile"})


async def oidc_client(served: Served, **fields: Any) -> tuple[Client, str | None]:
    return await served.add_client(
        scopes=SCOPES, oidc=ClientOidc(post_logout_redirect_uris=(BYE,)), **fields
    )


async def id_token_of(
    served: Served, browser: httpx.AsyncClient, client: Client, secret: str | None, user: User
) -> str:
    pkce = Pkce.new()
    url = "/authorize?" + urlencode(authorize_params(client, pkce, scope="openid"))
    final = await sign_in_and_allow(browser, url, user.username)
    response = await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(final.headers["location"])["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=(client.client_id, secret or ""),
    )
    token: str = response.json()["id_token"]
    return token


async def is_signed_in(browser: httpx.AsyncClient, client: Client) -> bool:
    """True when an authorization request skips the login page (the session is live)."""
    url = "/authorize?" + urlencode(authorize_params(client, Pkce.new(), scope="openid"))
    page = await browser.get(url)
    return page.status_code == 303 or 'name="password"' not in page.text


async def test_second_client_signs_in_without_the_password(served: Served) -> None:
    first, _ = await oidc_client(served)
    second, _ = await oidc_client(served, name="Calendar")
    user = await served.add_user()
    async with served.browser() as browser:
        url = "/authorize?" + urlencode(authorize_params(first, Pkce.new(), scope="openid"))
        await sign_in_and_allow(browser, url, user.username)
        cookies = [c for c in browser.cookies.jar if c.name == "ostiary_session"]
        assert cookies and cookies[0].has_nonstandard_attr("HttpOnly")
        url = "/authorize?" + urlencode(authorize_params(second, Pkce.new(), scope="openid"))
        page = await browser.get(url)
        assert page.status_code == 200 and 'name="password"' not in page.text
        assert ("decision", "allow") in form_of(page).buttons  # consent for the new client
        done = await submit(browser, page, decision="allow")
        assert "code" in query_of(done.headers["location"])
        # prompt=login asks for the password even so
        forced = authorize_params(second, Pkce.new(), scope="openid", prompt="login")
        page = await browser.get("/authorize?" + urlencode(forced))
        assert 'name="password"' in page.text


async def test_logout_with_hint_ends_the_session_and_returns_to_the_client(
    served: Served,
) -> None:
    client, secret = await oidc_client(served)
    user = await served.add_user()
    async with served.browser() as browser:
        hint = await id_token_of(served, browser, client, secret, user)
        query = {"id_token_hint": hint, "post_logout_redirect_uri": BYE, "state": "s-1"}
        response = await browser.get("/logout?" + urlencode(query))
        assert response.status_code == 302
        assert response.headers["location"] == BYE + "?state=s-1"
        assert "ostiary_session=" in response.headers["set-cookie"]
        assert not await is_signed_in(browser, client)
    events = [e.event for e in await served.store.audit.tail(20)]
    assert "session.ended" in events


@pytest.mark.parametrize(
    "query",
    [
        {"post_logout_redirect_uri": "https://evil.example/"},
        {"post_logout_redirect_uri": BYE + "/../evil"},
        {"post_logout_redirect_uri": "javascript:alert(1)"},
        {"client_id": "c_someone_else", "post_logout_redirect_uri": BYE},
        {"tamper": "sub"},
        {"tamper": "signature"},
        {"id_token_hint": "not.a.token"},
    ],
    ids=["foreign", "dot-segments", "javascript", "other-client", "sub", "signature", "junk"],
)
async def test_untrusted_logout_requests_are_refused_and_the_session_stays(
    served: Served, query: dict[str, str]
) -> None:
    client, secret = await oidc_client(served)
    user = await served.add_user()
    async with served.browser() as browser:
        hint = await id_token_of(served, browser, client, secret, user)
        params = {"id_token_hint": hint, **query}
        tamper = params.pop("tamper", None)
        header, payload, signature = hint.split(".")
        if tamper == "sub":
            payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
        if tamper == "signature":
            signature = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
        if tamper is not None:
            params["id_token_hint"] = f"{header}.{payload}.{signature}"
            params["post_logout_redirect_uri"] = BYE
        response = await browser.get("/logout?" + urlencode(params))
        assert response.status_code == 400, response.text
        assert "location" not in response.headers
        assert (
            "set-cookie" not in response.headers
            or "ostiary_session" not in (response.headers["set-cookie"])
        )
        assert await is_signed_in(browser, client)


async def test_post_logout_redirect_needs_a_client(served: Served) -> None:
    response = await served.http.get("/logout?" + urlencode({"post_logout_redirect_uri": BYE}))
    assert response.status_code == 400 and "location" not in response.headers


async def test_logout_without_a_hint_asks_first(served: Served) -> None:
    client, secret = await oidc_client(served)
    user = await served.add_user()
    async with served.browser() as browser:
        await id_token_of(served, browser, client, secret, user)
        query = {"client_id": client.client_id, "post_logout_redirect_uri": BYE}
        page = await browser.get("/logout?" + urlencode(query))
        assert page.status_code == 200 and "Sign out?" in page.text
        stay = await submit(browser, page, decision="stay")
        assert stay.status_code == 200 and await is_signed_in(browser, client)
        page = await browser.get("/logout?" + urlencode(query))
        forged = await browser.post(
            "/logout", data={**form_of(page).inputs, "csrf_token": "x", "decision": "logout"}
        )
        assert forged.status_code == 403 and await is_signed_in(browser, client)
        done = await submit(browser, page, decision="logout")
        assert done.status_code == 303 and done.headers["location"] == BYE
        assert not await is_signed_in(browser, client)


async def test_hint_for_another_user_asks_first(served: Served) -> None:
    client, secret = await oidc_client(served)
    alice, bob = await served.add_user(), await served.add_user()
    async with served.browser() as browser:
        hint = await id_token_of(served, browser, client, secret, alice)
    async with served.browser() as browser:
        await id_token_of(served, browser, client, secret, bob)
        page = await browser.get("/logout?" + urlencode({"id_token_hint": hint}))
        assert page.status_code == 200 and "Sign out?" in page.text
        assert await is_signed_in(browser, client)


async def test_logout_when_signed_out_just_says_so(served: Served) -> None:
    page = await served.http.get("/logout")
    assert page.status_code == 200 and "signed out" in page.text
    assert PASSWORD not in page.text


async def test_logout_ends_the_session_for_every_copy_of_the_cookie(served: Served) -> None:
    client, secret = await oidc_client(served)
    user = await served.add_user()
    async with served.browser() as browser, served.browser() as thief:
        hint = await id_token_of(served, browser, client, secret, user)
        thief.cookies.update(browser.cookies)  # a copy of the session cookie
        assert await is_signed_in(thief, client)
        await browser.get("/logout?" + urlencode({"id_token_hint": hint}))
        assert not await is_signed_in(thief, client)  # the stored session is over


async def test_an_operator_can_end_a_users_sessions(served: Served) -> None:
    client, secret = await oidc_client(served)
    user, other = await served.add_user(), await served.add_user()
    async with served.browser() as browser, served.browser() as bystander:
        await id_token_of(served, browser, client, secret, user)
        await id_token_of(served, bystander, client, secret, other)
        ended = await served.store.sessions.end_for_user(user.user_id, now=served.clock())
        assert ended == 1
        assert not await is_signed_in(browser, client)
        assert await is_signed_in(bystander, client)


async def test_signing_in_again_ends_the_session_it_replaces(served: Served) -> None:
    client, secret = await oidc_client(served)
    user = await served.add_user()
    async with served.browser() as browser, served.browser() as copy:
        await id_token_of(served, browser, client, secret, user)
        copy.cookies.update(browser.cookies)
        forced = authorize_params(client, Pkce.new(), scope="openid", prompt="login")
        await sign_in_and_allow(browser, "/authorize?" + urlencode(forced), user.username)
        assert await is_signed_in(browser, client)
        assert not await is_signed_in(copy, client)


async def test_a_session_cookie_without_a_stored_session_signs_nobody_in(
    served: Served,
) -> None:
    client, _ = await oidc_client(served)
    user = await served.add_user()
    rt = served.runtime
    forged = Response()
    # signed with the server's own key, but for a session id the server never stored
    start_session(
        forged,
        Session(user_id=user.user_id, auth_time=served.clock(), session_id="never-stored"),
        rt.signer,
        rt.cookies,
        now=served.clock(),
        ttl=600,
    )
    value = forged.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    async with served.browser() as browser:
        browser.cookies.set(SESSION_COOKIE, value)
        assert not await is_signed_in(browser, client)
