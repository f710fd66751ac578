"""`ostiary users set` (a user's OpenID Connect standard claims, checked before they are kept),
`ostiary users sign-out` (ends their provider sessions) and `ostiary clients
registration-token` (initial access tokens for RFC 7591)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cli_databases import in_store
from cli_run import Run, assert_one_line_error

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.models import (
    Client,
    ClientOidc,
    LoginSession,
    PendingLogout,
    RefreshToken,
    User,
)
from ostiary.oauth.store import Store
from ostiary.server.key_secret import load_key_secret, with_derived_keys
from ostiary.server.settings import Settings

PASSWORD = "correct horse battery staple"


def stored_user(url: str, username: str = "alice") -> User | None:
    async def load(store: Store) -> User | None:
        return await store.users.by_username(username)

    return in_store(url, load)


@pytest.fixture
def alice(ostiary: Run, database_url: str) -> str:
    result = ostiary(
        "users", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD.encode()
    )
    assert result.status == 0, result.err
    return database_url


def test_claims_are_set_typed_and_removed(ostiary: Run, alice: str) -> None:
    result = ostiary(
        *("users", "set", "--username", "alice", "--json"),
        *("--claim", "name=Alice Liddell", "--claim", "email=alice@example.com"),
        *("--claim", "email_verified=true", "--claim", "address.locality=Oxford"),
        *("--claim", "address.country=GB"),
    )
    assert result.status == 0, result.err
    shown = json.loads(result.out)
    user = stored_user(alice)
    assert user is not None and dict(user.claims) == shown
    assert shown["email_verified"] is True
    assert shown["address"] == {"locality": "Oxford", "country": "GB"}
    assert isinstance(shown["updated_at"], int)
    removed = ostiary(
        *("users", "set", "--username", "alice"),
        *("--unset", "email", "--unset", "email_verified", "--unset", "address.country"),
    )
    assert removed.status == 0, removed.err
    user = stored_user(alice)
    assert user is not None
    assert set(user.claims) == {"name", "address", "updated_at"}
    assert user.claims["address"] == {"locality": "Oxford"}
    assert user.password_hash.startswith("$argon2id$")  # untouched


@pytest.mark.parametrize(
    ("claim", "fragment"),
    [
        ("email_verified=yes", "true or false"),
        ("favourite_colour=blue", "not an OpenID Connect standard claim"),
        ("address.planet=Mars", "address must be an object"),
        ("name.first=Al", "only address has fields"),
        ("name=" + "x" * 2000, "1 to 1024 characters"),
        ("name", "NAME=VALUE"),
    ],
)
def test_bad_claims_are_refused_and_nothing_changes(
    ostiary: Run, alice: str, claim: str, fragment: str
) -> None:
    ok = ostiary("users", "set", "--username", "alice", "--claim", "nickname=Al")
    assert ok.status == 0
    before = stored_user(alice)
    result = ostiary("users", "set", "--username", "alice", "--claim", claim)
    assert_one_line_error(result, fragment)
    assert stored_user(alice) == before


def test_unknown_user_is_refused(ostiary: Run, alice: str) -> None:
    assert_one_line_error(
        ostiary("users", "set", "--username", "bob", "--claim", "name=Bob"), "no user named"
    )


def test_registration_token_is_an_initial_access_token_of_this_server(
    ostiary: Run, database_url: str, tmp_path: Path
) -> None:
    result = ostiary("clients", "registration-token", "--ttl", "10m")
    assert result.status == 0, result.err
    token = result.out.strip()
    secret = load_key_secret(tmp_path / "ostiary.key", create=False)
    config = with_derived_keys(Settings().server_config(), secret)
    claims = jwt.decode(
        token,
        JWK.from_secret(config.registration_key),
        algorithms=["HS256"],
        typ="ostiary-initial-access+jwt",
    )
    assert claims["exp"] - claims["iat"] == 600
    assert_one_line_error(ostiary("clients", "registration-token", "--ttl", "0"), "--ttl")


def test_sign_out_ends_the_users_sessions(ostiary: Run, alice: str) -> None:
    async def seed(store: Store) -> None:
        user = await store.users.by_username("alice")
        assert user is not None
        now = int(time.time())
        for name in ("s1", "s2"):
            await store.sessions.add(
                LoginSession(
                    session_hash=name,
                    user_id=user.user_id,
                    auth_time=now,
                    created_at=now,
                    expires_at=now + 3600,
                )
            )

    in_store(alice, seed)
    result = ostiary("users", "sign-out", "--username", "alice")
    assert result.status == 0, result.err
    assert result.out.strip() == "ended 2 sessions of alice"

    async def live(store: Store) -> list[LoginSession | None]:
        now = int(time.time())
        return [await store.sessions.get(name, now=now) for name in ("s1", "s2")]

    assert in_store(alice, live) == [None, None]
    assert_one_line_error(ostiary("users", "sign-out", "--username", "bob"), "no user named")


def seed_sessions_with_a_listening_client(url: str, sids: tuple[str, ...]) -> None:
    async def seed(store: Store) -> None:
        user = await store.users.by_username("alice")
        assert user is not None
        now = int(time.time())
        await store.clients.add(
            Client(
                client_id="mail",
                name="Mail",
                auth_method="none",
                redirect_uris=("https://mail.example/cb",),
                oidc=ClientOidc(backchannel_logout_uri="https://mail.example/bcl"),
            )
        )
        for sid in sids:
            await store.sessions.add(
                LoginSession(
                    session_hash=f"h-{sid}",
                    user_id=user.user_id,
                    auth_time=now,
                    created_at=now,
                    expires_at=now + 3600,
                    sid=sid,
                )
            )
            await store.sessions.join(f"h-{sid}", "mail", now=now)

    in_store(url, seed)


def queued(url: str) -> list[PendingLogout]:
    async def load(store: Store) -> list[PendingLogout]:
        return list(await store.logouts.pending())

    return in_store(url, load)


def test_sign_out_only_queues_the_logout_tokens(ostiary: Run, alice: str) -> None:
    seed_sessions_with_a_listening_client(alice, ("sid-1", "sid-2"))
    result = ostiary("users", "sign-out", "--username", "alice")
    assert result.status == 0, result.err
    deliveries = queued(alice)
    assert sorted((d.client_id, d.sid, d.reason) for d in deliveries) == [
        ("mail", "sid-1", "sign-out"),
        ("mail", "sid-2", "sign-out"),
    ]
    assert all(d.attempts == 0 for d in deliveries)  # nothing sent: a running server does it


def test_deleting_a_user_queues_logout_tokens_that_outlive_them(ostiary: Run, alice: str) -> None:
    seed_sessions_with_a_listening_client(alice, ("sid-1",))
    result = ostiary("users", "delete", "alice")
    assert result.status == 0, result.err
    assert stored_user(alice) is None
    (delivery,) = queued(alice)
    assert (delivery.sid, delivery.reason) == ("sid-1", "user deleted")


def seed_refresh_tokens(url: str) -> None:
    """Three grants of alice at mail: two made in session sid-1 (one with offline_access),
    one in sid-2."""

    async def seed(store: Store) -> None:
        user = await store.users.by_username("alice")
        assert user is not None
        now = int(time.time())
        for name, sid, scope in [
            ("online", "sid-1", {"openid"}),
            ("offline", "sid-1", {"openid", "offline_access"}),
            ("other", "sid-2", {"openid"}),
        ]:
            await store.tokens.add_refresh(
                RefreshToken(
                    token_hash=f"rt-{name}",
                    grant_id=f"g-{name}",
                    client_id="mail",
                    user_id=user.user_id,
                    scope=frozenset(scope),
                    resources=(),
                    created_at=now,
                    expires_at=now + 3600,
                    sid=sid,
                )
            )

    in_store(url, seed)


def live_refresh_tokens(url: str) -> list[str]:
    async def load(store: Store) -> list[str]:
        now = int(time.time())
        names = ("rt-online", "rt-offline", "rt-other")
        return [n for n in names if await store.tokens.find_refresh(n, now=now) is not None]

    return in_store(url, load)


def test_sign_out_revokes_the_refresh_tokens_of_the_sessions_but_offline_ones(
    ostiary: Run, alice: str
) -> None:
    seed_sessions_with_a_listening_client(alice, ("sid-1",))
    seed_refresh_tokens(alice)
    result = ostiary("users", "sign-out", "--username", "alice")
    assert result.status == 0, result.err
    # sid-2's session is not stored (ended and purged, say): nothing of it changes
    assert live_refresh_tokens(alice) == ["rt-offline", "rt-other"]

    async def events(store: Store) -> list[dict[str, object]]:
        return [
            dict(e.detail) for e in await store.audit.tail(20) if e.event.startswith("session.")
        ]

    assert in_store(alice, events) == [
        {"reason": "sign-out", "revoked_grants": 1, "revoked_tokens": 1, "kept_offline_grants": 1},
        {"via": "cli", "sessions": 1},
    ]


def test_a_client_may_require_sid_in_logout_tokens(ostiary: Run, database_url: str) -> None:
    result = ostiary(
        *("clients", "create", "--name", "Mail", "--redirect-uris", "https://mail.example/cb"),
        *("--scopes", "openid", "--backchannel-logout-uri", "https://mail.example/bcl"),
        *("--backchannel-logout-session-required", "--json"),
    )
    assert result.status == 0, result.err
    shown = json.loads(result.out)
    assert shown["backchannel_logout_session_required"] is True

    async def load(store: Store) -> Client | None:
        return await store.clients.get(shown["client_id"])

    client = in_store(database_url, load)
    assert client is not None and client.oidc.backchannel_logout_session_required


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("javascript:alert(1)", "https"),
        ("http://mail.example/bcl", "loopback"),
        ("https://mail.example/bcl#top", "fragment"),
        ("/bcl", "absolute"),
        ("https://user@mail.example/bcl", "user info"),
        ("https://mail.example/" + "a" * 2100, "too long"),
    ],
    ids=["javascript", "http", "fragment", "relative", "userinfo", "long"],
)
def test_a_bad_backchannel_logout_uri_is_refused(
    ostiary: Run, database_url: str, uri: str, fragment: str
) -> None:
    # the same rule as /register's (oauth.logout_uri), not the redirect URI rule
    create = ("clients", "create", "--name", "Mail", "--redirect-uris", "https://mail.example/cb")
    first = ostiary(*create, "--backchannel-logout-uri", "https://mail.example/bcl", "--json")
    assert first.status == 0, first.err
    result = ostiary(*create, "--backchannel-logout-uri", uri)
    assert_one_line_error(result, "--backchannel-logout-uri")
    assert fragment in result.err

    async def load(store: Store) -> list[str]:
        return [client.client_id for client in await store.clients.list()]

    assert in_store(database_url, load) == [json.loads(first.out)["client_id"]]


def test_a_client_registers_a_frontchannel_logout_uri(ostiary: Run, database_url: str) -> None:
    uri = "https://mail.example/fcl?tenant=7"
    result = ostiary(
        *("clients", "create", "--name", "Mail", "--redirect-uris", "https://mail.example/cb"),
        *("--scopes", "openid", "--frontchannel-logout-uri", uri),
        *("--frontchannel-logout-session-required", "--json"),
    )
    assert result.status == 0, result.err
    shown = json.loads(result.out)
    assert shown["frontchannel_logout_uri"] == uri
    assert shown["frontchannel_logout_session_required"] is True

    async def load(store: Store) -> Client | None:
        return await store.clients.get(shown["client_id"])

    client = in_store(database_url, load)
    assert client is not None and client.oidc.frontchannel_logout_uri == uri
    assert client.oidc.frontchannel_logout_session_required
    again = ostiary("clients", "show", shown["client_id"], "--json")
    assert again.status == 0, again.err
    assert json.loads(again.out)["frontchannel_logout_uri"] == uri
    text = ostiary("clients", "show", shown["client_id"])
    assert f"frontchannel_logout_uri: {uri}" in " ".join(text.out.split())


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("javascript:alert(1)", "https"),
        ("http://mail.example/fcl", "loopback"),
        ("https://mail.example/fcl#top", "fragment"),
        ("/fcl", "absolute"),
        ("https://user@mail.example/fcl", "user info"),
        ("https://mail.example/fcl?sid=1", "sid"),
        ("https://mail.example/fcl?a=1&iss=x", "iss"),
        ("https://mail.example/" + "a" * 2100, "too long"),
    ],
    ids=["javascript", "http", "fragment", "relative", "userinfo", "sid", "iss", "long"],
)
def test_a_bad_frontchannel_logout_uri_is_refused(
    ostiary: Run, database_url: str, uri: str, fragment: str
) -> None:
    create = ("clients", "create", "--name", "Mail", "--redirect-uris", "https://mail.example/cb")
    first = ostiary(*create, "--frontchannel-logout-uri", "https://mail.example/fcl", "--json")
    assert first.status == 0, first.err
    result = ostiary(*create, "--frontchannel-logout-uri", uri)
    assert_one_line_error(result, "--frontchannel-logout-uri")
    assert fragment in result.err

    async def load(store: Store) -> list[str]:
        return [client.client_id for client in await store.clients.list()]

    assert in_store(database_url, load) == [json.loads(first.out)["client_id"]]
