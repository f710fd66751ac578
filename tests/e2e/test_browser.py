"""Login and consent in a real browser: Debian's chromium driven by Playwright, against a
real `ostiary serve`, with a loopback redirect_uri receiving the authorization response.

The browser runs with JavaScript off: the pages must work without it (DESIGN.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from e2e_server import SCOPES, CallbackServer, OstiaryServer, Person
from e2e_user_agent import Pkce, authorization_url
from playwright.sync_api import Browser, Page, Request, Response, Route, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
LOGIN_FORM = 'form:has(input[name="password"])'


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
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages in fresh browser contexts (no cookies), with JavaScript off."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(java_script_enabled=False)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    return new_page()


@dataclass(frozen=True)
class Flow:
    """One authorization request by the public client."""

    url: str
    state: str
    pkce: Pkce
    client_id: str
    redirect_uri: str


def start_flow(server: OstiaryServer, client: dict[str, Any], callback: CallbackServer) -> Flow:
    state, pkce = secrets.token_urlsafe(16), Pkce.new()
    url = authorization_url(
        server.endpoint("authorization"),
        client_id=client["client_id"],
        redirect_uri=callback.redirect_uri,
        scope=SCOPES,
        state=state,
        pkce=pkce,
    )
    return Flow(url, state, pkce, client["client_id"], callback.redirect_uri)


def open_login(page: Page, flow: Flow) -> Response:
    response = page.goto(flow.url)
    assert response is not None
    assert response.status == 200, response.text()
    assert page.locator(f'{LOGIN_FORM} input[name="username"]').count() == 1
    return response


def log_in(page: Page, username: str, password: str) -> Response | None:
    """Type the credentials and press Enter: the form submits itself, no script needed."""
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    with page.expect_navigation() as navigation:
        page.press('input[name="password"]', "Enter")
    return navigation.value


def decide(page: Page, decision: str) -> Response | None:
    with page.expect_navigation() as navigation:
        page.click(f'button[name="decision"][value="{decision}"]')
    return navigation.value


def has_consent_form(page: Page) -> bool:
    buttons = page.locator('button[name="decision"]')
    values = {buttons.nth(i).get_attribute("value") for i in range(buttons.count())}
    return values == {"allow", "deny"}


def expect_consent(page: Page, shown: Response | None, server: OstiaryServer) -> None:
    status = None if shown is None else shown.status
    assert has_consent_form(page), (
        f"no consent form (status {status}):\n{page.inner_text('body')}\n{server.log_tail()}"
    )


def redeem(server: OstiaryServer, flow: Flow, code: str) -> httpx.Response:
    """RFC 6749 §4.1.3 with the RFC 7636 verifier, as the public client (no secret)."""
    return httpx.post(
        server.endpoint("token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "client_id": flow.client_id,
            "code_verifier": flow.pkce.verifier,
        },
        timeout=10,
    )


def test_code_flow_with_pkce_through_login_and_consent(
    page: Page,
    server: OstiaryServer,
    public_client: dict[str, Any],
    callback: CallbackServer,
    person: Person,
) -> None:
    flow = start_flow(server, public_client, callback)
    login = open_login(page, flow)
    headers = login.headers
    assert "no-store" in headers.get("cache-control", "")
    assert "frame-ancestors 'none'" in headers.get("content-security-policy", "")

    shown = log_in(page, person.username, person.password)
    expect_consent(page, shown, server)
    text = page.inner_text("body")
    assert "E2E Browser App" in text
    assert "read" in text and "write" in text

    decide(page, "allow")
    hit = callback.wait_for(flow.state)
    assert page.url.startswith(flow.redirect_uri)
    code = hit.one("code")
    assert code
    assert hit.one("iss") == server.issuer  # RFC 9207 §2
    assert hit.one("error") is None

    response = redeem(server, flow, code)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers.get("cache-control", "")
    tokens = response.json()
    assert tokens["token_type"].lower() == "bearer"
    assert set(tokens["scope"].split()) == set(SCOPES.split())
    assert tokens["refresh_token"]
    claims = server.access_token_claims(tokens["access_token"])
    assert claims["client_id"] == flow.client_id
    assert set(claims["scope"].split()) == set(SCOPES.split())
    assert claims["sub"]

    # RFC 6749 §4.1.2: a code is single use, and a replay revokes what it produced
    # (RFC 9700 §4.5), so the refresh token from the first redemption is dead too.
    replayed = redeem(server, flow, code)
    assert replayed.status_code == 400, replayed.text
    assert replayed.json()["error"] == "invalid_grant"
    refreshed = httpx.post(
        server.endpoint("token"),
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": flow.client_id,
        },
        timeout=10,
    )
    assert refreshed.status_code == 400, refreshed.text
    assert refreshed.json()["error"] == "invalid_grant"


def test_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(
    page: Page, server: OstiaryServer, public_client: dict[str, Any], callback: CallbackServer
) -> None:
    flow = start_flow(server, public_client, callback)
    # The same loopback server, another path: not what the client registered.
    url = flow.url.replace("%2Fcallback", "%2Fcallback%2Felsewhere")
    assert url != flow.url
    response = page.goto(url)
    assert response is not None
    assert response.status == 400, response.status  # RFC 6749 §4.1.2.1: tell the user
    assert page.url == url
    assert page.locator('input[name="password"]').count() == 0
    assert callback.with_state(flow.state) == []


def test_deny_sends_access_denied_to_the_client(
    page: Page,
    server: OstiaryServer,
    public_client: dict[str, Any],
    callback: CallbackServer,
    person: Person,
) -> None:
    flow = start_flow(server, public_client, callback)
    open_login(page, flow)
    shown = log_in(page, person.username, person.password)
    expect_consent(page, shown, server)

    decide(page, "deny")
    hit = callback.wait_for(flow.state)
    assert hit.one("error") == "access_denied"  # RFC 6749 §4.1.2.1
    assert hit.one("code") is None
    assert hit.one("iss") == server.issuer


def test_wrong_password_shows_the_login_form_again_and_reveals_nothing(
    page: Page,
    server: OstiaryServer,
    public_client: dict[str, Any],
    callback: CallbackServer,
    person: Person,
) -> None:
    flow = start_flow(server, public_client, callback)
    open_login(page, flow)
    wrong = log_in(page, person.username, person.password + "x")
    assert wrong is not None and wrong.status < 500
    assert page.locator(LOGIN_FORM).count() == 1
    assert not has_consent_form(page)
    wrong_text = page.inner_text("body")

    # No user enumeration: an unknown user reads exactly like a wrong password.
    log_in(page, f"nobody-{secrets.token_hex(4)}", person.password)
    assert page.locator(LOGIN_FORM).count() == 1
    assert page.inner_text("body") == wrong_text

    # Two failures do not lock the person out: the right password still works.
    shown = log_in(page, person.username, person.password)
    expect_consent(page, shown, server)
    assert callback.with_state(flow.state) == []


def test_login_without_csrf_token_is_refused(
    page: Page,
    server: OstiaryServer,
    public_client: dict[str, Any],
    callback: CallbackServer,
    person: Person,
) -> None:
    stripped: list[str] = []

    def strip_csrf(route: Route, request: Request) -> None:
        if request.method != "POST" or request.post_data is None:
            route.continue_()
            return
        fields = parse_qsl(request.post_data, keep_blank_values=True)
        stripped.extend(name for name, _ in fields if "csrf" in name.lower())
        kept = [(name, value) for name, value in fields if "csrf" not in name.lower()]
        route.continue_(post_data=urlencode(kept))

    flow = start_flow(server, public_client, callback)
    open_login(page, flow)
    page.route(f"{server.issuer}/**", strip_csrf)
    refused = log_in(page, person.username, person.password)
    assert stripped, "the login form has no CSRF field to strip"
    assert refused is not None
    assert refused.status in (400, 403), refused.status
    assert not has_consent_form(page)
    assert callback.with_state(flow.state) == []

    # The token was the only thing wrong: with it, the same login goes through.
    page.unroute(f"{server.issuer}/**")
    open_login(page, flow)
    shown = log_in(page, person.username, person.password)
    expect_consent(page, shown, server)


def test_second_login_remembers_consent(
    new_page: Callable[[], Page],
    server: OstiaryServer,
    public_client: dict[str, Any],
    callback: CallbackServer,
    person: Person,
) -> None:
    first = start_flow(server, public_client, callback)
    page = new_page()
    open_login(page, first)
    log_in(page, person.username, person.password)
    decide(page, "allow")
    assert callback.wait_for(first.state).one("code")

    # A new browser (no session cookie): log in again, and consent is not asked again.
    second = start_flow(server, public_client, callback)
    page = new_page()
    open_login(page, second)
    log_in(page, person.username, person.password)
    hit = callback.wait_for(second.state)
    assert page.url.startswith(second.redirect_uri), page.content()
    code = hit.one("code")
    assert code
    response = redeem(server, second, code)
    assert response.status_code == 200, response.text
