"""`prompt=select_account` (OpenID Connect Core §3.1.2.1): with a login session, a small
account chooser ("Continue as X" / "Use another account") with the other pages' CSRF, CSP and
no-store; without one, the login page; with `prompt=none`, `invalid_request`. Forged, stale
or replayed chooser forms are refused or asked again, never approved. The same flow in
Chromium is in tests/e2e/test_browser_oidc.py."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from server_app import (
    PASSWORD,
    Pkce,
    Served,
    authorize_params,
    form_of,
    query_of,
    sign_in_and_allow,
    submit,
)

from ostiary.oauth.models import Client, User

pytestmark = pytest.mark.anyio

SCOPES = frozenset({"openid", "profile"})


async def signed_in(served: Served) -> tuple[Client, User]:
    """A client the person has approved, and the person signed in at it in `served.http`."""
    client, _ = await served.add_client(scopes=SCOPES)
    user = await served.add_user()
    params = authorize_params(client, Pkce.new(), scope="openid")
    await sign_in_and_allow(served.http, "/authorize?" + urlencode(params), user.username)
    return client, user


def chooser_url(client: Client, prompt: str = "select_account") -> str:
    params = authorize_params(client, Pkce.new(), scope="openid", prompt=prompt)
    return "/authorize?" + urlencode(params)


async def test_signed_in_person_sees_the_account_chooser(served: Served) -> None:
    client, user = await signed_in(served)
    page = await served.http.get(chooser_url(client))
    assert page.status_code == 200
    assert f"Continue as {user.username}" in page.text and "Use another account" in page.text
    assert page.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "https://app.example" in csp  # the redirect
    assert "script-src" not in csp  # works without JavaScript: plain form buttons
    form = form_of(page)
    assert form.action == "/select-account" and form.method == "post"
    assert {"csrf_token", "pending"} <= set(form.inputs)
    assert set(form.buttons) == {("decision", "continue"), ("decision", "switch")}
    assert 'name="password"' not in page.text


async def test_continue_as_the_signed_in_person_returns_a_code(served: Served) -> None:
    client, _ = await signed_in(served)
    url = chooser_url(client)
    page = await served.http.get(url)
    response = await submit(served.http, page, decision="continue")
    assert response.status_code == 303, response.text
    query = query_of(response.headers["location"])
    assert "code" in query and query["state"] == [dict(query_of(url))["state"][0]]


async def test_continue_still_asks_for_consent_not_given(served: Served) -> None:
    _, user = await signed_in(served)
    other, _ = await served.add_client(scopes=SCOPES, name="Photos")
    page = await served.http.get(chooser_url(other))
    consent = await submit(served.http, page, decision="continue")
    assert consent.status_code == 200 and ("decision", "allow") in form_of(consent).buttons
    assert user.username in consent.text


async def test_use_another_account_signs_in_someone_else(served: Served) -> None:
    client, first = await signed_in(served)
    second = await served.add_user()
    page = await served.http.get(chooser_url(client))
    login = await submit(served.http, page, decision="switch")
    assert login.status_code == 200 and 'name="password"' in login.text
    consent = await submit(served.http, login, username=second.username, password=PASSWORD)
    assert consent.status_code == 200 and second.username in consent.text
    final = await submit(served.http, consent, decision="allow")
    assert "code" in query_of(final.headers["location"])
    # the browser's session is now the second person's
    again = await served.http.get(chooser_url(client))
    assert f"Continue as {second.username}" in again.text
    assert first.username not in again.text


async def test_without_a_session_select_account_shows_the_login_page(served: Served) -> None:
    client, _ = await served.add_client(scopes=SCOPES)
    page = await served.http.get(chooser_url(client))
    assert page.status_code == 200 and 'name="password"' in page.text


async def test_prompt_none_with_select_account_is_invalid_request(served: Served) -> None:
    client, _ = await signed_in(served)
    params = authorize_params(client, Pkce.new(), scope="openid", prompt="none select_account")
    response = await served.http.get("/authorize?" + urlencode(params))
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["error"] == ["invalid_request"] and "code" not in query


async def test_prompt_login_with_select_account_asks_for_the_password(served: Served) -> None:
    client, _ = await signed_in(served)
    page = await served.http.get(chooser_url(client, prompt="login select_account"))
    assert 'name="password"' in page.text


@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("csrf_token", "forged", 403),
        ("csrf_token", "", 403),
        ("pending", "forged", 400),
        ("decision", "allow", 400),
    ],
)
async def test_forged_chooser_forms_are_refused_and_approve_nothing(
    served: Served, field: str, value: str, status: int
) -> None:
    client, _ = await signed_in(served)
    page = await served.http.get(chooser_url(client))
    events = await served.store.audit.tail(100)
    response = await submit(served.http, page, **{field: value})
    assert response.status_code == status
    assert "location" not in response.headers
    assert await served.store.audit.tail(100) == events  # no code issued


async def test_chooser_form_is_bound_to_the_browser(served: Served) -> None:
    client, _ = await signed_in(served)
    page = await served.http.get(chooser_url(client))
    async with served.browser() as elsewhere:  # no session, no CSRF cookie
        response = await elsewhere.post("/select-account", data=form_of(page).inputs)
    assert response.status_code == 200 and 'name="password"' in response.text


async def test_chooser_form_cannot_stand_in_for_a_consent_page(served: Served) -> None:
    """The chooser's sealed request names its page: posted to /consent, even with a good
    consent CSRF token, it shows the consent page for this sign-in and approves nothing."""
    await signed_in(served)
    other, _ = await served.add_client(scopes=SCOPES, name="Photos")
    consent = await served.http.get(
        "/authorize?" + urlencode(authorize_params(other, Pkce.new(), scope="openid"))
    )
    consent_token = form_of(consent).inputs["csrf_token"]
    chooser = await served.http.get(chooser_url(other))
    events = await served.store.audit.tail(100)
    response = await served.http.post(
        "/consent",
        data={
            "pending": form_of(chooser).inputs["pending"],
            "csrf_token": consent_token,
            "decision": "allow",
        },
    )
    assert response.status_code == 200 and ("decision", "allow") in form_of(response).buttons
    assert await served.store.audit.tail(100) == events


async def test_a_session_ended_while_the_chooser_was_open_asks_to_sign_in(
    served: Served,
) -> None:
    client, user = await signed_in(served)
    page = await served.http.get(chooser_url(client))
    assert await served.store.sessions.end_for_user(user.user_id, now=served.clock()) == 1
    response = await submit(served.http, page, decision="continue")
    assert response.status_code == 200 and 'name="password"' in response.text


async def test_get_is_not_allowed(served: Served) -> None:
    response = await served.http.get("/select-account")
    assert response.status_code == 405
