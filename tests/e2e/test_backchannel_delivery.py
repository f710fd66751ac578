"""Back-channel logout between real processes: `ostiary users sign-out` (another process)
revokes the session's refresh tokens (the running server refuses them at once) and only
queues logout tokens, and a running `ostiary serve` posts them to a real loopback
receiver, which verifies each as a client must (Back-Channel Logout 1.0 §2.6). The receiver
is down at first and comes up later: the token is retried and delivered once. Two servers
on one PostgreSQL database deliver every token exactly once between them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from e2e_server import (
    HOST,
    CallbackServer,
    OstiaryServer,
    Person,
    free_port,
    postgres_database,
    postgres_unreachable,
    start_server,
    stop_server,
)
from e2e_user_agent import Pkce, authorization_url, authorize

from ostiary.jose import jwt
from ostiary.oauth.models import PendingLogout
from ostiary.store import open_store

EVENT = "http://schemas.openid.net/event/backchannel-logout"
WAIT = 30.0  # seconds a test waits for a background delivery before it fails
# quick retries, so "down, then up" takes seconds
FAST = {
    "OSTIARY_LOGOUT_RETRY_DELAY": "1",
    "OSTIARY_LOGOUT_DELIVERY_INTERVAL": "0.2",
}


class Receiver:
    """A client's back-channel logout endpoint on 127.0.0.1:`port`."""

    def __init__(self, port: int) -> None:
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                with owner._lock:
                    owner.tokens.extend(form.get("logout_token", []))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((HOST, port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.1)  # polling a real background task in another process


def pending(server: OstiaryServer) -> list[PendingLogout]:
    """The stored queue, read straight from the server's database."""
    url = server.env.get("OSTIARY_DATABASE_URL", f"sqlite:///{server.folder / 'ostiary.db'}")

    async def read() -> list[PendingLogout]:
        async with open_store(url, pool_size=1) as store:
            return list(await store.logouts.pending())

    return asyncio.run(read())


def sign_in(
    server: OstiaryServer, client: dict[str, Any], person: Person, redirect: str
) -> dict[str, Any]:
    """Sign in and consent in a new user agent (a new login session); the token response."""

    pkce = Pkce.new()
    url = authorization_url(
        server.endpoint("authorization"),
        client_id=client["client_id"],
        redirect_uri=redirect,
        scope="openid",
        state="s",
        pkce=pkce,
    )
    with httpx.Client(timeout=10) as agent:
        journey = authorize(
            agent, url, redirect_uri=redirect, username=person.username, password=person.password
        )
    assert journey.callback_url is not None
    code = dict(httpx.URL(journey.callback_url).params)["code"]
    response = httpx.post(
        server.endpoint("token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "code_verifier": pkce.verifier,
        },
        auth=(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def verify(server: OstiaryServer, token: str, client_id: str) -> dict[str, Any]:
    """Back-Channel Logout 1.0 §2.6, step by step, as the receiving client does it."""
    jwks = httpx.get(server.metadata()["jwks_uri"], timeout=10).json()
    assert jwt.unverified_header(token)["typ"] == "logout+jwt"
    claims = jwt.decode(
        token,
        jwks,
        algorithms=["RS256"],
        issuer=server.issuer,
        audience=client_id,
        required=("iat", "jti", "events"),
    )
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims
    assert abs(claims["iat"] - time.time()) < 60
    return claims


def setup_client(server: OstiaryServer, port: int, redirect: str, person: Person) -> dict[str, Any]:
    server.create_user(person.username, person.password)
    return server.create_client(
        name="Mail",
        grant_types="authorization_code,refresh_token",
        scopes="openid",
        redirect_uris=redirect,
        extra=["--backchannel-logout-uri", f"http://{HOST}:{port}/backchannel-logout"],
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield dict(FAST)
        return
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it (.ci/run)")
    with postgres_database() as url:
        yield FAST | {"OSTIARY_DATABASE_URL": url}


def test_cli_sign_out_is_delivered_by_the_running_server_once_the_client_is_up(
    settings: dict[str, str], tmp_path: Path, callback: CallbackServer
) -> None:
    backend = "postgresql" if "OSTIARY_DATABASE_URL" in settings else "sqlite"
    server = start_server(backend, tmp_path, settings)
    try:
        port = free_port()  # the client's receiver is down for now
        person = Person("bcl-person", "a long enough password")
        client = setup_client(server, port, callback.redirect_uri, person)
        tokens = sign_in(server, client, person, callback.redirect_uri)
        sid = jwt.decode(
            tokens["id_token"],
            httpx.get(server.metadata()["jwks_uri"], timeout=10).json(),
            algorithms=["RS256"],
            audience=client["client_id"],
            issuer=server.issuer,
        )["sid"]
        done = server.ostiary("users", "sign-out", "--username", person.username)
        assert done.returncode == 0, done.stderr
        assert "ended 1 session" in done.stdout
        # the command revoked the session's refresh token: the running server refuses it
        # (Back-Channel Logout 1.0 §2.7; the grant has no offline_access)
        refused = httpx.post(
            server.endpoint("token"),
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=(client["client_id"], client["client_secret"]),
            timeout=10,
        )
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
        wait_for(lambda: any(d.attempts >= 2 for d in pending(server)), "two failed attempts")
        receiver = Receiver(port)
        try:
            wait_for(lambda: len(receiver.tokens) == 1, "the logout token")
            wait_for(lambda: pending(server) == [], "the queue to empty")
            time.sleep(2)  # a few more rounds of the sender: nothing is sent twice
            (token,) = receiver.tokens
        finally:
            receiver.close()
        claims = verify(server, token, client["client_id"])
        assert claims["sid"] == sid
        audit = server.ostiary("audit", "tail", "--json")
        assert "logout.backchannel_sent" in audit.stdout, audit.stdout + audit.stderr
    finally:
        stop_server(server)
    assert "Traceback (most recent call last)" not in server.log(), server.log_tail()


def test_two_servers_on_postgresql_deliver_each_token_once(
    tmp_path: Path, callback: CallbackServer
) -> None:
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it (.ci/run)")
    sessions = 5
    with postgres_database() as url:
        settings = FAST | {"OSTIARY_DATABASE_URL": url}
        first = start_server("postgresql", tmp_path, settings)
        second = None
        try:
            shared = first.settings | {"OSTIARY_ISSUER": first.issuer}
            second = start_server("postgresql", tmp_path, shared, name="twin")
            port = free_port()
            person = Person("bcl-twins", "a long enough password")
            client = setup_client(first, port, callback.redirect_uri, person)
            sids = set()
            jwks = httpx.get(first.metadata()["jwks_uri"], timeout=10).json()
            for _ in range(sessions):  # five browsers, five login sessions
                token = sign_in(first, client, person, callback.redirect_uri)["id_token"]
                claims = jwt.decode(token, jwks, algorithms=["RS256"], audience=client["client_id"])
                sids.add(claims["sid"])
            assert len(sids) == sessions
            receiver = Receiver(port)
            try:
                done = first.ostiary("users", "sign-out", "--username", person.username)
                assert done.returncode == 0, done.stderr
                wait_for(lambda: len(receiver.tokens) >= sessions, "every logout token")
                wait_for(lambda: pending(first) == [], "the queue to empty")
                time.sleep(2)  # more rounds of both senders: nothing is sent twice
                tokens = list(receiver.tokens)
            finally:
                receiver.close()
            claims_of = [verify(first, t, client["client_id"]) for t in tokens]
            assert len(tokens) == sessions
            assert {c["sid"] for c in claims_of} == sids
            assert len({c["jti"] for c in claims_of}) == sessions
        finally:
            if second is not None:
                stop_server(second)
            stop_server(first)
    for process in (first, second):
        assert process is not None
        assert "Traceback (most recent call last)" not in process.log(), process.log_tail()
