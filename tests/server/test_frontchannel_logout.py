"""Front-Channel Logout 1.0 through the app, on SQLite and PostgreSQL: the metadata a client
registers, what discovery says, and the page `/logout` answers once a session ends: one
hidden iframe per client of that session with a front-channel logout URI (`iss` and `sid`
added), a CSP that lets frames come from those origins alone, and, with a
post_logout_redirect_uri, a refresh and a link on to it instead of a redirect."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from server_app import Served, submit
from test_backchannel_logout import browser_request, claims_of, register, sign_in

from ostiary.oauth.models import Client, ClientOidc, User

pytestmark = pytest.mark.anyio

BYE = "https://app.example/signed-out"


@dataclass
class Page:
    """What the signed-out page holds, as a browser reads it."""

    iframes: list[dict[str, str]] = field(default_factory=list)
    refresh: list[str] = field(default_factory=list)  # content of <meta http-equiv=refresh>
    links: list[str] = field(default_factory=list)
    scripts: int = 0
    elements: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        self.page.elements.append(tag)
        if tag == "iframe":
            self.page.iframes.append(attr)
        elif tag == "meta" and attr.get("http-equiv", "").lower() == "refresh":
            self.page.refresh.append(attr["content"])
        elif tag == "a":
            self.page.links.append(attr.get("href", ""))
        elif tag == "script":
            self.page.scripts += 1


def read(response: httpx.Response) -> Page:
    reader = _Reader()
    reader.feed(response.text)
    return reader.page


def csp(response: httpx.Response) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, *values = part.split()
        assert name not in directives, f"{name} twice"
        directives[name] = values
    return directives


async def client_with(
    served: Served, name: str, frontchannel: str | None, **oidc: Any
) -> tuple[Client, str | None]:
    return await served.add_client(
        name=name,
        scopes=frozenset({"openid"}),
        oidc=ClientOidc(
            frontchannel_logout_uri=frontchannel, post_logout_redirect_uris=(BYE,), **oidc
        ),
    )


async def sid_of(served: Served, token: dict[str, Any], client: Client) -> str:
    sid: str = (await claims_of(served, token["id_token"], audience=client.client_id))["sid"]
    return sid


async def session_of_three(
    served: Served, browser: httpx.AsyncClient, user: User
) -> tuple[list[Client], str, str]:
    """Sign in at Mail (front-channel URI with its own query), Notes (none) and Calendar
    (another origin); return the clients, Mail's ID token and the session's sid."""
    mail, mail_secret = await client_with(served, "Mail", "https://mail.example/fcl?tenant=7")
    notes, notes_secret = await client_with(served, "Notes", None)
    calendar, cal_secret = await client_with(served, "Calendar", "http://127.0.0.1:8123/logout")
    token = await sign_in(served, mail, mail_secret, user, http=browser)
    served.clock.advance(1)  # joined in this order (ties would go by client_id)
    await sign_in(served, notes, notes_secret, user, http=browser)
    served.clock.advance(1)
    await sign_in(served, calendar, cal_secret, user, http=browser)
    return [mail, notes, calendar], token["id_token"], await sid_of(served, token, mail)


def frame_query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


async def is_signed_in(served: Served, browser: httpx.AsyncClient) -> bool:
    return await served.runtime.signed_in(browser_request(browser)) is not None


# -- the signed-out page -------------------------------------------------------------------


async def test_the_page_loads_each_front_channel_client_of_the_session(served: Served) -> None:
    user = await served.add_user()
    async with served.browser() as browser:
        (mail, _, calendar), hint, sid = await session_of_three(served, browser, user)
        # another session of another person, at a client with a front-channel URI of its own
        other, other_secret = await client_with(served, "Other", "https://other.example/fcl")
        async with served.browser() as elsewhere:
            await sign_in(served, other, other_secret, await served.add_user(), http=elsewhere)
        response = await browser.get("/logout?" + urlencode({"id_token_hint": hint}))
        assert response.status_code == 200, response.text
        assert not await is_signed_in(served, browser)
    page = read(response)
    issuer = served.runtime.ctx.config.issuer
    assert [frame["src"] for frame in page.iframes] == [
        "https://mail.example/fcl?tenant=7&" + urlencode({"iss": issuer, "sid": sid}),
        "http://127.0.0.1:8123/logout?" + urlencode({"iss": issuer, "sid": sid}),
    ]
    for frame, client in zip(page.iframes, (mail, calendar), strict=True):
        assert "hidden" in frame and frame["title"] == f"Signing out of {client.name}"
        assert frame["sandbox"] == "allow-same-origin allow-scripts"  # never the top window
    assert page.refresh == [] and page.scripts == 0
    assert "Mail" in response.text and "Calendar" in response.text
    policy = csp(response)
    assert policy["frame-src"] == ["https://mail.example", "http://127.0.0.1:8123"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["default-src"] == ["'none'"]
    assert "script-src" not in policy and policy["form-action"] == ["'self'"]
    assert response.headers["cache-control"] == "no-store"
    assert "ostiary_session=" in response.headers["set-cookie"]
    (ended,) = [e for e in await served.store.audit.tail(50) if e.event == "session.ended"]
    assert ended.detail["frontchannel"] == [mail.client_id, calendar.client_id]


async def test_with_a_redirect_the_page_continues_after_the_iframes(served: Served) -> None:
    user = await served.add_user()
    async with served.browser() as browser:
        _, hint, sid = await session_of_three(served, browser, user)
        query = {"id_token_hint": hint, "post_logout_redirect_uri": BYE, "state": "s&1"}
        response = await browser.get("/logout?" + urlencode(query))
        assert response.status_code == 200, response.text  # not 302: the iframes need a page
        assert not await is_signed_in(served, browser)
    page = read(response)
    assert len(page.iframes) == 2
    assert all(frame_query(frame["src"])["sid"] == [sid] for frame in page.iframes)
    location = BYE + "?state=s%261"
    assert page.refresh == [f"1; url={location}"]  # due only once the iframes have loaded
    assert location in page.links  # for a person who does not wait
    assert page.scripts == 0
    assert csp(response)["frame-src"] == ["https://mail.example", "http://127.0.0.1:8123"]


async def test_confirming_a_logout_shows_the_iframes_too(served: Served) -> None:
    user = await served.add_user()
    async with served.browser() as browser:
        (mail, _, _), _, sid = await session_of_three(served, browser, user)
        query = {"client_id": mail.client_id, "post_logout_redirect_uri": BYE}
        asked = await browser.get("/logout?" + urlencode(query))
        assert (
            "Sign out?" in asked.text
            and "frame-src" not in asked.headers["content-security-policy"]
        )
        response = await submit(browser, asked, decision="logout")
        assert response.status_code == 200 and not await is_signed_in(served, browser)
    page = read(response)
    assert [frame_query(frame["src"])["sid"] for frame in page.iframes] == [[sid], [sid]]
    assert page.refresh == [f"1; url={BYE}"] and BYE in page.links


async def test_without_front_channel_clients_the_logout_redirects_as_before(
    served: Served,
) -> None:
    client, secret = await client_with(served, "Notes", None)
    user = await served.add_user()
    async with served.browser() as browser:
        hint = (await sign_in(served, client, secret, user, http=browser))["id_token"]
        query = {"id_token_hint": hint, "post_logout_redirect_uri": BYE, "state": "s-1"}
        response = await browser.get("/logout?" + urlencode(query))
    assert response.status_code == 302 and response.headers["location"] == BYE + "?state=s-1"
    assert "frame-src" not in response.headers["content-security-policy"]


async def test_nobody_signed_in_means_no_iframes(served: Served) -> None:
    client, secret = await client_with(served, "Mail", "https://mail.example/fcl")
    user = await served.add_user()
    async with served.browser() as browser:
        hint = (await sign_in(served, client, secret, user, http=browser))["id_token"]
        await browser.get("/logout?" + urlencode({"id_token_hint": hint}))
        again = await browser.get("/logout?" + urlencode({"id_token_hint": hint}))
    assert again.status_code == 200 and read(again).iframes == []
    assert "frame-src" not in again.headers["content-security-policy"]


async def test_a_hostile_uri_or_name_stays_inside_its_attribute(served: Served) -> None:
    uri = 'https://mail.example/fcl?x="><script>alert(1)</script>'
    name = '<img src=x onerror=alert(1)> "Mail"'
    client, secret = await served.add_client(
        name=name, scopes=frozenset({"openid"}), oidc=ClientOidc(frontchannel_logout_uri=uri)
    )
    user = await served.add_user()
    async with served.browser() as browser:
        hint = (await sign_in(served, client, secret, user, http=browser))["id_token"]
        response = await browser.get("/logout?" + urlencode({"id_token_hint": hint}))
    page = read(response)
    (frame,) = page.iframes
    assert frame["src"].startswith(uri + "&iss=") and frame["title"] == f"Signing out of {name}"
    assert page.scripts == 0 and "img" not in page.elements
    assert csp(response)["frame-src"] == ["https://mail.example"]


async def test_a_deleted_client_gets_no_iframe(served: Served) -> None:
    user = await served.add_user()
    async with served.browser() as browser:
        (_, _, calendar), hint, _ = await session_of_three(served, browser, user)
        assert await served.store.clients.delete(calendar.client_id)
        response = await browser.get("/logout?" + urlencode({"id_token_hint": hint}))
    assert [urlsplit(f["src"]).hostname for f in read(response).iframes] == ["mail.example"]
    assert csp(response)["frame-src"] == ["https://mail.example"]


# -- registration and discovery --------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"frontchannel_logout_uri": "javascript:alert(1)"},
        {"frontchannel_logout_uri": "http://internal.example/logout"},
        {"frontchannel_logout_uri": "https://app.example/logout#x"},
        {"frontchannel_logout_uri": "/relative"},
        {"frontchannel_logout_uri": "https://app.example/logout?sid=mine"},
        {"frontchannel_logout_uri": "https://" + "a" * 5000 + ".example/"},
        {"frontchannel_logout_uri": ["https://app.example/logout"]},
        {"frontchannel_logout_uri": None},
        {"frontchannel_logout_session_required": "true"},
        {"frontchannel_logout_session_required": 1},
        {"frontchannel_logout_session_required": None},
    ],
    ids=[
        "javascript",
        "http",
        "fragment",
        "relative",
        "sid-in-query",
        "long",
        "array",
        "null",
        "required-string",
        "required-number",
        "required-null",
    ],
)
async def test_bad_frontchannel_registration_is_refused(
    served: Served, extra: dict[str, Any]
) -> None:
    response = await register(served, **extra)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_client_metadata"
    assert next(iter(extra)) in body["error_description"]
    assert await served.store.clients.list() == []


@pytest.mark.parametrize("required", [True, False])
async def test_registered_frontchannel_metadata_is_kept_and_discovery_says_so(
    served: Served, required: bool
) -> None:
    uri = "https://app.example/fcl?tenant=7"
    body = (
        await register(
            served, frontchannel_logout_uri=uri, frontchannel_logout_session_required=required
        )
    ).json()
    assert body["frontchannel_logout_uri"] == uri
    assert body["frontchannel_logout_session_required"] is required
    stored = await served.store.clients.get(body["client_id"])
    assert stored is not None and stored.oidc.frontchannel_logout_uri == uri
    assert stored.oidc.frontchannel_logout_session_required is required
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}
    read_back = await served.http.get(body["registration_client_uri"], headers=auth)
    assert read_back.json()["frontchannel_logout_uri"] == uri
    # RFC 7592 §2.2: an update without it removes it
    update = {
        key: value for key, value in read_back.json().items() if not key.startswith("frontchannel_")
    }
    updated = await served.http.put(body["registration_client_uri"], json=update, headers=auth)
    assert updated.status_code == 200, updated.text
    assert "frontchannel_logout_uri" not in updated.json()
    stored = await served.store.clients.get(body["client_id"])
    assert stored is not None and stored.oidc.frontchannel_logout_uri is None
    document = (await served.http.get("/.well-known/openid-configuration")).json()
    assert document["frontchannel_logout_supported"] is True
    assert document["frontchannel_logout_session_supported"] is True


async def test_a_client_without_the_metadata_describes_none(served: Served) -> None:
    body = (await register(served)).json()
    assert "frontchannel_logout_uri" not in body
    assert "frontchannel_logout_session_required" not in body
