"""Back-Channel Logout 1.0 through the app: ending a login session queues a logout token for
each client that took part in it, and the sender posts them to real loopback HTTP servers,
verified here with ostiary.jose as a client would. The clock is the test's (no sleeps): the
sender is run by hand, one round at a time."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from server_app import PASSWORD, REDIRECT_URI, Pkce, Served, authorize_params, query_of, submit
from starlette.requests import Request

from ostiary.jose import jwt
from ostiary.oauth.backchannel_logout import LOGOUT_EVENT
from ostiary.oauth.models import Client, ClientOidc, User
from ostiary.oauth.registration import issue_initial_access_token
from ostiary.oauth.token_hash import hash_token
from ostiary.server.backchannel import LEASE, DeliveryPolicy, LogoutSender

pytestmark = pytest.mark.anyio


class Receiver:
    """A client's back-channel logout endpoint on 127.0.0.1: answers `statuses` in turn, then
    200; `headers` are sent with every answer."""

    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)  # its own copy: a parametrized list is shared
        self.posts: list[dict[str, list[str]]] = []
        self.content_types: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                owner.content_types.append(self.headers.get("Content-Type", ""))
                owner.posts.append(parse_qs(self.rfile.read(length).decode()))
                status = owner.statuses.pop(0) if owner.statuses else 200
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/backchannel-logout"

    def tokens(self) -> list[str]:
        return [post["logout_token"][0] for post in self.posts]

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


@pytest.fixture
async def sender(served: Served) -> AsyncIterator[LogoutSender]:
    """A sender on the app's context: 3 attempts, 10 s before the first retry."""
    sender = LogoutSender(served.runtime.ctx, DeliveryPolicy(attempts=3, first_delay=10))
    yield sender
    await sender.close()


async def sign_in(
    served: Served,
    client: Client,
    secret: str | None,
    user: User,
    *,
    http: httpx.AsyncClient | None = None,
    **extra: str,
) -> dict[str, Any]:
    """Sign in (when asked) and allow; return the token response."""
    http = http or served.http
    pkce = Pkce.new()
    page = await http.get(
        "/authorize?" + urlencode(authorize_params(client, pkce, scope="openid", **extra))
    )
    if 'name="password"' in page.text:
        page = await submit(http, page, username=user.username, password=PASSWORD)
    if page.status_code == 200:
        page = await submit(http, page, decision="allow")
    assert page.status_code == 303, page.text
    token = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(page.headers["location"])["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=(client.client_id, secret or ""),
    )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


async def client_with(served: Served, uri: str | None, **oidc: Any) -> tuple[Client, str | None]:
    return await served.add_client(
        scopes=frozenset({"openid"}), oidc=ClientOidc(backchannel_logout_uri=uri, **oidc)
    )


async def claims_of(served: Served, token: str, *, audience: str | list[str]) -> dict[str, Any]:
    """The ID or logout token's claims, checked as a strict client checks them."""
    jwks = (await served.http.get("/jwks.json")).json()
    return jwt.decode(
        token,
        jwks,
        algorithms=["RS256"],
        issuer=served.runtime.ctx.config.issuer,
        audience=audience,
        required=("iat", "exp"),
        now=served.clock(),
    )


async def check_logout_token(
    served: Served, token: str, client: Client, *, user: User, sid: str | None
) -> dict[str, Any]:
    """Back-Channel Logout 1.0 §2.6, as the receiving client validates it."""
    assert jwt.unverified_header(token)["typ"] == "logout+jwt"
    claims = await claims_of(served, token, audience=client.client_id)
    assert claims["sub"] == user.user_id and claims["events"] == {LOGOUT_EVENT: {}}
    assert claims["iat"] == served.clock() and claims["jti"]
    assert "nonce" not in claims  # §2.4: a token with a nonce must be refused
    assert claims.get("sid") == sid
    return claims


def browser_request(http: httpx.AsyncClient) -> Request:
    """A request carrying the browser's cookies, as the app would receive it."""
    cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    return Request({"type": "http", "headers": [(b"cookie", cookie.encode())]})


async def events(served: Served) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(e.event, e.client_id, dict(e.detail)) for e in await served.store.audit.tail(100)]


# -- sid ---------------------------------------------------------------------------------


async def test_id_tokens_of_one_session_share_a_sid_that_is_not_the_cookie(
    served: Served,
) -> None:
    mail, mail_secret = await client_with(served, None)
    calendar, calendar_secret = await client_with(served, None)
    user = await served.add_user()
    first = await sign_in(served, mail, mail_secret, user)
    second = await sign_in(served, calendar, calendar_secret, user)  # SSO: no password
    sid = (await claims_of(served, first["id_token"], audience=mail.client_id))["sid"]
    assert (await claims_of(served, second["id_token"], audience=calendar.client_id))["sid"] == sid
    signed_in = await served.runtime.signed_in(browser_request(served.http))
    assert signed_in is not None and signed_in[0].login is not None
    session = signed_in[0]
    assert session.login is not None and session.login.sid == sid
    # not the cookie's id nor the database key, and not derived from either
    assert session.session_id is not None and sid not in (session.session_id, hash_token(sid))
    assert session.login.session_hash == hash_token(session.session_id) != sid
    refreshed = await served.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(mail.client_id, mail_secret or ""),
    )
    claims = await claims_of(served, refreshed.json()["id_token"], audience=mail.client_id)
    assert claims["sid"] == sid  # the family keeps its session's sid (Core §12.2)
    async with served.browser() as other:  # another browser, another session
        third = await sign_in(served, mail, mail_secret, user, http=other)
    assert (await claims_of(served, third["id_token"], audience=mail.client_id))["sid"] != sid


async def test_a_client_that_requires_sid_gets_it_in_both_tokens(
    served: Served, receiver: Receiver, sender: LogoutSender
) -> None:
    strict, secret = await client_with(
        served, receiver.uri, backchannel_logout_session_required=True
    )
    user = await served.add_user()
    tokens = await sign_in(served, strict, secret, user)
    sid = (await claims_of(served, tokens["id_token"], audience=strict.client_id))["sid"]
    await served.http.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"]}))
    assert await sender.deliver_due() == 1
    (token,) = receiver.tokens()
    await check_logout_token(served, token, strict, user=user, sid=sid)


# -- who is told, and when ---------------------------------------------------------------


async def test_logout_tells_each_client_of_the_session_and_no_other(
    served: Served, receiver: Receiver, sender: LogoutSender
) -> None:
    mail, mail_secret = await client_with(served, receiver.uri)
    calendar, calendar_secret = await client_with(served, receiver.uri)
    quiet, quiet_secret = await client_with(served, None)  # registered no back-channel URI
    elsewhere, elsewhere_secret = await client_with(served, receiver.uri)
    user = await served.add_user()
    hint = (await sign_in(served, mail, mail_secret, user))["id_token"]
    sid = (await claims_of(served, hint, audience=mail.client_id))["sid"]
    await sign_in(served, calendar, calendar_secret, user)
    await sign_in(served, quiet, quiet_secret, user)
    async with served.browser() as other:  # the same person, signed in on another device
        await sign_in(served, elsewhere, elsewhere_secret, user, http=other)
    response = await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
    assert response.status_code == 200 and "signed out" in response.text
    assert receiver.posts == []  # the answer never waited on a client
    assert len(await served.store.logouts.pending()) == 2
    assert await sender.deliver_due() == 2
    audiences = set()
    clients = {mail.client_id: mail, calendar.client_id: calendar}
    jtis = set()
    for token in receiver.tokens():
        aud = (await claims_of(served, token, audience=list(clients)))["aud"]
        claims = await check_logout_token(served, token, clients[aud], user=user, sid=sid)
        audiences.add(claims["aud"])
        jtis.add(claims["jti"])
    assert len(jtis) == 2
    assert audiences == {mail.client_id, calendar.client_id}
    assert set(receiver.content_types) == {"application/x-www-form-urlencoded"}
    assert await served.store.logouts.pending() == []
    sent = [e for e in await events(served) if e[0] == "logout.backchannel_sent"]
    assert {e[1] for e in sent} == audiences and all(e[2]["attempts"] == 1 for e in sent)
    assert await sender.deliver_due() == 0  # delivered once


async def test_a_new_sign_in_in_the_same_browser_ends_the_old_session(
    served: Served, receiver: Receiver, sender: LogoutSender
) -> None:
    mail, secret = await client_with(served, receiver.uri)
    user = await served.add_user()
    first = await sign_in(served, mail, secret, user)
    old_sid = (await claims_of(served, first["id_token"], audience=mail.client_id))["sid"]
    second = await sign_in(served, mail, secret, user, prompt="login")
    new_sid = (await claims_of(served, second["id_token"], audience=mail.client_id))["sid"]
    assert new_sid != old_sid
    (queued,) = await served.store.logouts.pending()
    assert (queued.sid, queued.reason) == (old_sid, "replaced")
    await sender.deliver_due()
    (token,) = receiver.tokens()
    await check_logout_token(served, token, mail, user=user, sid=old_sid)


async def test_an_expired_session_is_swept_once(
    served: Served, receiver: Receiver, sender: LogoutSender
) -> None:
    mail, secret = await client_with(served, receiver.uri)
    user = await served.add_user()
    tokens = await sign_in(served, mail, secret, user)
    sid = (await claims_of(served, tokens["id_token"], audience=mail.client_id))["sid"]
    assert await sender.sweep() == 0
    served.clock.advance(served.runtime.settings.session_ttl)
    assert await sender.sweep() == 1
    assert await sender.sweep() == 0
    assert await sender.deliver_due() == 1
    (token,) = receiver.tokens()
    await check_logout_token(served, token, mail, user=user, sid=sid)
    (sent,) = [e for e in await events(served) if e[0] == "logout.backchannel_sent"]
    assert sent[2]["reason"] == "expired"


async def test_a_pairwise_client_is_told_the_sub_it_knows(
    served: Served, receiver: Receiver, sender: LogoutSender
) -> None:
    client, secret = await client_with(
        served, receiver.uri, subject_type="pairwise", sector_identifier="app.example"
    )
    user = await served.add_user()
    tokens = await sign_in(served, client, secret, user)
    id_claims = await claims_of(served, tokens["id_token"], audience=client.client_id)
    assert id_claims["sub"] != user.user_id
    await served.http.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"]}))
    await sender.deliver_due()
    (token,) = receiver.tokens()
    claims = await claims_of(served, token, audience=client.client_id)
    assert (claims["sub"], claims["sid"]) == (id_claims["sub"], id_claims["sid"])


# -- retries -------------------------------------------------------------------------------


async def test_a_failing_client_is_retried_with_back_off_then_delivered_once(
    served: Served, sender: LogoutSender
) -> None:
    with Receiver([503, 500]) as flaky:
        client, secret = await client_with(served, flaky.uri)
        user = await served.add_user()
        hint = (await sign_in(served, client, secret, user))["id_token"]
        await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
        assert await sender.deliver_due() == 1  # attempt 1: 503
        assert await sender.deliver_due() == 0  # not due again yet
        served.clock.advance(9)
        assert await sender.deliver_due() == 0
        served.clock.advance(1)
        assert await sender.deliver_due() == 1  # attempt 2, after 10 s: 500
        served.clock.advance(19)
        assert await sender.deliver_due() == 0  # the pause doubled
        served.clock.advance(1)
        assert await sender.deliver_due() == 1  # attempt 3: 200
        assert len(flaky.posts) == 3
        claims = [await claims_of(served, t, audience=client.client_id) for t in flaky.tokens()]
    # the same jti on every attempt (a client that saw it can say so), signed afresh each time
    assert len({c["jti"] for c in claims}) == 1
    assert [c["iat"] for c in claims] == [served.clock() - 30, served.clock() - 20, served.clock()]
    assert await served.store.logouts.pending() == []
    (sent,) = [e for e in await events(served) if e[0] == "logout.backchannel_sent"]
    assert sent[2]["attempts"] == 3


async def test_a_client_that_keeps_failing_is_given_up_after_the_last_attempt(
    served: Served, sender: LogoutSender
) -> None:
    with Receiver([500] * 10) as broken:
        client, secret = await client_with(served, broken.uri)
        user = await served.add_user()
        hint = (await sign_in(served, client, secret, user))["id_token"]
        await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
        for _ in range(3):
            assert await sender.deliver_due() == 1
            served.clock.advance(3600)
        assert await sender.deliver_due() == 0
        assert len(broken.posts) == 3
    assert await served.store.logouts.pending() == []
    (given_up,) = [e for e in await events(served) if e[0] == "logout.backchannel_given_up"]
    assert given_up[2] == {"attempts": 3, "reason": "logout", "why": "no attempt succeeded"}
    assert "logout.backchannel_sent" not in [e[0] for e in await events(served)]


@pytest.mark.parametrize(
    ("statuses", "headers", "why"),
    [
        ([400], {}, "the client answered 400"),  # §2.8: refused; trying again will not help
    ],
)
async def test_a_client_that_refuses_the_token_is_not_asked_again(
    served: Served,
    sender: LogoutSender,
    statuses: list[int],
    headers: dict[str, str],
    why: str,
) -> None:
    with Receiver(statuses, headers) as refusing:
        client, secret = await client_with(served, refusing.uri)
        user = await served.add_user()
        hint = (await sign_in(served, client, secret, user))["id_token"]
        await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
        assert await sender.deliver_due() == 1
        served.clock.advance(3600)
        assert await sender.deliver_due() == 0
        assert len(refusing.posts) == 1
    (given_up,) = [e for e in await events(served) if e[0] == "logout.backchannel_given_up"]
    assert given_up[2]["why"] == why


async def test_a_redirect_is_not_followed(served: Served, sender: LogoutSender) -> None:
    with Receiver([302, 302], {"Location": "http://127.0.0.1:9/elsewhere"}) as moved:
        client, secret = await client_with(served, moved.uri)
        user = await served.add_user()
        hint = (await sign_in(served, client, secret, user))["id_token"]
        await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
        assert await sender.deliver_due() == 1
        (queued,) = await served.store.logouts.pending()
        assert queued.attempts == 1  # a failure, kept for another attempt


async def test_an_unreachable_client_neither_fails_the_logout_nor_is_forgotten(
    served: Served, sender: LogoutSender
) -> None:
    with Receiver([]) as gone:
        uri = gone.uri
    client, secret = await client_with(served, uri)  # nothing listens there any more
    user = await served.add_user()
    hint = (await sign_in(served, client, secret, user))["id_token"]
    response = await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
    assert response.status_code == 200
    assert await sender.deliver_due() == 1
    (queued,) = await served.store.logouts.pending()
    assert queued.attempts == 1


async def test_a_client_deleted_or_silenced_meanwhile_is_not_contacted(
    served: Served, receiver: Receiver, sender: LogoutSender
) -> None:
    deleted, deleted_secret = await client_with(served, receiver.uri)
    silenced, silenced_secret = await client_with(served, receiver.uri)
    user = await served.add_user()
    hint = (await sign_in(served, deleted, deleted_secret, user))["id_token"]
    await sign_in(served, silenced, silenced_secret, user)
    await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
    assert len(await served.store.logouts.pending()) == 2
    await served.store.clients.delete(deleted.client_id)  # its deliveries go with it
    await served.store.clients.update(
        dataclasses.replace(silenced, oidc=ClientOidc(backchannel_logout_uri=None))
    )
    assert await sender.deliver_due() == 1
    assert receiver.posts == [] and await served.store.logouts.pending() == []
    (given_up,) = [e for e in await events(served) if e[0] == "logout.backchannel_given_up"]
    assert given_up[1] == silenced.client_id


async def test_a_second_process_does_not_send_what_the_first_has_claimed(
    served: Served, receiver: Receiver, sender: LogoutSender
) -> None:
    client, secret = await client_with(served, receiver.uri)
    user = await served.add_user()
    hint = (await sign_in(served, client, secret, user))["id_token"]
    await served.http.get("/logout?" + urlencode({"id_token_hint": hint}))
    claimed = await served.store.logouts.claim(now=served.clock(), lease=LEASE, limit=10)
    assert len(claimed) == 1  # as if another process had it, and then died
    assert await sender.deliver_due() == 0
    served.clock.advance(LEASE)
    assert await sender.deliver_due() == 1  # its lease ran out: taken over
    assert len(receiver.posts) == 1


# -- registration and discovery --------------------------------------------------------------


async def register(served: Served, **extra: Any) -> httpx.Response:
    token = issue_initial_access_token(served.runtime.ctx.config, ttl=60, now=served.clock())
    metadata = {"redirect_uris": ["https://app.example/cb"], **extra}
    return await served.http.post(
        "/register", json=metadata, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"backchannel_logout_uri": "javascript:alert(1)"},
        {"backchannel_logout_uri": "com.example.app:/logout"},
        {"backchannel_logout_uri": "http://internal.example/logout"},
        {"backchannel_logout_uri": "http://127.0.0.2/logout"},
        {"backchannel_logout_uri": "https://app.example/logout#x"},
        {"backchannel_logout_uri": "/relative"},
        {"backchannel_logout_uri": "https://user:pw@app.example/logout"},
        {"backchannel_logout_uri": "https://" + "a" * 5000 + ".example/"},
        {"backchannel_logout_uri": ["https://app.example/logout"]},
        {"backchannel_logout_uri": {"uri": "https://app.example/logout"}},
        {"backchannel_logout_uri": 1},
        {"backchannel_logout_uri": None},
        {"backchannel_logout_session_required": "true"},
        {"backchannel_logout_session_required": 1},
        {"backchannel_logout_session_required": None},
        {"backchannel_logout_session_required": [True]},
    ],
    ids=[
        "javascript",
        "private-scheme",
        "http",
        "http-not-loopback-ip",
        "fragment",
        "relative",
        "userinfo",
        "long",
        "array",
        "object",
        "number",
        "null",
        "required-string",
        "required-number",
        "required-null",
        "required-array",
    ],
)
async def test_bad_backchannel_registration_is_refused(
    served: Served, extra: dict[str, Any]
) -> None:
    # a logout URI is client metadata, not a redirect URI: RFC 7591 §3.2.2 keeps
    # invalid_redirect_uri for redirect_uris (Back-Channel Logout 1.0 §2.2)
    response = await register(served, **extra)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_client_metadata"
    assert next(iter(extra)) in body["error_description"]
    assert await served.store.clients.list() == []


@pytest.mark.parametrize("required", [True, False])
async def test_registered_backchannel_metadata_is_kept_and_discovery_says_so(
    served: Served, receiver: Receiver, required: bool
) -> None:
    body = (
        await register(
            served,
            backchannel_logout_uri=receiver.uri,
            backchannel_logout_session_required=required,
        )
    ).json()
    assert body["backchannel_logout_uri"] == receiver.uri
    assert body["backchannel_logout_session_required"] is required
    stored = await served.store.clients.get(body["client_id"])
    assert stored is not None and stored.oidc.backchannel_logout_session_required is required
    read = await served.http.get(
        body["registration_client_uri"],
        headers={"Authorization": f"Bearer {body['registration_access_token']}"},
    )
    assert read.json()["backchannel_logout_session_required"] is required
    document = (await served.http.get("/.well-known/openid-configuration")).json()
    assert document["backchannel_logout_supported"] is True
    assert document["backchannel_logout_session_supported"] is True
    assert "sid" in document["claims_supported"]
