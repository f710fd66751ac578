"""The token endpoint asks `ctx.token_limits` once per authenticated request: past a client's
limit it answers 429 `slow_down` with Retry-After, and nothing else happens."""

from __future__ import annotations

import dataclasses

import pytest
from core_context import ClientFactory, Clock
from token_requests import basic, confidential_client, snapshot, token_request

from ostiary.oauth.context import Context
from ostiary.oauth.memory import MemoryPenaltyStore, MemoryRateCounters, MemoryStore
from ostiary.oauth.token_endpoint import TokenResponse, handle_token_request
from ostiary.server.rate_limit import SharedRateLimiter

pytestmark = pytest.mark.anyio

LIMIT = 3
WINDOW = 60


@pytest.fixture
def limited(ctx: Context) -> Context:
    limiter = SharedRateLimiter(
        MemoryRateCounters(),
        MemoryPenaltyStore(),
        name="token",
        limit=LIMIT,
        window=WINDOW,
        sync_interval=1,
    )
    return dataclasses.replace(ctx, token_limits=limiter)


async def call(ctx: Context, client_id: str, secret: str) -> TokenResponse:
    request = token_request(
        {"grant_type": "client_credentials"}, authorization=basic(client_id, secret)
    )
    return await handle_token_request(request, ctx)


async def test_a_client_past_its_limit_gets_429_until_the_window_ends(
    limited: Context, store: MemoryStore, client_factory: ClientFactory, clock: Clock
) -> None:
    client, secret = await confidential_client(client_factory)
    other, other_secret = await confidential_client(client_factory)
    for _ in range(LIMIT):
        assert (await call(limited, client.client_id, secret)).status == 200
    before = snapshot(store)
    refused = await call(limited, client.client_id, secret)
    assert (refused.status, refused.body["error"]) == (429, "slow_down")
    assert refused.headers["Cache-Control"] == "no-store"
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    assert snapshot(store) == before  # no token, no audit event
    # the limit is per client
    assert (await call(limited, other.client_id, other_secret)).status == 200
    clock.advance(int(refused.headers["Retry-After"]))
    assert (await call(limited, client.client_id, secret)).status == 200


async def test_failed_authentication_does_not_use_up_a_clients_budget(
    limited: Context, client_factory: ClientFactory
) -> None:
    client, secret = await confidential_client(client_factory)
    for _ in range(LIMIT * 3):
        wrong = await call(limited, client.client_id, "not-the-secret")
        assert (wrong.status, wrong.body["error"]) == (401, "invalid_client")
    for _ in range(LIMIT):
        assert (await call(limited, client.client_id, secret)).status == 200
