"""OpenID Connect in a real browser: Debian's chromium driven by Playwright (JavaScript off)
against a real `ostiary serve`. Sign in at one client through the login and consent pages,
get an ID token with the nonce, sign in at a second client without the password (SSO), be
asked again for `prompt=login`, and sign out with RP-initiated logout; a foreign
post_logout_redirect_uri is refused and leaves the session. Front-channel logout loads each
client's page of the session (a loopback server records `iss` and `sid`) before returning.
`prompt=select_account` shows the account chooser: continue as the signed-in person, or sign
in as another."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from e2e_server import CallbackServer, OstiaryServer, Person
from e2e_user_agent import Pkce
from playwright.sync_api import Browser, Page, sync_playwright

from ostiary.jose import jwt

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
TIMEOUT_MS = 10_000
SCOPE = "openid profile"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (.ci/run installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def oidc_client(server: OstiaryServer, callback: CallbackServer, name: str) -> dict[str, Any]:
    return server.create_client(
        name=name,
        grant_types="authorization_code,refresh_token",
        scopes=SCOPE,
        redirect_uris=callback.redirect_uri,
        extra=("--post-logout-redirect-uris", bye_uri(callback)),
    )


def bye_uri(callback: CallbackServer) -> str:
    return callback.redirect_uri.replace("/callback", "/bye")


class Flow:
    def __init__(self, server: OstiaryServer, client: dict[str, Any], redirect_uri: str) -> None:
        self.client, self.redirect_uri = client, redirect_uri
        self.state, self.pkce = secrets.token_urlsafe(12), Pkce.new()
        self.nonce = "n-" + secrets.token_hex(8)
        query = {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.pkce.challenge,
            "code_challenge_method": "S256",
        }
        self.url = f"{server.endpoint('authorization')}?{urlencode(query)}"


def shows_login(page: Page) -> bool:
    return page.locator('input[name="password"]').count() == 1


def log_in(page: Page, person: Person) -> None:
    page.fill('input[name="username"]', person.username)
    page.fill('input[name="password"]', person.password)
    with page.expect_navigation():
        page.press('input[name="password"]', "Enter")


def allow(page: Page) -> None:
    with page.expect_navigation():
        page.click('button[name="decision"][value="allow"]')


def id_token(server: OstiaryServer, flow: Flow, callback: CallbackServer) -> dict[str, Any]:
    """Redeem the code the browser brought back; return the verified ID token claims."""
    code = callback.wait_for(flow.state).one("code")
    response = httpx.post(
        server.endpoint("token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.pkce.verifier,
        },
        auth=(flow.client["client_id"], flow.client["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token = response.json()["id_token"]
    claims = jwt.decode(
        token,
        httpx.get(server.metadata()["jwks_uri"], timeout=10).json(),
        algorithms=["RS256"],
        issuer=server.issuer,
        audience=flow.client["client_id"],
    )
    assert claims["nonce"] == flow.nonce
    claims["raw"] = token
    return claims


def test_sign_in_sso_prompt_login_and_logout_in_chromium(
    page: Page, server: OstiaryServer, callback: CallbackServer, person: Person
) -> None:
    first = oidc_client(server, callback, "OIDC Mail")
    second = oidc_client(server, callback, "OIDC Calendar")

    flow = Flow(server, first, callback.redirect_uri)
    page.goto(flow.url)
    assert shows_login(page)
    log_in(page, person)
    assert "OIDC Mail" in page.inner_text("body")
    allow(page)
    claims = id_token(server, flow, callback)

    # a second client: no password, only its own consent (single sign-on)
    sso = Flow(server, second, callback.redirect_uri)
    page.goto(sso.url)
    assert not shows_login(page)
    assert "OIDC Calendar" in page.inner_text("body")
    allow(page)
    assert id_token(server, sso, callback)["sub"] == claims["sub"]

    # prompt=login asks for the password even while signed in
    forced = Flow(server, second, callback.redirect_uri)
    page.goto(forced.url + "&prompt=login")
    assert shows_login(page)

    # a logout request to a URI the client did not register is refused; the session stays
    foreign = {"id_token_hint": claims["raw"], "post_logout_redirect_uri": "https://evil.example/"}
    logout_endpoint = server.issuer + "/logout"
    refused = page.goto(f"{logout_endpoint}?{urlencode(foreign)}")
    assert refused is not None and refused.status == 400
    page.goto(Flow(server, first, callback.redirect_uri).url)
    assert not shows_login(page)

    # RP-initiated logout with the ID token: back to the client with its state, signed out
    state = secrets.token_hex(6)
    query = {
        "id_token_hint": claims["raw"],
        "post_logout_redirect_uri": bye_uri(callback),
        "state": state,
    }
    page.goto(f"{logout_endpoint}?{urlencode(query)}")
    assert callback.wait_for(state).path == "/bye"
    page.goto(Flow(server, first, callback.redirect_uri).url)
    assert shows_login(page)


@pytest.fixture
def frontchannel() -> Iterator[CallbackServer]:
    """The clients' front-channel logout pages: another loopback origin than the callback's."""
    server = CallbackServer()
    server.start()
    yield server
    server.stop()


def test_frontchannel_logout_loads_each_clients_page_then_returns_in_chromium(
    page: Page,
    server: OstiaryServer,
    callback: CallbackServer,
    frontchannel: CallbackServer,
    person: Person,
) -> None:
    origin = frontchannel.redirect_uri.removesuffix("/callback")
    tag = secrets.token_hex(4)  # this run's paths: the receiver outlives no test, but be sure
    clients = {
        app: server.create_client(
            name=f"FCL {app}",
            grant_types="authorization_code,refresh_token",
            scopes=SCOPE,
            redirect_uris=callback.redirect_uri,
            extra=(
                *("--post-logout-redirect-uris", bye_uri(callback)),
                *("--frontchannel-logout-uri", f"{origin}/{tag}/{app}?app={app}"),
                "--frontchannel-logout-session-required",
            ),
        )
        for app in ("mail", "calendar", "unused")
    }
    flow = Flow(server, clients["mail"], callback.redirect_uri)
    page.goto(flow.url)
    log_in(page, person)
    allow(page)
    claims = id_token(server, flow, callback)
    sso = Flow(server, clients["calendar"], callback.redirect_uri)
    page.goto(sso.url)
    allow(page)
    assert id_token(server, sso, callback)["sid"] == claims["sid"]

    # RP-initiated logout: the page loads both clients' pages in iframes, JavaScript off,
    # then refreshes on to the post_logout_redirect_uri with the state
    state = secrets.token_hex(6)
    query = {
        "id_token_hint": claims["raw"],
        "post_logout_redirect_uri": bye_uri(callback),
        "state": state,
    }
    response = page.goto(f"{server.issuer}/logout?{urlencode(query)}")
    assert response is not None and response.status == 200
    policy = response.headers["content-security-policy"]
    assert f"frame-src {origin};" in policy and "frame-ancestors 'none'" in policy
    assert response.text().count("<iframe ") == 2  # the page itself moves on in a second
    page.wait_for_url(f"{bye_uri(callback)}?state={state}")
    assert callback.wait_for(state).path == "/bye"
    # the refresh came due only once the iframes had loaded: both pages were already hit
    for app in ("mail", "calendar"):
        (hit,) = frontchannel.at(f"/{tag}/{app}")
        assert hit.params == {"app": [app], "iss": [server.issuer], "sid": [claims["sid"]]}
    assert frontchannel.at(f"/{tag}/unused") == []  # not a client of this session
    page.goto(Flow(server, clients["mail"], callback.redirect_uri).url)
    assert shows_login(page)


def test_select_account_continues_or_switches_in_chromium(
    page: Page, server: OstiaryServer, callback: CallbackServer, person: Person, seeded: Any
) -> None:
    other = seeded.fresh_person()
    client = oidc_client(server, callback, "OIDC Photos")
    first = Flow(server, client, callback.redirect_uri)
    page.goto(first.url)
    log_in(page, person)
    allow(page)
    claims = id_token(server, first, callback)

    # signed in: the chooser names the person; "Continue as" needs no password, no consent
    chosen = Flow(server, client, callback.redirect_uri)
    response = page.goto(chosen.url + "&prompt=select_account")
    assert response is not None and response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    body = page.inner_text("body")
    assert "Choose an account" in body and f"Continue as {person.username}" in body
    assert not shows_login(page)
    with page.expect_navigation():
        page.click('button[name="decision"][value="continue"]')
    assert id_token(server, chosen, callback)["sub"] == claims["sub"]

    # "Use another account": the login page; the other person signs in and consents
    switched = Flow(server, client, callback.redirect_uri)
    page.goto(switched.url + "&prompt=select_account")
    with page.expect_navigation():
        page.click('button[name="decision"][value="switch"]')
    assert shows_login(page)
    log_in(page, other)
    allow(page)
    assert id_token(server, switched, callback)["sub"] != claims["sub"]

    # prompt=none cannot be combined with select_account: invalid_request to the client
    silent = Flow(server, client, callback.redirect_uri)
    page.goto(silent.url + "&" + urlencode({"prompt": "none select_account"}))
    assert callback.wait_for(silent.state).one("error") == "invalid_request"
