"""Failed client authentication at the back-channel endpoints, limited per address (and per
address and client id) with exponential back-off, and every 429 counted in `/metrics` under
the name of the limit that refused it: `client_auth`, `token`, `password`, `login`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_app import (
    ISSUER,
    PASSWORD,
    Clock,
    Pkce,
    Served,
    authorize_url,
    fast_hasher,
    make_settings,
    serve,
    submit,
)

from ostiary.oauth.models import AuditEvent

pytestmark = pytest.mark.anyio

ATTACKER = "198.51.100.66"
HOME = "192.0.2.10"  # where the real client runs
MAX_FAILURES = 3
MAX_CLIENTS = 4
TOKEN_LIMIT = 8


@pytest.fixture
async def limited(backend: str, tmp_path: Path) -> AsyncIterator[Served]:
    settings = make_settings(
        tmp_path,
        issuer=ISSUER,
        database_url=backend,
        client_auth_max_failures=MAX_FAILURES,
        client_auth_max_clients=MAX_CLIENTS,
        client_auth_backoff=2,
        client_auth_backoff_cap=60,
        token_rate_limit=TOKEN_LIMIT,
        token_rate_window=60,
    )
    async with serve(settings, clock=Clock(), hasher=fast_hasher()) as served:
        yield served


async def rate_limited(served: Served) -> dict[str, float]:
    """`ostiary_rate_limited_total` by limit, read from GET /metrics."""
    response = await served.http.get("/metrics")
    assert response.status_code == 200
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "ostiary_rate_limited_total":
                found[sample.labels["limit"]] = sample.value
    return found


async def counted(served: Served, before: dict[str, float]) -> dict[str, float]:
    after = await rate_limited(served)
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def token(
    http: httpx.AsyncClient, client_id: str, secret: str, **form: str
) -> asyncio.Future[httpx.Response]:
    data = {"grant_type": "client_credentials", **form}
    return asyncio.ensure_future(http.post("/token", data=data, auth=(client_id, secret)))


def assert_slow_down(response: httpx.Response, retry_after: int | None = None) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "slow_down"  # RFC 6749 §5.2-shaped, and no stack trace
    assert set(body) <= {"error", "error_description"}
    assert response.headers["cache-control"] == "no-store"
    wait = int(response.headers["retry-after"])
    assert wait >= 1
    if retry_after is not None:
        assert wait == retry_after


async def test_an_address_guessing_a_secret_waits_longer_each_time(limited: Served) -> None:
    client, secret = await limited.add_client()
    assert secret is not None
    before = await rate_limited(limited)
    async with limited.browser(ATTACKER) as attacker, limited.browser(HOME) as home:
        for _ in range(MAX_FAILURES):
            wrong = await token(attacker, client.client_id, "not-the-secret")
            assert wrong.status_code == 401
        # the budget is spent: refused before any credential is checked, the right one too
        events = len(await limited.store.audit.tail(1000))
        refused = await token(attacker, client.client_id, secret)
        assert_slow_down(refused, retry_after=2)
        assert len(await limited.store.audit.tail(1000)) == events  # nothing issued
        # the real client, from its own address, is not locked out by the attacker
        assert (await token(home, client.client_id, secret)).status_code == 200
        limited.clock.advance(2)
        assert (await token(attacker, client.client_id, "wrong-again")).status_code == 401
        assert_slow_down(await token(attacker, client.client_id, "x"), retry_after=4)
        # revocation and introspection answer the same: one budget for the three endpoints
        for path in ("/revoke", "/introspect"):
            answer = await attacker.post(
                path, data={"token": "whatever"}, auth=(client.client_id, secret)
            )
            assert_slow_down(answer, retry_after=4)
        limited.clock.advance(4)
        # the right secret after the wait: accepted, and its failures there are forgiven
        assert (await token(attacker, client.client_id, secret)).status_code == 200
        for _ in range(MAX_FAILURES - 1):
            assert (await token(attacker, client.client_id, "wrong")).status_code == 401
        assert (await token(attacker, client.client_id, secret)).status_code == 200
    assert (await counted(limited, before)).get("client_auth") == 4


async def throttled_events(served: Served) -> list[AuditEvent]:
    return [e for e in await served.store.audit.tail(1000) if e.event == "client.auth_throttled"]


async def test_a_wait_begun_is_audited_once_not_per_refused_request(limited: Served) -> None:
    """One `client.auth_throttled` event when a wait begins (the client id, the address, how
    long), none for the requests refused during it: they cannot flood the audit table."""
    client, secret = await limited.add_client()
    assert secret is not None
    guesses = [f"guess-{n}-{secrets.token_hex(8)}" for n in range(MAX_FAILURES + 1)]
    async with limited.browser(ATTACKER) as attacker:
        for guess in guesses[:MAX_FAILURES]:
            assert (await token(attacker, client.client_id, guess)).status_code == 401
        [event] = await throttled_events(limited)
        assert (event.client_id, event.address) == (client.client_id, ATTACKER)
        assert event.detail == {"seconds": 2, "by": "client", "failures": MAX_FAILURES}
        assert event.at == limited.clock()
        for _ in range(20):  # refused before any check: no event each
            assert_slow_down(await token(attacker, client.client_id, secret))
        assert len(await throttled_events(limited)) == 1
        limited.clock.advance(2)
        assert (await token(attacker, client.client_id, guesses[-1])).status_code == 401
        second = (await throttled_events(limited))[-1]
        assert second.detail == {"seconds": 4, "by": "client", "failures": MAX_FAILURES + 1}
    events = await throttled_events(limited)
    assert len(events) == 2
    written = json.dumps([dataclasses.asdict(e) for e in events])
    assert not any(word in written for word in (secret, *guesses))


async def test_a_sweep_is_audited_against_the_address(limited: Served) -> None:
    async with limited.browser(ATTACKER) as attacker:
        for n in range(MAX_CLIENTS + 3):
            await token(attacker, f"c_guess_{n}", "x")
    [event] = await throttled_events(limited)
    # the id that tipped it is nobody's: an untrusted string is not written as a client id
    assert (event.client_id, event.address) == (None, ATTACKER)
    assert event.detail == {"seconds": 2, "by": "address", "failures": MAX_CLIENTS}


async def test_a_burst_of_wrong_secrets_is_audited_once(limited: Served) -> None:
    client, _ = await limited.add_client()
    async with limited.browser(ATTACKER) as attacker:
        await asyncio.gather(*(token(attacker, client.client_id, f"w-{n}") for n in range(50)))
    [event] = await throttled_events(limited)
    assert event.detail["failures"] == MAX_FAILURES and event.client_id == client.client_id


async def test_a_sweep_over_client_ids_blocks_the_address_only(limited: Served) -> None:
    client, secret = await limited.add_client()
    assert secret is not None
    async with limited.browser(ATTACKER) as attacker:
        for n in range(MAX_CLIENTS):
            # unknown ids, a malformed Basic header, a wrong method: each a failure
            answer = await token(attacker, f"c_guess_{n}", "x")
            assert answer.status_code == 401
        assert_slow_down(await token(attacker, client.client_id, secret))
        malformed = await attacker.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic !!!"},
        )
        assert_slow_down(malformed)
    async with limited.browser(HOME) as home:
        assert (await token(home, client.client_id, secret)).status_code == 200


async def test_malformed_credentials_count_as_failures(limited: Served) -> None:
    """Credentials that name no client count against the address with no client id."""

    async def send(http: httpx.AsyncClient, header: str) -> httpx.Response:
        data = {"grant_type": "client_credentials"}
        return await http.post("/token", data=data, headers={"Authorization": header})

    async with limited.browser(ATTACKER) as attacker:
        for header in ("Basic !!!", "Basic " + "A" * 5000, "Bearer x"):
            answer = await send(attacker, header)
            assert answer.status_code == 401, answer.text
        assert_slow_down(await send(attacker, "Basic Og=="))
        # one "client" failing is not a sweep: a named client is still checked
        assert (await token(attacker, "c_any", "x")).status_code == 401


async def test_a_burst_of_wrong_secrets_is_counted_whole(limited: Served) -> None:
    """Fifty wrong secrets at once: every failure counted (none lost to the race), and from
    then on the address waits, even with the right secret."""
    client, secret = await limited.add_client()
    assert secret is not None
    async with limited.browser(ATTACKER) as attacker:
        answers = await asyncio.gather(
            *(token(attacker, client.client_id, f"wrong-{n}") for n in range(50))
        )
        statuses = [answer.status_code for answer in answers]
        assert set(statuses) <= {401, 429}
        assert statuses.count(401) >= MAX_FAILURES
        refused = await token(attacker, client.client_id, secret)
        assert_slow_down(refused)
        # failures past the budget doubled the wait each time: 2 s * 2**(failures - 3)
        assert int(refused.headers["retry-after"]) == min(60, 2 * 2 ** (statuses.count(401) - 3))


async def test_every_429_is_counted_under_its_limits_name(limited: Served) -> None:
    before = await rate_limited(limited)
    # the token endpoint's per-client budget
    client, secret = await limited.add_client()
    assert secret is not None
    for _ in range(TOKEN_LIMIT):
        assert (await token(limited.http, client.client_id, secret)).status_code == 200
    assert_slow_down(await token(limited.http, client.client_id, secret))
    # the password grant's guesses (a legacy client), from another address
    legacy, legacy_secret = await limited.add_client(
        grant_types=frozenset({"password"}), legacy_password_grant=True
    )
    assert legacy_secret is not None
    user = await limited.add_user()
    async with limited.browser("203.0.113.50") as app:
        for _ in range(5):
            guess = await app.post(
                "/token",
                data={"grant_type": "password", "username": user.username, "password": "no"},
                auth=(legacy.client_id, legacy_secret),
            )
            assert guess.status_code == 400, guess.text
        refused = await app.post(
            "/token",
            data={"grant_type": "password", "username": user.username, "password": PASSWORD},
            auth=(legacy.client_id, legacy_secret),
        )
        assert_slow_down(refused)
    # the login page, from a third address
    browser_client, _ = await limited.add_client()
    url = authorize_url(browser_client, Pkce.new())
    async with limited.browser("203.0.113.51") as browser:
        for n in range(6):
            page = await browser.get(url)
            answer = await submit(browser, page, username=f"nobody-{n}", password="guess")
        assert answer.status_code == 429
    # failed client authentication
    async with limited.browser(ATTACKER) as attacker:
        for _ in range(MAX_FAILURES):
            await token(attacker, client.client_id, "wrong")
        assert_slow_down(await token(attacker, client.client_id, "wrong"))
    assert await counted(limited, before) == {
        "token": 1,
        "password": 1,
        "login": 1,
        "client_auth": 1,
    }
