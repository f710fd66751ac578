"""The issuer's keys at the resource server: discovery from the issuer URL, cache headers,
one shared refetch per interval for unknown kids, rotation followed, failing closed."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from protect_issuer import AUDIENCE, ISSUER, Clock, FakeIssuer

from ostiary.jose.jwk import JWK
from ostiary.protect import (
    Credentials,
    InvalidToken,
    ProtectError,
    ResourceServer,
    Unavailable,
)
from ostiary.protect._discovery import metadata_urls

pytestmark = pytest.mark.anyio

JWKS = "/jwks.json"
METADATA = "/.well-known/oauth-authorization-server"


async def accepted(api: ResourceServer, token: str) -> None:
    await api.verify(Credentials(token=token))


async def refused(api: ResourceServer, token: str) -> ProtectError:
    with pytest.raises(ProtectError) as caught:
        await api.verify(Credentials(token=token))
    return caught.value


def test_metadata_urls_per_rfc_8414_and_openid() -> None:
    assert metadata_urls("https://auth.example") == (
        "https://auth.example/.well-known/oauth-authorization-server",
        "https://auth.example/.well-known/openid-configuration",
    )
    assert metadata_urls("https://auth.example/tenant1") == (
        "https://auth.example/.well-known/oauth-authorization-server/tenant1",
        "https://auth.example/tenant1/.well-known/openid-configuration",
    )


@pytest.mark.parametrize(
    "issuer", ["http://auth.example", "https://auth.example?x=1", "https://auth.example#f", "auth"]
)
def test_issuer_must_be_https_without_query(issuer: str) -> None:
    with pytest.raises(ValueError, match="issuer"):
        ResourceServer(issuer=issuer, audience=AUDIENCE)


def test_hmac_algorithms_cannot_be_allowed() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        ResourceServer(issuer=ISSUER, audience=AUDIENCE, algorithms=["HS256"])


async def test_metadata_naming_another_issuer_is_refused(
    api: ResourceServer, issuer: FakeIssuer
) -> None:
    issuer.metadata_extra["issuer"] = "https://evil.example"
    error = await refused(api, issuer.token())
    assert isinstance(error, Unavailable)


async def test_openid_configuration_is_the_fallback(clock: Clock, issuer: FakeIssuer) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == METADATA:
            return httpx.Response(404)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": ISSUER + JWKS})
        return issuer.handle(request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http,
        ResourceServer(issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock) as api,
    ):
        await accepted(api, issuer.token())


async def test_keys_cached_until_their_max_age_then_refreshed_in_the_background(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    issuer.jwks_headers = {"Cache-Control": "max-age=600"}
    for _ in range(20):
        await accepted(api, issuer.token())
    assert (issuer.requests[METADATA], issuer.requests[JWKS]) == (1, 1)
    clock.now += 599
    await accepted(api, issuer.token())
    assert issuer.requests[JWKS] == 1
    clock.now += 2
    await accepted(api, issuer.token())  # served from the stale keys, no waiting
    await asyncio.sleep(0)  # let the background refresh run
    await asyncio.sleep(0)
    assert issuer.requests[JWKS] == 2
    await accepted(api, issuer.token())
    assert issuer.requests[JWKS] == 2


async def test_unknown_kids_cause_one_shared_refetch_per_interval(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    await accepted(api, issuer.token())
    assert issuer.requests[JWKS] == 1
    clock.now += 30  # the first fetch counts: the interval starts with it
    attackers = [
        JWK.generate("EC", crv="P-256", alg="ES256", kid=f"attacker-{i}") for i in range(3)
    ]
    tokens = [issuer.token(attackers[i % 3]) for i in range(60)]
    results = await asyncio.gather(*(refused(api, token) for token in tokens))
    assert all(isinstance(error, InvalidToken) for error in results)
    assert issuer.requests[JWKS] == 2  # one refetch for all 60, whatever their kids
    clock.now += 29
    await refused(api, tokens[0])
    assert issuer.requests[JWKS] == 2
    clock.now += 1
    await refused(api, tokens[0])
    assert issuer.requests[JWKS] == 3


async def test_rotation_new_key_found_by_refetch_and_old_key_dropped(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    old = issuer.token()
    await accepted(api, old)
    new_key = JWK.generate("EC", crv="P-256", alg="ES256", kid="k2")
    issuer.published = [issuer.key, new_key]
    clock.now += 30
    await accepted(api, issuer.token(new_key))  # unknown kid: refetched at once
    issuer.published = [new_key]  # the old key is retired
    clock.now += 301
    await accepted(api, issuer.token(new_key))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    error = await refused(api, issuer.token())  # signed by the retired key
    assert isinstance(error, InvalidToken)
    assert "does not publish" in error.description


async def test_a_token_accepted_before_is_refused_once_its_key_is_rotated_out(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    """Verified tokens are remembered by their text; a key change forgets them."""
    token = issuer.token()
    for _ in range(3):
        await accepted(api, token)
    assert issuer.requests[JWKS] == 1
    issuer.published = [JWK.generate("EC", crv="P-256", alg="ES256", kid="k2")]
    clock.now += 301  # the JWKS max-age: stale, refreshed in the background
    await accepted(api, token)  # the refresh is only starting
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert issuer.requests[JWKS] == 2
    error = await refused(api, token)
    assert isinstance(error, InvalidToken)


async def test_a_remembered_token_still_expires(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    token = issuer.token(exp=int(clock.now) + 60)
    await accepted(api, token)
    clock.now += 69  # inside the 10 s leeway
    await accepted(api, token)
    clock.now += 1
    error = await refused(api, token)
    assert "expired" in error.description


async def test_issuer_down_at_start_fails_closed_then_recovers(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    issuer.down = True
    for _ in range(5):
        error = await refused(api, issuer.token())
        assert isinstance(error, Unavailable)
        assert error.status == 503
    assert issuer.requests[METADATA] == 1  # no hammering while it is down
    issuer.down = False
    error = await refused(api, issuer.token())
    assert isinstance(error, Unavailable)  # still inside the interval
    clock.now += 30
    await accepted(api, issuer.token())


async def test_jwks_down_later_keeps_serving_cached_keys_then_fails_closed(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    await accepted(api, issuer.token())
    issuer.down = True
    clock.now += 3600  # long stale: a background refresh fails, the cached keys stay
    await accepted(api, issuer.token())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await accepted(api, issuer.token())
    clock.now += 86_400  # past max_stale: no keys to trust any more
    error = await refused(api, issuer.token())
    assert isinstance(error, Unavailable)


@pytest.mark.parametrize(
    "document",
    [
        {"keys": "nope"},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "bad"}]},
        {"nokeys": []},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "kid": "k1"}]},
    ],
)
async def test_broken_or_symmetric_jwks_never_verifies(
    clock: Clock, issuer: FakeIssuer, document: dict[str, object]
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == JWKS:
            return httpx.Response(200, json=document)
        return issuer.handle(request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http,
        ResourceServer(issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock) as api,
    ):
        error = await refused(api, issuer.token())
        assert error.status in (401, 503)


async def test_oversized_jwks_refused(clock: Clock, issuer: FakeIssuer) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == JWKS:
            return httpx.Response(200, content=b'{"keys": [' + b" " * 300_000 + b"]}")
        return issuer.handle(request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http,
        ResourceServer(issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock) as api,
    ):
        assert isinstance(await refused(api, issuer.token()), Unavailable)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Cache-Control": "max-age=120"}, 120),
        ({"Cache-Control": "public, s-maxage=900, max-age=60"}, 900),
        ({"Cache-Control": "no-store"}, 30),
        ({"Cache-Control": "max-age=5"}, 30),
        ({"Cache-Control": "max-age=99999999"}, 86_400),
        ({}, 300),
        (
            {"Expires": "Thu, 01 Jan 2026 00:10:00 GMT", "Date": "Thu, 01 Jan 2026 00:00:00 GMT"},
            600,
        ),
        ({"Expires": "garbage"}, 30),
    ],
)
def test_freshness_from_cache_headers(headers: dict[str, str], expected: float) -> None:
    from ostiary.protect._http_cache import freshness

    response = httpx.Response(200, headers=headers)
    assert freshness(response, default=300, least=30, most=86_400) == expected
