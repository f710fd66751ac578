"""The authorization journey through the app: authorize -> login -> consent -> code, on the
real SqlStore (SQLite, and PostgreSQL when reachable), and what an attacker would try."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from server_app import (
    ISSUER,
    PASSWORD,
    REDIRECT_URI,
    Clock,
    Pkce,
    Served,
    authorize_params,
    authorize_url,
    form_of,
    make_settings,
    query_of,
    serve,
    sign_in_and_allow,
    submit,
)

from ostiary.jose import jwt
from ostiary.server.passwords import Argon2PasswordHasher

pytestmark = pytest.mark.anyio


async def redeem(
    served: Served, client_id: str, secret: str | None, code: str, verifier: str
) -> httpx.Response:
    return await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(client_id, secret or ""),
    )


async def test_code_flow_end_to_end_issues_a_token_the_jwks_verifies(served: Served) -> None:
    client, secret = await served.add_client()
    user = await served.add_user()
    pkce = Pkce.new()
    params = authorize_params(client, pkce)
    final = await sign_in_and_allow(served.http, "/authorize?" + urlencode(params), user.username)
    location = final.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["state"] == [params["state"]]
    assert query["iss"] == [ISSUER]  # RFC 9207
    response = await redeem(served, client.client_id, secret, query["code"][0], pkce.verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()["access_token"]
    jwks = (await served.http.get("/jwks.json")).json()
    claims = jwt.decode(
        token,
        jwks,
        algorithms=["ES256"],
        issuer=ISSUER,
        audience=ISSUER,
        typ="at+jwt",
        now=served.clock(),
    )
    assert (claims["sub"], claims["client_id"]) == (user.user_id, client.client_id)


async def test_login_page_has_the_promised_form_and_headers(served: Served) -> None:
    client, _ = await served.add_client(name="Acme <Notes>")
    page = await served.http.get(authorize_url(client, Pkce.new()))
    assert page.status_code == 200
    form = form_of(page)
    assert form.method == "post"
    assert {"username", "password", "csrf_token", "pending"} <= set(form.inputs)
    assert "Acme &lt;Notes&gt;" in page.text  # escaped, never raw
    assert page.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    # the login post may redirect straight to the client: the CSP must let it
    assert "form-action 'self' https://app.example" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in page.text.lower()


async def test_consent_page_names_the_client_and_describes_scopes(served: Served) -> None:
    client, _ = await served.add_client(name="Budget Buddy")
    user = await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new(), scope="read profile"))
    consent = await submit(served.http, page, username=user.username, password=PASSWORD)
    assert consent.status_code == 200
    assert "Budget Buddy" in consent.text
    assert "See your name and profile details" in consent.text  # the plain words
    assert "Use the &#34;read&#34; permission" in consent.text  # unregistered: still words
    buttons = form_of(consent).buttons
    assert buttons == [("decision", "deny"), ("decision", "allow")]
    assert "form-action 'self' https://app.example" in consent.headers["content-security-policy"]


async def test_remembered_consent_is_not_asked_again(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    await sign_in_and_allow(served.http, authorize_url(client, Pkce.new()), user.username)
    again = await served.http.get(authorize_url(client, Pkce.new()))
    assert again.status_code == 302  # signed in, consent remembered: straight back
    assert "code" in query_of(again.headers["location"])
    wider = await served.http.get(authorize_url(client, Pkce.new(), scope="read profile"))
    assert wider.status_code == 200 and form_of(wider).buttons  # more scope: ask again


async def test_deny_sends_access_denied_with_state_and_iss(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    params = authorize_params(client, Pkce.new())
    page = await served.http.get("/authorize?" + urlencode(params))
    consent = await submit(served.http, page, username=user.username, password=PASSWORD)
    denied = await submit(served.http, consent, decision="deny")
    assert denied.status_code == 303
    query = query_of(denied.headers["location"])
    assert query["error"] == ["access_denied"]
    assert query["state"] == [params["state"]] and query["iss"] == [ISSUER]
    assert "code" not in query
    assert await served.store.consents.get(user.user_id, client.client_id) is None


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "nobody"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": REDIRECT_URI + "/extra"},
    ],
    ids=["unknown-client", "foreign-redirect-uri", "longer-redirect-uri"],
)
async def test_unverified_client_or_redirect_uri_gets_a_page_never_a_redirect(
    served: Served, change: dict[str, str]
) -> None:
    client, _ = await served.add_client()
    response = await served.http.get(authorize_url(client, Pkce.new(), **change))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "evil.example" not in response.text


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "admin"}, "invalid_scope"),
    ],
)
async def test_errors_after_the_redirect_uri_is_verified_go_to_the_client(
    served: Served, change: dict[str, str], error: str
) -> None:
    client, _ = await served.add_client()
    response = await served.http.get(authorize_url(client, Pkce.new(), **change, state="s1"))
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["error"] == [error]
    assert query["state"] == ["s1"] and query["iss"] == [ISSUER]


async def test_repeated_parameter_is_refused(served: Served) -> None:
    client, _ = await served.add_client()
    query = urlencode(authorize_params(client, Pkce.new())) + "&scope=write"
    response = await served.http.get("/authorize?" + query)
    assert query_of(response.headers["location"])["error"] == ["invalid_request"]


async def test_authorize_by_post_works_too(served: Served) -> None:
    client, _ = await served.add_client()
    page = await served.http.post("/authorize", data=authorize_params(client, Pkce.new()))
    assert page.status_code == 200 and "password" in form_of(page).inputs


async def test_wrong_password_and_unknown_user_read_the_same(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    url = authorize_url(client, Pkce.new())
    pages = []
    for username, password in [(user.username, "wrong"), ("nobody-here", "wrong")]:
        page = await served.http.get(url)
        pages.append(await submit(served.http, page, username=username, password=password))
    assert [p.status_code for p in pages] == [400, 400]
    names = [user.username, "nobody-here"]
    # the same page but for the name typed and the per-response form tokens
    texts = [
        re.sub(r'type="hidden" name="(\w+)" value="[^"]*"', r"\1", p.text.replace(name, "NAME"))
        for p, name in zip(pages, names, strict=True)
    ]
    assert texts[0] == texts[1]
    assert "not right" in pages[0].text
    # the failed login page still continues the same request
    assert "pending" in form_of(pages[0]).inputs
    events = [e.event for e in await served.store.audit.tail(10)]
    assert events.count("login.failed") == 2


@pytest.mark.parametrize(
    "values",
    [{"username": ""}, {"password": ""}, {"username": "x" * 300}],
    ids=["no-username", "no-password", "long-username"],
)
async def test_incomplete_login_is_asked_again(served: Served, values: dict[str, str]) -> None:
    client, _ = await served.add_client()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    response = await submit(
        served.http, page, **{"username": "someone", "password": "pw", **values}
    )
    assert response.status_code == 400
    assert "Enter your username and password" in response.text


async def test_login_is_throttled_per_user(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    url = authorize_url(client, Pkce.new())
    for attempt in range(5):
        async with served.browser(f"198.51.100.{attempt}") as browser:
            page = await browser.get(url)
            failed = await submit(browser, page, username=user.username, password="guess")
            assert failed.status_code == 400
    async with served.browser("198.51.100.99") as browser:
        page = await browser.get(url)
        # even the right password is not checked while the account is throttled
        refused = await submit(browser, page, username=user.username, password=PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "900"
    assert "Too many" in refused.text
    served.clock.advance(15 * 60 + 1)
    async with served.browser("198.51.100.99") as browser:
        page = await browser.get(url)
        allowed = await submit(browser, page, username=user.username, password=PASSWORD)
    assert allowed.status_code == 200  # the consent page


async def test_login_is_throttled_per_address(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    url = authorize_url(client, Pkce.new())
    for attempt in range(5):
        page = await served.http.get(url)
        await submit(served.http, page, username=f"guess-{attempt}", password="guess")
    page = await served.http.get(url)
    refused = await submit(served.http, page, username=user.username, password=PASSWORD)
    assert refused.status_code == 429
    async with served.browser("192.0.2.1") as elsewhere:
        page = await elsewhere.get(url)
        allowed = await submit(elsewhere, page, username=user.username, password=PASSWORD)
    assert allowed.status_code == 200


async def test_successful_login_clears_the_user_count(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    url = authorize_url(client, Pkce.new())
    for round_ in range(2):
        for attempt in range(4):
            async with served.browser(f"198.51.100.{round_ * 10 + attempt}") as browser:
                page = await browser.get(url)
                await submit(browser, page, username=user.username, password="guess")
        async with served.browser(f"192.0.2.{round_}") as browser:
            page = await browser.get(url)
            ok = await submit(browser, page, username=user.username, password=PASSWORD)
            assert ok.status_code == 200, round_


async def test_login_without_csrf_token_is_refused(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    for token in ["", "forged", form_of(page).inputs["csrf_token"] + "x"]:
        response = await submit(
            served.http, page, username=user.username, password=PASSWORD, csrf_token=token
        )
        assert response.status_code == 403
        assert "set-cookie" not in response.headers  # no session was started


async def test_login_csrf_token_is_bound_to_the_browser(served: Served) -> None:
    """An attacker's own valid token does not work from the victim's browser (login CSRF)."""
    client, _ = await served.add_client()
    user = await served.add_user()
    async with served.browser() as attacker:
        attacker_page = await attacker.get(authorize_url(client, Pkce.new()))
    victim_page = await served.http.get(authorize_url(client, Pkce.new()))
    forged = await submit(
        served.http,
        victim_page,
        username=user.username,
        password=PASSWORD,
        csrf_token=form_of(attacker_page).inputs["csrf_token"],
    )
    assert forged.status_code == 403


async def test_cross_origin_post_is_refused(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    form = form_of(page)
    data = {**form.inputs, "username": user.username, "password": PASSWORD}
    response = await served.http.post(
        "/login", data=data, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    same = await served.http.post("/login", data=data, headers={"Origin": ISSUER})
    assert same.status_code == 200


async def test_hidden_origin_is_decided_by_the_token(served: Served) -> None:
    """With `Referrer-Policy: no-referrer` a browser posts our own forms with `Origin: null`."""
    client, _ = await served.add_client()
    user = await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    data = {**form_of(page).inputs, "username": user.username, "password": PASSWORD}
    forged = {**data, "csrf_token": "x" * 43}
    refused = await served.http.post("/login", data=forged, headers={"Origin": "null"})
    assert refused.status_code == 403
    allowed = await served.http.post("/login", data=data, headers={"Origin": "null"})
    assert allowed.status_code == 200


async def test_tampered_or_expired_pending_request_is_refused(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    pending = form_of(page).inputs["pending"]
    head, body, signature = pending.split(".")
    tampered = f"{head}.{body}x.{signature}"
    response = await submit(
        served.http, page, username=user.username, password=PASSWORD, pending=tampered
    )
    assert response.status_code == 400 and "expired" in response.text
    served.clock.advance(15 * 60)
    late = await submit(served.http, page, username=user.username, password=PASSWORD)
    assert late.status_code == 400 and "location" not in late.headers


async def test_client_deleted_while_signing_in_is_an_error_page(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    await served.store.clients.delete(client.client_id)
    response = await submit(served.http, page, username=user.username, password=PASSWORD)
    assert response.status_code == 400 and "location" not in response.headers


async def test_consent_form_of_one_user_cannot_be_posted_for_another(served: Served) -> None:
    client, _ = await served.add_client()
    alice, bob = await served.add_user(), await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    consent = await submit(served.http, page, username=alice.username, password=PASSWORD)
    # the browser now signs in as bob, then replays alice's consent form
    page = await served.http.get(authorize_url(client, Pkce.new(), prompt="login"))
    await submit(served.http, page, username=bob.username, password=PASSWORD)
    replayed = await submit(served.http, consent, decision="allow")
    assert replayed.status_code == 403
    assert await served.store.consents.get(bob.user_id, client.client_id) is None


async def test_consent_without_a_session_asks_to_sign_in(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    consent = await submit(served.http, page, username=user.username, password=PASSWORD)
    served.http.cookies.clear()
    response = await submit(served.http, consent, decision="allow")
    assert response.status_code == 200 and "password" in form_of(response).inputs


@pytest.mark.parametrize("decision", ["", "maybe", "ALLOW"])
async def test_consent_needs_a_real_decision(served: Served, decision: str) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    consent = await submit(served.http, page, username=user.username, password=PASSWORD)
    response = await submit(served.http, consent, decision=decision)
    assert response.status_code == 400 and "location" not in response.headers


async def test_forged_session_cookie_is_ignored(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    await sign_in_and_allow(served.http, authorize_url(client, Pkce.new()), user.username)
    cookie = served.http.cookies["ostiary_session"]
    head, body, signature = cookie.split(".")
    served.http.cookies.set("ostiary_session", f"{head}.{body}.{signature[::-1]}")
    response = await served.http.get(authorize_url(client, Pkce.new()))
    assert response.status_code == 200 and "password" in form_of(response).inputs


async def test_session_cookie_attributes(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    page = await served.http.get(authorize_url(client, Pkce.new()))
    response = await submit(served.http, page, username=user.username, password=PASSWORD)
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("ostiary_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # a local http issuer; see the https test below


async def test_session_expires(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    await sign_in_and_allow(served.http, authorize_url(client, Pkce.new()), user.username)
    served.clock.advance(8 * 3600)
    response = await served.http.get(authorize_url(client, Pkce.new()))
    assert response.status_code == 200 and "password" in form_of(response).inputs


async def test_deleted_user_session_is_over(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    await sign_in_and_allow(served.http, authorize_url(client, Pkce.new()), user.username)
    await served.store.users.delete(user.user_id)
    response = await served.http.get(authorize_url(client, Pkce.new()))
    assert response.status_code == 200 and "password" in form_of(response).inputs


async def test_prompt_login_and_max_age_ask_for_the_password_again(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    await sign_in_and_allow(served.http, authorize_url(client, Pkce.new()), user.username)
    forced = await served.http.get(authorize_url(client, Pkce.new(), prompt="login"))
    assert forced.status_code == 200 and "password" in form_of(forced).inputs
    after = await submit(served.http, forced, username=user.username, password=PASSWORD)
    assert after.status_code == 303  # no loop back to the login page
    served.clock.advance(120)
    recent = await served.http.get(authorize_url(client, Pkce.new(), max_age="300"))
    assert recent.status_code == 302
    stale = await served.http.get(authorize_url(client, Pkce.new(), max_age="60"))
    assert stale.status_code == 200 and "password" in form_of(stale).inputs


async def test_prompt_none_never_shows_a_page(served: Served) -> None:
    client, _ = await served.add_client()
    user = await served.add_user()
    response = await served.http.get(authorize_url(client, Pkce.new(), prompt="none"))
    assert query_of(response.headers["location"])["error"] == ["login_required"]
    page = await served.http.get(authorize_url(client, Pkce.new()))
    await submit(served.http, page, username=user.username, password=PASSWORD)
    response = await served.http.get(authorize_url(client, Pkce.new(), prompt="none"))
    assert query_of(response.headers["location"])["error"] == ["consent_required"]
    consent = await served.http.get(authorize_url(client, Pkce.new()))
    await submit(served.http, consent, decision="allow")
    response = await served.http.get(authorize_url(client, Pkce.new(), prompt="none"))
    assert "code" in query_of(response.headers["location"])


async def test_login_hint_fills_in_the_username(served: Served) -> None:
    client, _ = await served.add_client()
    page = await served.http.get(authorize_url(client, Pkce.new(), login_hint="alice"))
    assert form_of(page).inputs["username"] == "alice"


async def test_login_page_on_its_own(served: Served) -> None:
    user = await served.add_user()
    page = await served.http.get("/login")
    assert page.status_code == 200 and "pending" not in form_of(page).inputs
    done = await submit(served.http, page, username=user.username, password=PASSWORD)
    assert done.status_code == 200 and user.username in done.text
    again = await served.http.get("/login")
    assert "signed in" in again.text


async def test_public_client_flow(served: Served) -> None:
    client, _ = await served.add_client(auth_method="none")
    user = await served.add_user()
    pkce = Pkce.new()
    final = await sign_in_and_allow(served.http, authorize_url(client, pkce), user.username)
    code = query_of(final.headers["location"])["code"][0]
    response = await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
            "client_id": client.client_id,
        },
    )
    assert response.status_code == 200, response.text
    assert "refresh_token" in response.json()


async def test_https_issuer_sets_secure_host_only_cookies(
    tmp_path: Path, clock: Clock, hasher: Argon2PasswordHasher, backend: str
) -> None:
    settings = make_settings(tmp_path, issuer="https://auth.example", database_url=backend)
    async with serve(settings, clock=clock, hasher=hasher) as secure:
        client, _ = await secure.add_client()
        user = await secure.add_user()
        page = await secure.http.get(authorize_url(client, Pkce.new()))
        csrf_cookie = page.headers["set-cookie"]
        assert csrf_cookie.startswith("__Host-ostiary_csrf=") and "Secure" in csrf_cookie
        response = await submit(secure.http, page, username=user.username, password=PASSWORD)
        session = next(
            c
            for c in response.headers.get_list("set-cookie")
            if c.startswith("__Host-ostiary_session=")
        )
        assert "Secure" in session and "HttpOnly" in session and "Domain" not in session
        assert response.status_code == 200


async def test_login_page_and_password_grant_share_one_budget_of_guesses(
    served: Served,
) -> None:
    client, secret = await served.add_client(
        grant_types=frozenset({"password"}), legacy_password_grant=True
    )
    user = await served.add_user()
    url = "/login"
    for attempt in range(5):
        async with served.browser(f"198.51.100.{attempt}") as browser:
            page = await browser.get(url)
            await submit(browser, page, username=user.username.upper(), password="guess")
    response = await served.http.post(
        "/token",
        data={"grant_type": "password", "username": user.username, "password": PASSWORD},
        auth=(client.client_id, secret or ""),
    )
    assert response.status_code == 429
    assert response.json()["error"] == "slow_down"


async def test_parallel_guesses_cannot_outrun_the_login_throttle(served: Served) -> None:
    # Check-then-count: a burst of guesses sent at once would all read a count below the
    # limit while their passwords are being checked, so every one of them would be tried.
    client, _ = await served.add_client()
    user = await served.add_user()
    url = authorize_url(client, Pkce.new())
    page = await served.http.get(url)
    data = {**form_of(page).inputs, "username": user.username}
    posts = [served.http.post("/login", data={**data, "password": f"guess-{n}"}) for n in range(20)]
    statuses = sorted(r.status_code for r in await asyncio.gather(*posts))
    assert statuses.count(400) <= 5, statuses  # at most login_max_failures passwords checked
    assert set(statuses) <= {400, 429}, statuses


@pytest.mark.parametrize("fresh", [{"prompt": "login"}, {"max_age": "60"}])
async def test_consent_post_cannot_skip_the_fresh_sign_in_a_client_asked_for(
    served: Served, fresh: dict[str, str]
) -> None:
    # Someone at a signed-in browser takes the request sealed on the login page (prompt=login
    # or an expired max_age) and posts it to /consent with a consent token from any other
    # consent page of that user: the password the client asked for must still be typed.
    client, _ = await served.add_client()
    other, _ = await served.add_client(name="Other App")
    user = await served.add_user()
    await sign_in_and_allow(served.http, authorize_url(client, Pkce.new()), user.username)
    served.clock.advance(120)
    consent_elsewhere = await served.http.get(authorize_url(other, Pkce.new()))
    token = form_of(consent_elsewhere).inputs["csrf_token"]
    login = await served.http.get(authorize_url(client, Pkce.new(), **fresh))
    pending = form_of(login).inputs["pending"]
    skipped = await served.http.post(
        "/consent", data={"csrf_token": token, "pending": pending, "decision": "allow"}
    )
    assert skipped.status_code != 303, skipped.headers.get("location")
    assert "password" in form_of(skipped).inputs  # asked to sign in, as the client wanted
