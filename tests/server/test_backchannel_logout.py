"""Back-Channel Logout 1.0 through the app: when a person signs out, each client they use
that registered a back-channel URI gets a signed logout token on a real loopback HTTP server,
retried when it fails, and the person's answer never waits on a client that keeps failing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from server_app import PASSWORD, REDIRECT_URI, Pkce, Served, authorize_params, query_of, submit

from ostiary.jose import jwt
from ostiary.oauth.models import Client, ClientOidc, User
from ostiary.oauth.registration import issue_initial_access_token

pytestmark = pytest.mark.anyio

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver:
    """A client's back-channel logout endpoint on 127.0.0.1: answers `statuses` in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.posts: list[dict[str, list[str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                owner.posts.append(parse_qs(self.rfile.read(length).decode()))
                status = owner.statuses.pop(0) if owner.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/backchannel-logout"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([]) as r:
        yield r


async def sign_in(served: Served, client: Client, secret: str | None, user: User) -> str:
    pkce = Pkce.new()
    url = "/authorize?" + urlencode(authorize_params(client, pkce, scope="openid"))
    page = await served.http.get(url)
    if 'name="password"' in page.text:
        page = await submit(served.http, page, username=user.username, password=PASSWORD)
    final = await submit(served.http, page, decision="allow")  # signed in: consent only
    assert final.status_code == 303, final.text
    token = await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(final.headers["location"])["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=(client.client_id, secret or ""),
    )
    id_token: str = token.json()["id_token"]
    return id_token


async def client_with(served: Served, uri: str | None) -> tuple[Client, str | None]:
    return await served.add_client(
        scopes=frozenset({"openid"}), oidc=ClientOidc(backchannel_logout_uri=uri)
    )


async def test_logout_posts_a_logout_token_to_each_client_of_the_user(
    served: Served, receiver: Receiver
) -> None:
    mail, mail_secret = await client_with(served, receiver.uri)
    calendar, calendar_secret = await client_with(served, receiver.uri)
    quiet, quiet_secret = await client_with(served, None)  # registered no back-channel URI
    bystander, _ = await client_with(served, receiver.uri)  # the user never used it
    user = await served.add_user()
    hint = await sign_in(served, mail, mail_secret, user)
    await sign_in(served, calendar, calendar_secret, user)
    await sign_in(served, quiet, quiet_secret, user)
    response = await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
    assert response.status_code == 200 and "signed out" in response.text
    jwks = (await served.http.get("/jwks.json")).json()
    audiences = set()
    for post in receiver.posts:
        (token,) = post["logout_token"]
        assert jwt.unverified_header(token)["typ"] == "logout+jwt"
        claims = jwt.decode(
            token,
            jwks,
            algorithms=["RS256"],
            issuer=served.runtime.ctx.config.issuer,
            audience=[mail.client_id, calendar.client_id],
            now=served.clock(),
        )
        assert claims["sub"] == user.user_id and claims["events"] == {EVENT: {}}
        assert "nonce" not in claims and "sid" not in claims and claims["jti"]
        audiences.add(claims["aud"])
    assert audiences == {mail.client_id, calendar.client_id}
    assert bystander.client_id not in audiences and len(receiver.posts) == 2
    events = [e.event for e in await served.store.audit.tail(20)]
    assert events.count("logout.backchannel_sent") == 2


async def test_a_failing_client_is_retried_then_given_up_without_failing_the_logout(
    served: Served,
) -> None:
    with Receiver([500, 503, 500]) as failing, Receiver([500]) as flaky:
        broken, broken_secret = await client_with(served, failing.uri)
        wobbly, wobbly_secret = await client_with(served, flaky.uri)
        user = await served.add_user()
        hint = await sign_in(served, broken, broken_secret, user)
        await sign_in(served, wobbly, wobbly_secret, user)
        response = await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
        assert response.status_code == 200
        assert len(failing.posts) == 3  # every attempt used
        assert len(flaky.posts) == 2  # the second attempt got through
    events = {(e.event, e.client_id) for e in await served.store.audit.tail(20)}
    assert ("logout.backchannel_failed", broken.client_id) in events
    assert ("logout.backchannel_sent", wobbly.client_id) in events


async def test_an_unreachable_client_does_not_fail_the_logout(served: Served) -> None:
    with Receiver([]) as gone:
        uri = gone.uri
    client, secret = await client_with(served, uri)  # nothing listens there any more
    user = await served.add_user()
    hint = await sign_in(served, client, secret, user)
    response = await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"backchannel_logout_uri": "javascript:alert(1)"}, "invalid_redirect_uri"),
        ({"backchannel_logout_uri": "http://internal.example/logout"}, "invalid_redirect_uri"),
        ({"backchannel_logout_uri": "https://app.example/logout#x"}, "invalid_redirect_uri"),
        ({"backchannel_logout_uri": ["https://app.example/logout"]}, "invalid_client_metadata"),
        ({"backchannel_logout_session_required": True}, "invalid_client_metadata"),
    ],
)
async def test_bad_backchannel_registration_is_refused(
    served: Served, extra: dict[str, Any], error: str
) -> None:
    token = issue_initial_access_token(served.runtime.ctx.config, ttl=60, now=served.clock())
    metadata = {"redirect_uris": ["https://app.example/cb"], **extra}
    response = await served.http.post(
        "/register", json=metadata, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400 and response.json()["error"] == error
    assert await served.store.clients.list() == []


async def test_registered_backchannel_uri_is_kept_and_discovery_says_so(
    served: Served, receiver: Receiver
) -> None:
    token = issue_initial_access_token(served.runtime.ctx.config, ttl=60, now=served.clock())
    metadata = {"redirect_uris": ["https://app.example/cb"], "backchannel_logout_uri": receiver.uri}
    body = (
        await served.http.post(
            "/register", json=metadata, headers={"Authorization": f"Bearer {token}"}
        )
    ).json()
    assert body["backchannel_logout_uri"] == receiver.uri
    assert body["backchannel_logout_session_required"] is False
    document = (await served.http.get("/.well-known/openid-configuration")).json()
    assert document["backchannel_logout_supported"] is True
    assert document["backchannel_logout_session_supported"] is False
