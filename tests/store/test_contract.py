"""The `Store` contract (ostiary/oauth/store.py), the same cases on MemoryStore, SQLite and
PostgreSQL: every method, every CodeConsumption and Rotation outcome, and the races that
must have exactly one winner."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from ostiary.oauth.models import (
    Api,
    AuditEvent,
    AuthorizationCode,
    ClaimRequest,
    ClaimsRequest,
    Client,
    ClientOidc,
    Consent,
    Issuance,
    IssuedAccessToken,
    LoginSession,
    RefreshToken,
    SigningKey,
    User,
)
from ostiary.oauth.store import Store

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000
RACERS = 50


def make_client(client_id: str = "c1", **fields: Any) -> Client:
    values: dict[str, Any] = {
        "client_id": client_id,
        "name": f"App {client_id}",
        "auth_method": "client_secret_basic",
        "secret_hash": "sha256$c2FsdA$aGFzaA",
        "redirect_uris": ("https://app.example/cb", "http://127.0.0.1/cb"),
        "grant_types": frozenset({"authorization_code", "refresh_token"}),
        "scopes": frozenset({"openid", "read", "write"}),
        "created_at": NOW,
    }
    return Client(**(values | fields))


def make_user(user_id: str = "u1", username: str = "alice") -> User:
    return User(
        user_id=user_id, username=username, password_hash="$argon2id$v=19$x", created_at=NOW
    )


def make_code(code_hash: str = "code-1", **fields: Any) -> AuthorizationCode:
    values: dict[str, Any] = {
        "code_hash": code_hash,
        "grant_id": "g1",
        "client_id": "c1",
        "user_id": "u1",
        "redirect_uri": "https://app.example/cb",
        "scope": frozenset({"openid", "read"}),
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "resources": ("https://api.example", "https://notes.example"),
        "nonce": "n-0S6_WzA2Mj",
        "auth_time": NOW - 5,
        "created_at": NOW,
        "expires_at": NOW + 60,
        "sid": "sid-of-code",
    }
    return AuthorizationCode(**(values | fields))


def make_refresh(token_hash: str = "rt-1", **fields: Any) -> RefreshToken:  # noqa: S107
    values: dict[str, Any] = {
        "token_hash": token_hash,
        "grant_id": "g1",
        "client_id": "c1",
        "user_id": "u1",
        "scope": frozenset({"read", "offline_access"}),
        "resources": ("https://api.example",),
        "created_at": NOW,
        "expires_at": NOW + 3600,
        "auth_time": NOW - 5,
        "sid": "sid-of-grant",
    }
    return RefreshToken(**(values | fields))


def make_access(token_id: str = "jti-1", **fields: Any) -> IssuedAccessToken:  # noqa: S107
    values: dict[str, Any] = {
        "token_id": token_id,
        "format": "jwt",
        "client_id": "c1",
        "grant_id": "g1",
        "subject": "u1",
        "scope": frozenset({"read"}),
        "audience": ("https://notes.example", "https://api.example"),
        "issued_at": NOW,
        "expires_at": NOW + 600,
        "extra": {"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}},
    }
    return IssuedAccessToken(**(values | fields))


def make_key(kid: str, created_at: int, **fields: Any) -> SigningKey:
    values: dict[str, Any] = {
        "kid": kid,
        "alg": "ES256",
        "public_jwk": {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ", "kid": kid},
        "private_jwe": "eyJhbGciOiJkaXIifQ..iv.ct.tag",
        "created_at": created_at,
        "activates_at": created_at + 86_400,
    }
    return SigningKey(**(values | fields))


@pytest.fixture
async def owners(store: Store) -> Store:
    """A store holding client c1 and user u1, which codes and tokens belong to."""
    await store.clients.add(make_client())
    await store.users.add(make_user())
    return store


# -- clients -------------------------------------------------------------------------------


async def test_client_round_trips_every_field(store: Store) -> None:
    client = make_client(
        jwks={"keys": [{"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ", "kid": "k"}]},
        token_format="opaque",
        legacy_password_grant=True,
        grant_types=frozenset({"password", "client_credentials"}),
        oidc=ClientOidc(
            id_token_signed_response_alg="EdDSA",
            userinfo_signed_response_alg="ES256",
            subject_type="pairwise",
            sector_identifier="app.example",
            post_logout_redirect_uris=("https://app.example/bye", "http://127.0.0.1/bye"),
            backchannel_logout_uri="https://app.example/bcl",
            backchannel_logout_session_required=True,
            frontchannel_logout_uri="https://app.example/fcl?tenant=7",
            frontchannel_logout_session_required=True,
        ),
    )
    await store.clients.add(client)
    assert await store.clients.get("c1") == client


async def test_client_update_replaces_all_but_creation(store: Store) -> None:
    await store.clients.add(make_client())
    changed = make_client(
        name="Renamed",
        redirect_uris=("https://app.example/v2",),
        scopes=frozenset({"openid"}),
        created_at=NOW + 99,
        oidc=ClientOidc(registration_token_hash="h", post_logout_redirect_uris=("https://a/x",)),
    )
    assert await store.clients.update(changed) is True
    assert await store.clients.get("c1") == dataclasses.replace(changed, created_at=NOW)
    assert await store.clients.update(make_client("c2")) is False
    assert await store.clients.get("c2") is None


async def test_public_client_without_secret(store: Store) -> None:
    client = make_client(auth_method="none", secret_hash=None, scopes=frozenset())
    await store.clients.add(client)
    found = await store.clients.get("c1")
    assert found == client
    assert found.is_public


async def test_unknown_client_is_none(store: Store) -> None:
    assert await store.clients.get("nobody") is None


async def test_client_id_taken_twice_refused(store: Store) -> None:
    await store.clients.add(make_client())
    with pytest.raises(ValueError, match="exists"):
        await store.clients.add(make_client(name="Impostor"))
    assert (await store.clients.get("c1")) == make_client()


async def test_clients_listed_by_creation_then_id(store: Store) -> None:
    for client_id, created_at in [("c3", NOW), ("c1", NOW + 1), ("c2", NOW)]:
        await store.clients.add(make_client(client_id, created_at=created_at))
    assert [c.client_id for c in await store.clients.list()] == ["c2", "c3", "c1"]


async def test_client_delete(store: Store) -> None:
    await store.clients.add(make_client())
    assert await store.clients.delete("c1") is True
    assert await store.clients.get("c1") is None
    assert await store.clients.delete("c1") is False
    assert await store.clients.list() == []


async def test_deleting_a_client_removes_what_it_was_issued(owners: Store) -> None:
    store = owners
    await store.codes.put(make_code())
    await store.tokens.add_refresh(make_refresh())
    await store.tokens.add_access(make_access())
    await store.consents.put(Consent(user_id="u1", client_id="c1", scope=frozenset(), granted_at=0))
    assert await store.clients.delete("c1")
    assert (await store.codes.consume("code-1", now=NOW)).code is None
    assert await store.tokens.find_refresh("rt-1", now=NOW) is None
    assert await store.tokens.find_access("jti-1") is None
    assert await store.consents.get("u1", "c1") is None
    # a JWT the client still holds reads revoked at introspection
    assert await store.tokens.is_revoked("jti-1", "g1")
    assert await store.users.get("u1") == make_user()


# -- APIs (RFC 8707 resources) --------------------------------------------------------------

NOTES_API = Api(
    identifier="https://notes.example",
    scopes=frozenset({"notes:read", "notes:write"}),
    created_at=NOW,
)


async def test_api_round_trips(store: Store) -> None:
    await store.apis.add(NOTES_API)
    assert await store.apis.get("https://notes.example") == NOTES_API
    assert await store.apis.get("https://notes.example/") is None


async def test_api_without_scopes_round_trips(store: Store) -> None:
    api = Api(identifier="urn:example:ledger", scopes=frozenset(), created_at=NOW)
    await store.apis.add(api)
    assert await store.apis.get("urn:example:ledger") == api


async def test_api_identifier_taken_twice_refused(store: Store) -> None:
    await store.apis.add(NOTES_API)
    with pytest.raises(ValueError, match="exists"):
        await store.apis.add(dataclasses.replace(NOTES_API, scopes=frozenset({"admin"})))
    assert await store.apis.get(NOTES_API.identifier) == NOTES_API


async def test_apis_listed_by_identifier_and_deleted(store: Store) -> None:
    for identifier in ("https://b.example", "https://a.example", "https://c.example"):
        await store.apis.add(dataclasses.replace(NOTES_API, identifier=identifier))
    listed = [api.identifier for api in await store.apis.list()]
    assert listed == ["https://a.example", "https://b.example", "https://c.example"]
    assert await store.apis.delete("https://b.example") is True
    assert await store.apis.delete("https://b.example") is False
    assert await store.apis.get("https://b.example") is None
    assert len(await store.apis.list()) == 2


# -- users ---------------------------------------------------------------------------------


async def test_user_by_id_and_by_username(store: Store) -> None:
    await store.users.add(make_user())
    assert await store.users.get("u1") == make_user()
    assert await store.users.by_username("alice") == make_user()
    assert await store.users.by_username("Alice") is None  # exact match only
    assert await store.users.get("u2") is None
    assert await store.users.by_username("bob") is None


@pytest.mark.parametrize(
    ("user_id", "username"), [("u1", "other"), ("u2", "alice")], ids=["same-id", "same-username"]
)
async def test_user_taken_twice_refused(store: Store, user_id: str, username: str) -> None:
    await store.users.add(make_user())
    with pytest.raises(ValueError, match="exists"):
        await store.users.add(make_user(user_id, username))
    assert await store.users.list() == [make_user()]


async def test_user_update_replaces_password_hash_and_claims_only(store: Store) -> None:
    await store.users.add(make_user())
    claims = {"name": "Alice", "email_verified": True, "address": {"country": "NZ"}}
    changed = dataclasses.replace(
        make_user(), password_hash="$argon2id$v=19$y", claims=claims, username="mallory"
    )
    assert await store.users.update(changed) is True
    stored = await store.users.get("u1")
    assert stored == dataclasses.replace(changed, username="alice")
    assert await store.users.update(make_user("u2", "bob")) is False
    assert await store.users.get("u2") is None
    cleared = dataclasses.replace(make_user(), claims={})
    assert await store.users.update(cleared) is True
    assert await store.users.get("u1") == make_user()


async def test_users_listed_by_username(store: Store) -> None:
    for user_id, name in [("u1", "carol"), ("u2", "alice"), ("u3", "bob")]:
        await store.users.add(make_user(user_id, name))
    assert [u.username for u in await store.users.list()] == ["alice", "bob", "carol"]


async def test_user_delete(store: Store) -> None:
    await store.users.add(make_user())
    assert await store.users.delete("u1") is True
    assert await store.users.get("u1") is None
    assert await store.users.by_username("alice") is None
    assert await store.users.delete("u1") is False


def make_session(session_hash: str = "s1", user_id: str = "u1") -> LoginSession:
    return LoginSession(
        session_hash=session_hash,
        user_id=user_id,
        auth_time=NOW - 5,
        created_at=NOW,
        expires_at=NOW + 100,
    )


@pytest.mark.parametrize(("delta", "live"), [(99, True), (100, False)])
async def test_session_lives_until_it_expires(owners: Store, delta: int, live: bool) -> None:
    await owners.sessions.add(make_session())
    found = await owners.sessions.get("s1", now=NOW + delta)
    assert (found == make_session()) if live else found is None


async def test_ended_session_stays_ended(owners: Store) -> None:
    await owners.sessions.add(make_session())
    await owners.sessions.add(make_session("s2"))
    assert await owners.sessions.end("s1", now=NOW + 1) is True
    assert await owners.sessions.end("s1", now=NOW + 2) is False
    assert await owners.sessions.get("s1", now=NOW + 2) is None
    assert await owners.sessions.get("s2", now=NOW + 2) == make_session("s2")
    assert await owners.sessions.end("unknown", now=NOW) is False
    with pytest.raises(ValueError, match="exists"):
        await owners.sessions.add(make_session("s2"))


async def test_ending_a_users_sessions_leaves_others(owners: Store) -> None:
    await owners.users.add(make_user("u2", "bob"))
    for name, user in [("s1", "u1"), ("s2", "u1"), ("s3", "u2")]:
        await owners.sessions.add(make_session(name, user))
    await owners.sessions.end("s2", now=NOW)
    assert await owners.sessions.end_for_user("u1", now=NOW + 1) == 1
    assert await owners.sessions.get("s1", now=NOW + 1) is None
    assert await owners.sessions.get("s3", now=NOW + 1) is not None
    assert await owners.users.delete("u2") is True
    assert await owners.sessions.get("s3", now=NOW + 1) is None


async def test_deleting_a_user_ends_their_grants(owners: Store) -> None:
    store = owners
    await store.codes.put(make_code())
    await store.tokens.add_refresh(make_refresh())
    await store.tokens.add_access(make_access(grant_id="g2"))
    await store.consents.put(Consent(user_id="u1", client_id="c1", scope=frozenset(), granted_at=0))
    assert await store.users.delete("u1")
    assert (await store.codes.consume("code-1", now=NOW)).code is None
    assert await store.tokens.find_refresh("rt-1", now=NOW) is None
    assert await store.consents.get("u1", "c1") is None
    assert await store.tokens.is_revoked("jti-1", "g2")
    assert await store.tokens.is_revoked("jti-1", "g1")
    assert await store.clients.get("c1") is not None


# -- authorization codes ---------------------------------------------------------------------


async def test_code_first_redemption_returns_it(owners: Store) -> None:
    await owners.codes.put(make_code())
    first = await owners.codes.consume("code-1", now=NOW)
    assert first.code == make_code()
    assert first.replayed is False


async def test_code_second_redemption_is_a_replay(owners: Store) -> None:
    await owners.codes.put(make_code())
    await owners.codes.consume("code-1", now=NOW)
    again = await owners.codes.consume("code-1", now=NOW + 1)
    assert again.code == make_code()
    assert again.replayed is True
    # a replay after expiry is still a replay (until the code is purged)
    late = await owners.codes.consume("code-1", now=NOW + 3600)
    assert late.replayed is True


async def test_unknown_code_is_nothing(owners: Store) -> None:
    result = await owners.codes.consume("never-issued", now=NOW)
    assert result.code is None
    assert result.replayed is False


@pytest.mark.parametrize(("delta", "live"), [(-1, True), (0, False), (1, False)])
async def test_code_expiry_boundary(owners: Store, delta: int, live: bool) -> None:
    await owners.codes.put(make_code(expires_at=NOW + 60))
    result = await owners.codes.consume("code-1", now=NOW + 60 + delta)
    assert (result.code is not None) is live
    assert result.replayed is False


async def test_expired_code_stays_unredeemable(owners: Store) -> None:
    await owners.codes.put(make_code())
    assert (await owners.codes.consume("code-1", now=NOW + 60)).code is None
    assert (await owners.codes.consume("code-1", now=NOW + 61)) == (
        await owners.codes.consume("never", now=NOW)
    )


async def test_code_minimal_fields_round_trip(owners: Store) -> None:
    code = make_code(nonce=None, resources=(), scope=frozenset(), auth_time=0)
    await owners.codes.put(code)
    assert (await owners.codes.consume("code-1", now=NOW)).code == code


CLAIMS = ClaimsRequest(
    userinfo={"email": ClaimRequest(essential=True), "name": ClaimRequest()},
    id_token={
        "sub": ClaimRequest(values=("u1",)),
        "phone_number": ClaimRequest(essential=False, values=("+44 1865 000000", 7, 1.5, True)),
    },
)


async def test_code_keeps_its_claims_request(owners: Store) -> None:
    """OpenID Connect Core §5.5: the request travels with the code to the token endpoint."""
    code = make_code(claims=CLAIMS)
    await owners.codes.put(code)
    assert await owners.codes.peek("code-1") == code
    assert (await owners.codes.consume("code-1", now=NOW)).code == code


async def test_code_peek_changes_nothing(owners: Store) -> None:
    await owners.codes.put(make_code())
    assert await owners.codes.peek("code-1") == make_code()
    assert await owners.codes.peek("code-1") == make_code()
    assert (await owners.codes.consume("code-1", now=NOW)).replayed is False
    assert await owners.codes.peek("code-1") == make_code()  # used: still there
    assert await owners.codes.peek("missing") is None


async def test_code_redeemed_once_under_a_race(owners: Store) -> None:
    await owners.codes.put(make_code())
    results = await asyncio.gather(
        *(owners.codes.consume("code-1", now=NOW) for _ in range(RACERS))
    )
    assert sum(1 for r in results if r.code is not None and not r.replayed) == 1
    assert sum(1 for r in results if r.replayed) == RACERS - 1
    assert all(r.code == make_code() for r in results)


# -- refresh tokens --------------------------------------------------------------------------


async def test_refresh_found_while_live(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh())
    assert await owners.tokens.find_refresh("rt-1", now=NOW) == make_refresh()
    assert await owners.tokens.find_refresh("rt-2", now=NOW) is None


@pytest.mark.parametrize(("delta", "live"), [(-1, True), (0, False), (1, False)])
async def test_refresh_expiry_boundary(owners: Store, delta: int, live: bool) -> None:
    await owners.tokens.add_refresh(make_refresh(expires_at=NOW + 3600))
    found = await owners.tokens.find_refresh("rt-1", now=NOW + 3600 + delta)
    assert (found is not None) is live


async def test_refresh_bound_to_a_dpop_key_round_trips(owners: Store) -> None:
    bound = make_refresh(jkt="0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    await owners.tokens.add_refresh(bound)
    assert await owners.tokens.peek_refresh("rt-1") == bound
    assert (await owners.tokens.find_refresh("rt-1", now=NOW)) == bound


async def test_client_credentials_refresh_has_no_user(owners: Store) -> None:
    token = make_refresh(user_id=None, resources=(), scope=frozenset())
    await owners.tokens.add_refresh(token)
    assert await owners.tokens.find_refresh("rt-1", now=NOW) == token


async def test_rotation_spends_the_old_token_and_stores_the_new(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh())
    replacement = make_refresh("rt-2", created_at=NOW + 10, expires_at=NOW + 7200)
    rotation = await owners.tokens.rotate_refresh("rt-1", replacement, now=NOW + 10)
    assert rotation.status == "rotated"
    assert rotation.previous == make_refresh()
    assert await owners.tokens.find_refresh("rt-1", now=NOW + 10) is None
    assert await owners.tokens.find_refresh("rt-2", now=NOW + 10) == replacement


async def test_refresh_family_keeps_its_claims_request(owners: Store) -> None:
    """The claims request stays with every token of the family, through rotation."""
    await owners.tokens.add_refresh(make_refresh(claims=CLAIMS))
    assert await owners.tokens.peek_refresh("rt-1") == make_refresh(claims=CLAIMS)
    replacement = make_refresh("rt-2", claims=CLAIMS)
    rotation = await owners.tokens.rotate_refresh("rt-1", replacement, now=NOW)
    assert rotation.previous == make_refresh(claims=CLAIMS)
    assert await owners.tokens.find_refresh("rt-2", now=NOW) == replacement
    again = await owners.tokens.rotate_refresh("rt-1", make_refresh("rt-3"), now=NOW)
    assert again.previous == make_refresh(claims=CLAIMS)  # reuse detection reads it too


async def test_rotated_token_presented_again_is_reuse(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh())
    await owners.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW)
    again = await owners.tokens.rotate_refresh("rt-1", make_refresh("rt-3"), now=NOW + 1)
    assert again.status == "reused"
    assert again.previous == make_refresh()
    assert await owners.tokens.find_refresh("rt-3", now=NOW) is None  # nothing stored


async def test_rotation_of_unknown_token_is_invalid(owners: Store) -> None:
    rotation = await owners.tokens.rotate_refresh("nope", make_refresh("rt-2"), now=NOW)
    assert rotation.status == "invalid"
    assert rotation.previous is None
    assert await owners.tokens.find_refresh("rt-2", now=NOW) is None


async def test_rotation_of_expired_token_is_invalid(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh(expires_at=NOW))
    rotation = await owners.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW)
    assert rotation.status == "invalid"
    assert rotation.previous == make_refresh(expires_at=NOW)
    assert await owners.tokens.find_refresh("rt-2", now=NOW) is None


async def test_rotation_of_revoked_token_is_invalid(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh())
    assert await owners.tokens.revoke_refresh("rt-1", now=NOW) == make_refresh()
    rotation = await owners.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW)
    assert rotation.status == "invalid"
    assert rotation.previous == make_refresh()


async def test_rotation_in_a_revoked_family_is_invalid(owners: Store) -> None:
    await owners.tokens.revoke_grant("g1", now=NOW)
    # written after the revocation, as a racing request might: still dead
    await owners.tokens.add_refresh(make_refresh())
    assert await owners.tokens.find_refresh("rt-1", now=NOW) is None
    rotation = await owners.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW)
    assert rotation.status == "invalid"


async def test_refresh_rotated_once_under_a_race(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh())
    results = await asyncio.gather(
        *(
            owners.tokens.rotate_refresh("rt-1", make_refresh(f"next-{i}"), now=NOW)
            for i in range(RACERS)
        )
    )
    statuses = [r.status for r in results]
    assert statuses.count("rotated") == 1
    assert statuses.count("reused") == RACERS - 1
    winner = statuses.index("rotated")
    live = [
        i
        for i in range(RACERS)
        if await owners.tokens.find_refresh(f"next-{i}", now=NOW) is not None
    ]
    assert live == [winner]


def make_issuance(token_id: str | None = "jti-new") -> Issuance:  # noqa: S107
    access = None if token_id is None else make_access(token_id, issued_at=NOW + 10)
    event = AuditEvent(
        event="token.issued",
        at=NOW + 10,
        client_id="c1",
        user_id="u1",
        grant_id="g1",
        address="198.51.100.7",
        detail={"grant_type": "refresh_token", "scope": "read"},
    )
    return Issuance(access=access, event=event)


@pytest.mark.parametrize("token_id", ["jti-new", None], ids=["access-recorded", "audit-only"])
async def test_rotation_records_its_issuance_with_it(owners: Store, token_id: str | None) -> None:
    await owners.tokens.add_refresh(make_refresh())
    issuance = make_issuance(token_id)
    rotation = await owners.tokens.rotate_refresh(
        "rt-1", make_refresh("rt-2"), now=NOW + 10, issuance=issuance
    )
    assert rotation.status == "rotated"
    if token_id is not None:
        assert await owners.tokens.find_access(token_id) == issuance.access
    assert await owners.audit.tail(1) == [issuance.event]


@pytest.mark.parametrize("state", ["rotated", "revoked", "expired", "unknown"])
async def test_rotation_that_fails_records_no_issuance(owners: Store, state: str) -> None:
    await owners.tokens.add_refresh(
        make_refresh(expires_at=NOW if state == "expired" else NOW + 3600)
    )
    if state == "rotated":
        await owners.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW)
    elif state == "revoked":
        await owners.tokens.revoke_refresh("rt-1", now=NOW)
    before = await owners.audit.tail()
    presented = "nope" if state == "unknown" else "rt-1"
    rotation = await owners.tokens.rotate_refresh(
        presented, make_refresh("rt-3"), now=NOW + 10, issuance=make_issuance()
    )
    assert rotation.status != "rotated"
    assert await owners.tokens.find_access("jti-new") is None
    assert await owners.tokens.peek_refresh("rt-3") is None
    assert await owners.audit.tail() == before


async def test_rotation_whose_issuance_cannot_be_stored_changes_nothing(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh())
    await owners.tokens.add_access(make_access("jti-taken"))
    before = await owners.audit.tail()
    with pytest.raises(ValueError, match="exists"):
        await owners.tokens.rotate_refresh(
            "rt-1", make_refresh("rt-2"), now=NOW + 10, issuance=make_issuance("jti-taken")
        )
    # one unit: the claim and the replacement went back with the failed record
    assert await owners.tokens.find_refresh("rt-1", now=NOW + 10) == make_refresh()
    assert await owners.tokens.peek_refresh("rt-2") is None
    assert await owners.audit.tail() == before


async def test_racing_rotations_record_one_issuance(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh())
    results = await asyncio.gather(
        *(
            owners.tokens.rotate_refresh(
                "rt-1", make_refresh(f"next-{i}"), now=NOW, issuance=make_issuance(f"jti-{i}")
            )
            for i in range(RACERS)
        )
    )
    winner = [r.status for r in results].index("rotated")
    recorded = [i for i in range(RACERS) if await owners.tokens.find_access(f"jti-{i}")]
    assert recorded == [winner]
    assert [e.event for e in await owners.audit.tail()] == ["token.issued"]


async def test_refresh_peek_sees_every_state(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh())
    assert await owners.tokens.peek_refresh("rt-1") == make_refresh()
    await owners.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW)
    assert await owners.tokens.peek_refresh("rt-1") == make_refresh()  # rotated
    await owners.tokens.revoke_refresh("rt-2", now=NOW)
    assert await owners.tokens.peek_refresh("rt-2") == make_refresh("rt-2")  # revoked
    assert await owners.tokens.peek_refresh("nope") is None


async def test_revoke_refresh(owners: Store) -> None:
    await owners.tokens.add_refresh(make_refresh())
    assert await owners.tokens.revoke_refresh("rt-1", now=NOW) == make_refresh()
    assert await owners.tokens.find_refresh("rt-1", now=NOW) is None
    assert await owners.tokens.revoke_refresh("rt-1", now=NOW) == make_refresh()  # idempotent
    assert await owners.tokens.revoke_refresh("nope", now=NOW) is None


# -- access tokens and revocation -------------------------------------------------------------


async def test_access_token_round_trips(owners: Store) -> None:
    opaque = make_access("hash-of-opaque", format="opaque", grant_id=None, extra={}, audience=())
    await owners.tokens.add_access(make_access())
    await owners.tokens.add_access(opaque)
    assert await owners.tokens.find_access("jti-1") == make_access()
    assert await owners.tokens.find_access("hash-of-opaque") == opaque
    assert await owners.tokens.find_access("jti-2") is None


async def test_found_access_token_is_returned_even_when_revoked(owners: Store) -> None:
    await owners.tokens.add_access(make_access())
    await owners.tokens.revoke_access("jti-1", expires_at=NOW + 600, now=NOW)
    assert await owners.tokens.find_access("jti-1") == make_access()
    assert await owners.tokens.is_revoked("jti-1", "g1")


async def test_revoking_a_jti_never_stored(owners: Store) -> None:
    assert not await owners.tokens.is_revoked("jti-cc", None)
    await owners.tokens.revoke_access("jti-cc", expires_at=NOW + 600, now=NOW)
    await owners.tokens.revoke_access("jti-cc", expires_at=NOW + 600, now=NOW)  # twice: fine
    assert await owners.tokens.is_revoked("jti-cc", None)
    assert await owners.tokens.is_revoked("jti-cc", "g-other")
    assert not await owners.tokens.is_revoked("jti-other", None)


async def test_revoke_grant_revokes_the_family(owners: Store) -> None:
    store = owners
    await store.tokens.add_refresh(make_refresh())
    await store.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW)
    await store.tokens.add_access(make_access("jti-1"))
    await store.tokens.add_access(make_access("jti-2"))
    await store.tokens.add_access(make_access("jti-3", grant_id="g2"))
    await store.tokens.add_refresh(make_refresh("rt-9", grant_id="g2"))
    await store.tokens.revoke_access("jti-2", expires_at=NOW + 600, now=NOW)

    # rt-1 (rotated) and rt-2 (live), jti-1 (jti-2 was revoked already)
    assert await store.tokens.revoke_grant("g1", now=NOW) == 3
    assert await store.tokens.revoke_grant("g1", now=NOW) == 0
    assert await store.tokens.find_refresh("rt-2", now=NOW) is None
    assert (await store.tokens.rotate_refresh("rt-2", make_refresh("x"), now=NOW)).status == (
        "invalid"
    )
    assert await store.tokens.is_revoked("jti-1", "g1")
    assert await store.tokens.is_revoked("jti-new", "g1")  # any token of the grant
    # the other grant is untouched
    assert not await store.tokens.is_revoked("jti-3", "g2")
    assert await store.tokens.find_refresh("rt-9", now=NOW) is not None


async def test_revoke_unknown_grant(owners: Store) -> None:
    assert await owners.tokens.revoke_grant("g-unknown", now=NOW) == 0
    assert await owners.tokens.is_revoked("any", "g-unknown")


async def test_revoke_for_user_client_ends_every_grant_there(owners: Store) -> None:
    store = owners
    await store.clients.add(make_client("c2"))
    await store.users.add(make_user("u2", "bob"))
    await store.codes.put(make_code("code-1"))  # in flight: never redeemed after
    await store.codes.put(make_code("code-2", grant_id="g5"))
    await store.codes.consume("code-2", now=NOW)  # its tokens may be written by a racer
    await store.tokens.add_refresh(make_refresh("rt-1"))
    await store.tokens.rotate_refresh("rt-1", make_refresh("rt-2"), now=NOW)
    await store.tokens.add_refresh(make_refresh("rt-3", grant_id="g2"))
    await store.tokens.add_refresh(make_refresh("rt-4", grant_id="g3"))
    await store.tokens.revoke_refresh("rt-4", now=NOW)
    await store.tokens.add_access(make_access("jti-1"))
    await store.tokens.add_access(make_access("jti-2", grant_id="g2"))
    await store.tokens.add_access(make_access("jti-3", grant_id="g2"))
    await store.tokens.revoke_access("jti-3", expires_at=NOW + 600, now=NOW)
    # the same user at another client, another user at the same client, the client itself
    await store.codes.put(make_code("code-c2", grant_id="g8", client_id="c2"))
    await store.codes.put(make_code("code-u2", grant_id="g9", user_id="u2"))
    await store.tokens.add_refresh(make_refresh("rt-c2", grant_id="g8", client_id="c2"))
    await store.tokens.add_refresh(make_refresh("rt-u2", grant_id="g9", user_id="u2"))
    await store.tokens.add_access(make_access("jti-c2", grant_id="g8", client_id="c2"))
    await store.tokens.add_access(make_access("jti-u2", grant_id="g9", subject="u2"))
    await store.tokens.add_access(make_access("jti-cc", grant_id=None, subject="c1"))

    # rt-1 (rotated), rt-2 and rt-3 (live), jti-1 and jti-2 (rt-4, jti-3 were revoked already)
    assert await store.tokens.revoke_for_user_client("u1", "c1", now=NOW) == 5
    assert await store.tokens.revoke_for_user_client("u1", "c1", now=NOW) == 0

    for token_hash in ("rt-1", "rt-2", "rt-3"):
        assert await store.tokens.find_refresh(token_hash, now=NOW) is None
        rotation = await store.tokens.rotate_refresh(token_hash, make_refresh("x"), now=NOW)
        assert rotation.status != "rotated"
    assert (await store.codes.consume("code-1", now=NOW)).code is None
    for token_id, grant_id in [("jti-1", "g1"), ("jti-2", "g2"), ("jti-new", "g5")]:
        assert await store.tokens.is_revoked(token_id, grant_id)
    # written after the revocation by a request that redeemed code-2 first: still dead
    await store.tokens.add_refresh(make_refresh("rt-5", grant_id="g5"))
    assert await store.tokens.find_refresh("rt-5", now=NOW) is None

    assert await store.codes.peek("code-c2") is not None
    assert await store.codes.peek("code-u2") is not None
    assert await store.tokens.find_refresh("rt-c2", now=NOW) is not None
    assert await store.tokens.find_refresh("rt-u2", now=NOW) is not None
    assert not await store.tokens.is_revoked("jti-c2", "g8")
    assert not await store.tokens.is_revoked("jti-u2", "g9")
    assert not await store.tokens.is_revoked("jti-cc", None)


async def test_revoke_for_user_client_with_nothing_issued(owners: Store) -> None:
    assert await owners.tokens.revoke_for_user_client("u1", "c1", now=NOW) == 0
    assert await owners.tokens.revoke_for_user_client("nobody", "no-client", now=NOW) == 0
    assert not await owners.tokens.is_revoked("jti-1", "g1")


# -- consents ----------------------------------------------------------------------------------


async def test_consent_put_get_replace_revoke(owners: Store) -> None:
    store = owners
    first = Consent(user_id="u1", client_id="c1", scope=frozenset({"read"}), granted_at=NOW)
    wider = dataclasses.replace(first, scope=frozenset({"read", "write"}), granted_at=NOW + 5)
    assert await store.consents.get("u1", "c1") is None
    await store.consents.put(first)
    assert await store.consents.get("u1", "c1") == first
    await store.consents.put(wider)
    assert await store.consents.get("u1", "c1") == wider
    assert await store.consents.revoke("u1", "c1") is True
    assert await store.consents.get("u1", "c1") is None
    assert await store.consents.revoke("u1", "c1") is False


async def test_consent_keeps_claims_approved_one_by_one(owners: Store) -> None:
    plain = Consent(user_id="u1", client_id="c1", scope=frozenset({"openid"}), granted_at=NOW)
    await owners.consents.put(plain)
    assert (await owners.consents.get("u1", "c1")) == plain
    with_claims = dataclasses.replace(plain, claims=frozenset({"email", "phone_number"}))
    await owners.consents.put(with_claims)
    assert await owners.consents.get("u1", "c1") == with_claims
    assert await owners.consents.list_for_user("u1") == [with_claims]
    await owners.consents.put(plain)  # replaced as a whole
    assert await owners.consents.get("u1", "c1") == plain


async def test_consents_listed_per_user(owners: Store) -> None:
    store = owners
    await store.clients.add(make_client("c0"))
    await store.users.add(make_user("u2", "bob"))
    mine = [
        Consent(user_id="u1", client_id=client_id, scope=frozenset({"read"}), granted_at=NOW)
        for client_id in ("c1", "c0")
    ]
    for consent in [*mine, Consent(user_id="u2", client_id="c1", scope=frozenset(), granted_at=0)]:
        await store.consents.put(consent)
    assert await store.consents.list_for_user("u1") == sorted(mine, key=lambda c: c.client_id)
    assert await store.consents.list_for_user("nobody") == []


# -- signing keys --------------------------------------------------------------------------------


async def test_keys_listed_newest_first(store: Store) -> None:
    keys = [make_key("k1", NOW), make_key("k3", NOW + 100), make_key("k2", NOW + 100)]
    for key in keys:
        await store.keys.add(key)
    assert [k.kid for k in await store.keys.list()] == ["k3", "k2", "k1"]
    assert (await store.keys.list())[-1] == keys[0]


async def test_key_kid_taken_twice_refused(store: Store) -> None:
    await store.keys.add(make_key("k1", NOW))
    with pytest.raises(ValueError, match="exists"):
        await store.keys.add(make_key("k1", NOW + 1, alg="RS256"))
    assert await store.keys.list() == [make_key("k1", NOW)]


async def test_key_update_retires_it(store: Store) -> None:
    await store.keys.add(make_key("k1", NOW))
    retired = make_key("k1", NOW, retires_at=NOW + 10, expires_at=NOW + 700)
    await store.keys.update(retired)
    assert await store.keys.list() == [retired]


async def test_key_update_of_unknown_kid_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        await store.keys.update(make_key("ghost", NOW))
    assert await store.keys.list() == []


# -- replay, throttle, audit -------------------------------------------------------------------


async def test_replay_first_use_only(store: Store) -> None:
    assert await store.replay.first_use("jti-1", expires_at=NOW + 60, now=NOW)
    assert not await store.replay.first_use("jti-1", expires_at=NOW + 120, now=NOW + 59)
    assert await store.replay.first_use("jti-2", expires_at=NOW + 60, now=NOW)


async def test_replay_entry_expired_may_be_used_again(store: Store) -> None:
    assert await store.replay.first_use("jti-1", expires_at=NOW + 60, now=NOW)
    assert await store.replay.first_use("jti-1", expires_at=NOW + 120, now=NOW + 60)
    # the new entry holds until its own expiry
    assert not await store.replay.first_use("jti-1", expires_at=NOW + 200, now=NOW + 119)


async def test_replay_first_use_once_under_a_race(store: Store) -> None:
    results = await asyncio.gather(
        *(store.replay.first_use("jti-x", expires_at=NOW + 60, now=NOW) for _ in range(RACERS))
    )
    assert results.count(True) == 1


async def test_throttle_counts_inside_the_window(store: Store) -> None:
    assert await store.throttle.hit("user:alice", now=NOW, window=60) == 1
    assert await store.throttle.hit("user:alice", now=NOW + 30, window=60) == 2
    assert await store.throttle.hit("addr:192.0.2.1", now=NOW + 30, window=60) == 1
    assert await store.throttle.count("user:alice", now=NOW + 59, window=60) == 2
    assert await store.throttle.count("user:alice", now=NOW + 60, window=60) == 1  # NOW left
    assert await store.throttle.hit("user:alice", now=NOW + 90, window=60) == 1
    assert await store.throttle.count("nobody", now=NOW, window=60) == 0


async def test_throttle_recent_and_forgive(store: Store) -> None:
    assert await store.throttle.recent("user:carol", now=NOW, window=60) == (0, None)
    await store.throttle.hit("user:carol", now=NOW, window=60)
    await store.throttle.hit("user:carol", now=NOW + 10, window=60)
    assert await store.throttle.recent("user:carol", now=NOW + 10, window=60) == (2, NOW + 10)
    await store.throttle.forgive("user:carol", at=NOW + 10)
    assert await store.throttle.recent("user:carol", now=NOW + 10, window=60) == (1, NOW)
    await store.throttle.forgive("user:carol", at=NOW + 10)  # nothing left at that time
    assert await store.throttle.recent("user:carol", now=NOW + 60, window=60) == (0, None)


async def test_rate_counters_add_across_callers(store: Store) -> None:
    expires = NOW + 120
    assert await store.rates.add(7, {"c_a": 3, "c_b": 1}, expires_at=expires, now=NOW) == {
        "c_a": 3,
        "c_b": 1,
    }
    assert await store.rates.add(7, {"c_a": 2}, expires_at=expires, now=NOW) == {"c_a": 5}
    assert await store.rates.add(8, {"c_a": 1}, expires_at=expires, now=NOW) == {"c_a": 1}
    assert await store.rates.add(7, {}, expires_at=expires, now=NOW) == {}
    # once expired, a window's counter is gone
    assert await store.rates.add(7, {"c_a": 1}, expires_at=expires + 60, now=expires) == {"c_a": 1}


async def test_rate_counters_add_under_a_race(store: Store) -> None:
    totals = await asyncio.gather(
        *(store.rates.add(9, {"c_r": 1}, expires_at=NOW + 60, now=NOW) for _ in range(RACERS))
    )
    assert sorted(t["c_r"] for t in totals) == list(range(1, RACERS + 1))


async def test_throttle_reset(store: Store) -> None:
    await store.throttle.hit("user:alice", now=NOW, window=60)
    await store.throttle.hit("user:bob", now=NOW, window=60)
    await store.throttle.reset("user:alice")
    assert await store.throttle.count("user:alice", now=NOW, window=60) == 0
    assert await store.throttle.count("user:bob", now=NOW, window=60) == 1
    await store.throttle.reset("never-hit")


async def test_throttle_hits_counted_under_a_race(store: Store) -> None:
    counts = await asyncio.gather(
        *(store.throttle.hit("addr:198.51.100.7", now=NOW, window=60) for _ in range(RACERS))
    )
    # each failure sees every one before it: a burst cannot all read "under the limit"
    assert sorted(counts) == list(range(1, RACERS + 1))


async def test_audit_tail_is_newest_events_oldest_first(store: Store) -> None:
    events = [
        AuditEvent(
            event="refresh.reuse_detected",
            at=NOW + i,
            client_id="c1",
            user_id="u1",
            grant_id=f"g{i}",
            address="192.0.2.1",
            detail={"revoked": i, "nested": {"list": [1, "two"]}},
        )
        for i in range(5)
    ]
    for event in events:
        await store.audit.record(event)
    assert await store.audit.tail() == events
    assert await store.audit.tail(2) == events[-2:]
    assert await store.audit.tail(0) == []


async def test_audit_event_with_only_required_fields(store: Store) -> None:
    event = AuditEvent(event="login.failed", at=NOW)
    await store.audit.record(event)
    assert await store.audit.tail(1) == [event]


# -- text no database can hold ----------------------------------------------------------------

UNSTORABLE = ["nul\x00byte", "lone\ud800surrogate"]


@pytest.mark.parametrize("value", UNSTORABLE, ids=["nul", "surrogate"])
async def test_text_no_database_can_hold_is_never_found(owners: Store, value: str) -> None:
    """PostgreSQL refuses NUL in text and no driver encodes lone surrogates: a lookup by
    such a value (straight from a request) finds nothing instead of failing."""
    store = owners
    assert await store.clients.get(value) is None
    assert await store.users.get(value) is None
    assert await store.users.by_username(value) is None
    assert await store.codes.peek(value) is None
    assert (await store.codes.consume(value, now=NOW)).code is None
    assert await store.tokens.find_refresh(value, now=NOW) is None
    assert await store.tokens.peek_refresh(value) is None
    assert (await store.tokens.rotate_refresh(value, make_refresh(), now=NOW)).status == "invalid"
    assert await store.tokens.revoke_refresh(value, now=NOW) is None
    assert await store.tokens.find_access(value) is None
    assert await store.tokens.revoke_for_user_client(value, "c1", now=NOW) == 0
    assert await store.tokens.revoke_for_user_client("u1", value, now=NOW) == 0
    assert await store.consents.get(value, "c1") is None
    assert await store.consents.list_for_user(value) == []
    assert await store.throttle.count(value, now=NOW, window=60) == 0
    assert await store.clients.delete(value) is False
    assert await store.users.delete(value) is False
    assert await store.apis.get(value) is None
    assert await store.apis.delete(value) is False


# -- login sessions' clients and the logout queue (Back-Channel Logout 1.0) -----------------


def listening(client_id: str, **oidc: Any) -> Client:
    return make_client(
        client_id,
        oidc=ClientOidc(backchannel_logout_uri=f"https://{client_id}.example/bcl", **oidc),
    )


async def test_session_sid_round_trips_and_is_unique(owners: Store) -> None:
    session = dataclasses.replace(make_session(), sid="sid-1")
    await owners.sessions.add(session)
    assert await owners.sessions.get("s1", now=NOW) == session
    with pytest.raises(ValueError, match="exists"):
        await owners.sessions.add(dataclasses.replace(make_session("s2"), sid="sid-1"))


async def test_ending_a_session_queues_one_delivery_per_listening_client(owners: Store) -> None:
    await owners.clients.add(listening("mail"))
    await owners.clients.add(listening("calendar"))  # joined another session only
    await owners.sessions.add(dataclasses.replace(make_session(), sid="sid-1"))
    await owners.sessions.add(dataclasses.replace(make_session("s2"), sid="sid-2"))
    for client_id in ("mail", "c1", "mail"):  # c1 registered no back-channel URI
        await owners.sessions.join("s1", client_id, now=NOW)
    await owners.sessions.join("s2", "calendar", now=NOW)
    assert await owners.logouts.pending() == []
    assert await owners.sessions.end("s1", now=NOW + 1) is True
    (queued,) = await owners.logouts.pending()
    assert (queued.client_id, queued.user_id, queued.sid) == ("mail", "u1", "sid-1")
    assert (queued.reason, queued.created_at, queued.attempts) == ("logout", NOW + 1, 0)
    assert len(queued.jti) >= 16
    assert await owners.sessions.end("s1", now=NOW + 2) is False  # nothing queued twice
    assert len(await owners.logouts.pending()) == 1


async def test_a_sessions_clients_are_listed_in_joining_order_until_purged(
    owners: Store,
) -> None:
    for client_id in ("mail", "calendar", "gone"):
        await owners.clients.add(make_client(client_id))
    await owners.sessions.add(make_session())
    await owners.sessions.add(make_session("s2"))
    assert await owners.sessions.clients_of("s1") == []
    for at, client_id in enumerate(("mail", "c1", "gone", "calendar", "mail")):
        await owners.sessions.join("s1", client_id, now=NOW + at)
    await owners.sessions.join("s2", "calendar", now=NOW)  # another session's
    assert await owners.clients.delete("gone") is True
    assert await owners.sessions.clients_of("s1") == ["mail", "c1", "calendar"]
    assert await owners.sessions.end("s1", now=NOW + 10) is True
    assert await owners.sessions.clients_of("s1") == ["mail", "c1", "calendar"]  # ended
    assert await owners.sessions.clients_of("s2") == ["calendar"]
    assert await owners.sessions.clients_of("unknown") == []
    assert await owners.sessions.clients_of("nul\x00") == []


async def test_join_refuses_an_unknown_session_or_client(owners: Store) -> None:
    await owners.sessions.add(make_session())
    with pytest.raises(ValueError, match="no such"):
        await owners.sessions.join("s1", "nobody", now=NOW)
    with pytest.raises(ValueError, match="no such"):
        await owners.sessions.join("unknown", "c1", now=NOW)


async def test_signing_a_user_out_queues_for_each_session(owners: Store) -> None:
    await owners.clients.add(listening("mail"))
    for name in ("s1", "s2"):
        await owners.sessions.add(dataclasses.replace(make_session(name), sid=f"sid-{name}"))
        await owners.sessions.join(name, "mail", now=NOW)
    assert await owners.sessions.end_for_user("u1", now=NOW + 1, reason="user deleted") == 2
    assert await owners.users.delete("u1") is True  # the queue outlives the user
    queued = await owners.logouts.pending()
    assert sorted(d.sid or "" for d in queued) == ["sid-s1", "sid-s2"]
    assert {d.reason for d in queued} == {"user deleted"}
    assert len({d.jti for d in queued}) == 2


async def test_expired_sessions_are_ended_once_and_queued(owners: Store) -> None:
    await owners.clients.add(listening("mail"))
    for name in ("s1", "s2", "s3"):
        await owners.sessions.add(make_session(name))
        await owners.sessions.join(name, "mail", now=NOW)
    await owners.sessions.end("s3", now=NOW + 1)
    assert await owners.sessions.end_expired(now=NOW + 99) == 0  # not expired yet
    assert await owners.sessions.end_expired(now=NOW + 100, limit=1) == 1
    assert await owners.sessions.end_expired(now=NOW + 100) == 1
    assert await owners.sessions.end_expired(now=NOW + 100) == 0
    reasons = sorted(d.reason for d in await owners.logouts.pending())
    assert reasons == ["expired", "expired", "logout"]


async def test_concurrent_sweeps_end_each_session_once(owners: Store) -> None:
    await owners.clients.add(listening("mail"))
    for i in range(10):
        await owners.sessions.add(make_session(f"s{i}"))
        await owners.sessions.join(f"s{i}", "mail", now=NOW)
    ended = await asyncio.gather(
        *(owners.sessions.end_expired(now=NOW + 100, limit=4) for _ in range(8))
    )
    # a sweep that lost every row to another may stop early: the next round finds the rest
    assert sum(ended) + await owners.sessions.end_expired(now=NOW + 100) == 10
    assert len(await owners.logouts.pending()) == 10


async def queue_deliveries(store: Store, count: int) -> None:
    await store.clients.add(listening("mail"))
    for i in range(count):
        await store.sessions.add(dataclasses.replace(make_session(f"s{i}"), sid=f"sid-{i}"))
        await store.sessions.join(f"s{i}", "mail", now=NOW)
    await store.sessions.end_for_user("u1", now=NOW)


async def test_a_claim_counts_the_attempt_and_hides_the_delivery_for_the_lease(
    owners: Store,
) -> None:
    await queue_deliveries(owners, 3)
    first = await owners.logouts.claim(now=NOW, lease=60, limit=2)
    assert [d.attempts for d in first] == [1, 1]
    (third,) = await owners.logouts.claim(now=NOW, lease=60, limit=5)
    assert third.delivery_id not in {d.delivery_id for d in first}
    assert await owners.logouts.claim(now=NOW + 59, lease=60, limit=5) == []
    again = await owners.logouts.claim(now=NOW + 60, lease=60, limit=5)  # a lost claim
    assert sorted(d.attempts for d in again) == [2, 2, 2]
    assert {d.jti for d in again} == {d.jti for d in (*first, third)}


async def test_retry_and_finish(owners: Store) -> None:
    await queue_deliveries(owners, 2)
    one, two = await owners.logouts.claim(now=NOW, lease=60, limit=5)
    await owners.logouts.finish(one.delivery_id)
    await owners.logouts.retry(two.delivery_id, at=NOW + 10)
    assert await owners.logouts.claim(now=NOW + 9, lease=60, limit=5) == []
    (retried,) = await owners.logouts.claim(now=NOW + 10, lease=60, limit=5)
    assert (retried.delivery_id, retried.attempts) == (two.delivery_id, 2)
    await owners.logouts.finish(two.delivery_id)
    await owners.logouts.finish(two.delivery_id)  # twice is harmless
    assert await owners.logouts.pending() == []


@pytest.mark.parametrize(("limit", "lease"), [(0, 60), (5, 0), (-1, -1)])
async def test_claim_refuses_a_nonsense_limit_or_lease(
    owners: Store, limit: int, lease: int
) -> None:
    with pytest.raises(ValueError, match="positive"):
        await owners.logouts.claim(now=NOW, lease=lease, limit=limit)


async def test_concurrent_claims_never_take_the_same_delivery(owners: Store) -> None:
    await queue_deliveries(owners, 30)
    claims = await asyncio.gather(
        *(owners.logouts.claim(now=NOW, lease=60, limit=4) for _ in range(12))
    )
    ids = [d.delivery_id for claim in claims for d in claim]
    assert len(ids) == len(set(ids)) == 30


async def test_deleting_a_client_drops_its_deliveries(owners: Store) -> None:
    await queue_deliveries(owners, 2)
    assert await owners.clients.delete("mail") is True
    assert await owners.logouts.pending() == []
