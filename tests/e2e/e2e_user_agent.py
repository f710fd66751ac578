"""A user agent without a browser: httpx with a cookie jar that reads the login and consent
pages' HTML forms and submits them as a person would. Also PKCE values and authorization
URLs, built here by hand so the tests do not lean on the server's code.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin

import httpx

MAX_HOPS = 10


@dataclass(frozen=True)
class Pkce:
    """RFC 7636 §4.1-4.2: a 43-character verifier and its S256 challenge."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(32)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def authorization_url(
    endpoint: str, *, client_id: str, redirect_uri: str, scope: str, state: str, pkce: Pkce
) -> str:
    """An RFC 6749 §4.1.1 authorization request with an RFC 7636 S256 challenge."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    return f"{endpoint}?{urlencode(query)}"


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # inputs, in page order
    buttons: list[tuple[str, str]] = field(default_factory=list)  # named submit buttons
    input_types: dict[str, str] = field(default_factory=dict)

    def has_input(self, name: str) -> bool:
        return name in self.input_types

    def button_values(self, name: str) -> list[str]:
        return [value for button, value in self.buttons if button == name]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(attr.get("action", ""), attr.get("method", "get").lower()))
            return
        if not self.forms or "name" not in attr:
            return
        form = self.forms[-1]
        kind = attr.get("type", "submit" if tag == "button" else "text").lower()
        if tag == "button" or (tag == "input" and kind == "submit"):
            form.buttons.append((attr["name"], attr.get("value", "")))
        elif tag == "input":
            form.fields.append((attr["name"], attr.get("value", "")))
            form.input_types[attr["name"]] = kind


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


@dataclass(frozen=True)
class Journey:
    """Where an httpx-driven authorization ended: the redirect_uri URL, or a page."""

    callback_url: str | None
    pages: tuple[httpx.Response, ...]  # every HTML page shown on the way, in order


def submit(http: httpx.Client, page: httpx.Response, form: Form, **values: str) -> httpx.Response:
    """Post `form` as a browser would: its inputs, with `values` filled in or replacing them."""
    data: dict[str, list[str]] = {}
    for name, value in form.fields:
        data.setdefault(name, []).append(values.get(name, value))
    for name, value in values.items():
        if not form.has_input(name):
            data[name] = [value]
    action = urljoin(str(page.url), form.action or str(page.url))
    return http.request(form.method.upper(), action, data=data)


def authorize(
    http: httpx.Client,
    url: str,
    *,
    redirect_uri: str,
    username: str,
    password: str,
    decision: str = "allow",
) -> Journey:
    """Follow an authorization request through login and consent to the redirect_uri.

    Redirects are followed by hand so the one to `redirect_uri` is caught, not fetched.
    """
    pages: list[httpx.Response] = []
    response = http.get(url)
    for _ in range(MAX_HOPS):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.split("?", 1)[0] == redirect_uri:
                return Journey(location, tuple(pages))
            response = http.get(location)
            continue
        pages.append(response)
        forms = parse_forms(response.text) if response.status_code == 200 else []
        login = next((f for f in forms if f.has_input("password")), None)
        consent = next((f for f in forms if f.button_values("decision")), None)
        if login is not None and len(pages) == 1:
            response = submit(http, response, login, username=username, password=password)
        elif consent is not None and decision in consent.button_values("decision"):
            response = submit(http, response, consent, decision=decision)
        else:
            return Journey(None, tuple(pages))
    raise AssertionError(f"more than {MAX_HOPS} hops: {[str(p.url) for p in pages]}")


def obtain_code(
    authorization_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    username: str,
    password: str,
) -> tuple[str, Pkce]:
    """Sign in and consent as `username`; the authorization code and its PKCE pair."""
    pkce = Pkce.new()
    url = authorization_url(
        authorization_endpoint,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=secrets.token_urlsafe(8),
        pkce=pkce,
    )
    with httpx.Client(timeout=10) as user_agent:
        journey = authorize(
            user_agent, url, redirect_uri=redirect_uri, username=username, password=password
        )
    assert journey.callback_url is not None, [page.text for page in journey.pages]
    return dict(httpx.URL(journey.callback_url).params)["code"], pkce
