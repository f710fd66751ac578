"""The legacy password grant: explicit opt-in only, throttled, audited."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from core_context import PASSWORD, ClientFactory, Clock, UserFactory
from token_requests import basic, confidential_client, snapshot, token_request

from ostiary.oauth.config import ServerConfig
from ostiary.oauth.context import Context
from ostiary.oauth.grants.password import throttle_key
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Client
from ostiary.oauth.token_endpoint import TokenResponse, handle_token_request

pytestmark = pytest.mark.anyio

LEGACY = frozenset({"password", "refresh_token"})


async def legacy_client(client_factory: ClientFactory, **fields: Any) -> tuple[Client, str]:
    fields.setdefault("grant_types", LEGACY)
    fields.setdefault("legacy_password_grant", True)
    return await confidential_client(client_factory, **fields)


async def call(
    ctx: Context, client: Client, secret: str, address: str = "192.0.2.7", **params: Any
) -> TokenResponse:
    request = token_request(
        {"grant_type": "password", **params},
        authorization=basic(client.client_id, secret),
        address=address,
    )
    return await handle_token_request(request, ctx)


def expect(response: TokenResponse, error: str, status: int = 400) -> None:
    assert (response.status, response.body["error"]) == (status, error), response.body
    assert response.headers["Cache-Control"] == "no-store"


async def test_opted_in_client_gets_tokens_for_the_user(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await legacy_client(client_factory)
    user = await user_factory("alice")
    response = await call(ctx, client, secret, username="alice", password=PASSWORD, scope="read")
    assert response.status == 200, response.body
    assert response.body["scope"] == "read"
    assert "refresh_token" in response.body
    event = store.audit.events[-1]
    assert (event.event, event.user_id) == ("token.issued", user.user_id)
    assert PASSWORD not in repr(store.audit.events)


@pytest.mark.parametrize(
    ("flag", "grants"),
    [(False, LEGACY), (True, frozenset({"refresh_token"}))],
    ids=["no-opt-in", "no-grant-type"],
)
async def test_password_grant_needs_opt_in_and_grant_type(  # noqa: PLR0917 - pytest fixtures
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    flag: bool,
    grants: frozenset[str],
) -> None:
    client, secret = await legacy_client(
        client_factory, legacy_password_grant=flag, grant_types=grants
    )
    await user_factory("alice")
    before = snapshot(store)
    expect(
        await call(ctx, client, secret, username="alice", password=PASSWORD), "unauthorized_client"
    )
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "params",
    [{"username": "alice"}, {"password": PASSWORD}, {"username": "a" * 257, "password": "x"}],
    ids=["no-password", "no-username", "oversized-username"],
)
async def test_missing_or_oversized_credentials_are_invalid_request(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, params: dict[str, str]
) -> None:
    client, secret = await legacy_client(client_factory)
    before = snapshot(store)
    expect(await call(ctx, client, secret, **params), "invalid_request")
    assert snapshot(store) == before


@pytest.mark.parametrize("username", ["alice", "nobody"], ids=["wrong-password", "unknown-user"])
async def test_wrong_credentials_are_invalid_grant_counted_and_audited(  # noqa: PLR0917 - pytest fixtures
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
    username: str,
) -> None:
    client, secret = await legacy_client(client_factory)
    await user_factory("alice")
    response = await call(ctx, client, secret, username=username, password="guess")
    expect(response, "invalid_grant")
    window = ctx.config.login_window
    for key in (throttle_key("user", username), throttle_key("address", "192.0.2.7")):
        assert await store.throttle.count(key, now=clock.now, window=window) == 1
    assert store.audit.events[-1].event == "login.failed"
    assert not any(e.event == "token.issued" for e in store.audit.events)


async def test_too_many_failures_are_throttled_even_with_the_right_password(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await legacy_client(client_factory)
    await user_factory("alice")
    for _ in range(ctx.config.login_max_failures):
        expect(await call(ctx, client, secret, username="alice", password="guess"), "invalid_grant")
    before = snapshot(store)
    response = await call(ctx, client, secret, username="alice", password=PASSWORD)
    expect(response, "slow_down", 429)
    assert int(response.headers["Retry-After"]) > 0
    after = snapshot(store)
    # The refused attempt is itself charged to the user (counted before any check); nothing
    # else changes: no token, no grant.
    assert {k: v for k, v in after.items() if k != "throttle"} == {
        k: v for k, v in before.items() if k != "throttle"
    }


async def test_parallel_guesses_cannot_outrun_the_throttle(
    ctx: Context, store: MemoryStore, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    """Twenty guesses at once: only `login_max_failures` of them reach the password check."""
    client, secret = await legacy_client(client_factory)
    await user_factory("alice")
    responses = await asyncio.gather(
        *(call(ctx, client, secret, username="alice", password=f"guess{n}") for n in range(20))
    )
    errors = [response.body["error"] for response in responses]
    assert errors.count("invalid_grant") == ctx.config.login_max_failures
    assert errors.count("slow_down") == 20 - ctx.config.login_max_failures


async def test_failures_from_one_address_throttle_every_username(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await legacy_client(client_factory)
    await user_factory("alice")
    for n in range(ctx.config.login_max_failures):
        await call(ctx, client, secret, username=f"guess{n}", password="x", address="198.51.100.1")
    response = await call(
        ctx, client, secret, username="alice", password=PASSWORD, address="198.51.100.1"
    )
    expect(response, "slow_down", 429)
    other = await call(
        ctx, client, secret, username="alice", password=PASSWORD, address="198.51.100.2"
    )
    assert other.status == 200


async def test_throttle_window_passes(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory, clock: Clock
) -> None:
    client, secret = await legacy_client(client_factory)
    await user_factory("alice")
    for _ in range(ctx.config.login_max_failures):
        await call(ctx, client, secret, username="alice", password="guess")
    clock.advance(ctx.config.login_window)
    assert (await call(ctx, client, secret, username="alice", password=PASSWORD)).status == 200


async def test_success_resets_the_user_counter(
    ctx: Context,
    store: MemoryStore,
    client_factory: ClientFactory,
    user_factory: UserFactory,
    clock: Clock,
) -> None:
    client, secret = await legacy_client(client_factory)
    await user_factory("alice")
    await call(ctx, client, secret, username="alice", password="guess")
    assert (await call(ctx, client, secret, username="alice", password=PASSWORD)).status == 200
    key = throttle_key("user", "alice")
    assert await store.throttle.count(key, now=clock.now, window=ctx.config.login_window) == 0


async def test_username_case_does_not_reset_the_budget(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    client, secret = await legacy_client(client_factory)
    await user_factory("alice")
    for n in range(ctx.config.login_max_failures):
        name = "ALICE" if n % 2 else "Alice"
        await call(ctx, client, secret, username=name, password="x", address=f"192.0.2.{n}")
    response = await call(ctx, client, secret, username="alice", password=PASSWORD)
    expect(response, "slow_down", 429)


async def test_counters_are_the_login_pages(clock: Clock) -> None:
    # One budget of guesses for both doors: failures at the login page count here too.
    from ostiary.server.throttle import LoginThrottle

    store = MemoryStore()
    login = LoginThrottle(store=store.throttle, config=ServerConfig(issuer="https://as.example"))
    await login.record_failure("Alice", "192.0.2.7", now=clock.now)
    for key in (throttle_key("user", "alice"), throttle_key("address", "192.0.2.7")):
        assert await store.throttle.count(key, now=clock.now, window=900) == 1


async def test_parallel_guesses_at_many_usernames_from_one_address_are_throttled(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory
) -> None:
    """The address is charged before the password check too, not checked then counted."""
    client, secret = await legacy_client(client_factory)
    await user_factory("alice")
    responses = await asyncio.gather(
        *(
            call(ctx, client, secret, username=f"user{n}", password="x", address="203.0.113.9")
            for n in range(20)
        )
    )
    errors = [response.body["error"] for response in responses]
    assert errors.count("invalid_grant") == ctx.config.login_max_failures
    assert errors.count("slow_down") == 20 - ctx.config.login_max_failures


async def test_backoff_doubles_with_each_failure_past_the_budget(
    ctx: Context, client_factory: ClientFactory, user_factory: UserFactory, clock: Clock
) -> None:
    client, secret = await legacy_client(client_factory)
    await user_factory("alice")
    window = ctx.config.login_window
    for _ in range(ctx.config.login_max_failures):
        expect(await call(ctx, client, secret, username="alice", password="x"), "invalid_grant")
    for doubling in range(3):
        wait = window * 2**doubling
        refused = await call(ctx, client, secret, username="alice", password=PASSWORD)
        expect(refused, "slow_down", 429)
        assert int(refused.headers["Retry-After"]) == wait
        clock.advance(wait - 1)
        expect(await call(ctx, client, secret, username="alice", password="x"), "slow_down", 429)
        clock.advance(1)
        expect(await call(ctx, client, secret, username="alice", password="x"), "invalid_grant")
    # it keeps doubling up to the cap, and stays there
    waits = []
    for _ in range(10):
        refused = await call(ctx, client, secret, username="alice", password=PASSWORD)
        waits.append(int(refused.headers["Retry-After"]))
        clock.advance(waits[-1])
        expect(await call(ctx, client, secret, username="alice", password="x"), "invalid_grant")
    assert waits == [min(window * 2**n, ctx.config.login_backoff_cap) for n in range(3, 13)], waits
    refused = await call(ctx, client, secret, username="alice", password=PASSWORD)
    assert int(refused.headers["Retry-After"]) == ctx.config.login_backoff_cap
    clock.advance(ctx.config.login_backoff_cap)
    assert (await call(ctx, client, secret, username="alice", password=PASSWORD)).status == 200
