"""Opaque access tokens through RFC 7662 introspection: client authentication, the audience
and issuer checked, and a cache that never keeps an answer past the token's expiry."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from protect_issuer import AUDIENCE, ISSUER, Clock, FakeIssuer

from ostiary.protect import Credentials, InvalidToken, ProtectError, ResourceServer, Unavailable

pytestmark = pytest.mark.anyio

OPAQUE = "opaque-token-value-123"
INTROSPECT = "/introspect"


@pytest.fixture
async def api(http: httpx.AsyncClient, clock: Clock) -> AsyncIterator[ResourceServer]:
    async with ResourceServer(
        issuer=ISSUER,
        audience=AUDIENCE,
        client_id="notes api",
        client_secret="s3cret:+/",
        http=http,
        clock=clock,
    ) as server:
        yield server


def active(clock: Clock, **members: object) -> dict[str, object]:
    answer: dict[str, object] = {
        "active": True,
        "token_type": "Bearer",
        "client_id": "app-1",
        "sub": "user-1",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": int(clock.now) + 300,
        "scope": "notes:read",
    }
    answer.update(members)
    return {k: v for k, v in answer.items() if v is not None}


async def test_active_token_accepted_with_client_authentication(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    issuer.introspection[OPAQUE] = active(clock)
    claims = await api.verify(Credentials(token=OPAQUE))
    assert (claims["sub"], claims["scope"]) == ("user-1", "notes:read")
    (auth,) = issuer.introspection_auth
    assert auth is not None and auth.startswith("Basic ")
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic
    assert base64.b64decode(auth[6:]).decode() == "notes%20api:s3cret%3A%2B%2F"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        pytest.param({"active": False}, "not active", id="inactive"),
        pytest.param({"aud": "https://other.example"}, "not meant for this API", id="other-aud"),
        pytest.param({"aud": None}, "not meant for this API", id="no-aud"),
        pytest.param({"iss": "https://evil.example"}, "another issuer", id="other-issuer"),
        pytest.param({"exp": 1_800_000_000 - 60}, "expired", id="expired"),
    ],
)
async def test_unacceptable_answers_refused(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock, answer: dict[str, object], fragment: str
) -> None:
    issuer.introspection[OPAQUE] = (
        answer if answer == {"active": False} else active(clock, **answer)
    )
    with pytest.raises(InvalidToken, match=fragment):
        await api.verify(Credentials(token=OPAQUE))


async def test_answers_cached_but_never_past_the_token_expiry(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    issuer.introspection[OPAQUE] = active(clock, exp=int(clock.now) + 10)
    for _ in range(5):
        await api.verify(Credentials(token=OPAQUE))
    assert issuer.requests[INTROSPECT] == 1
    clock.now += 10  # the token's exp: the cache entry ends with it
    issuer.introspection[OPAQUE] = {"active": False}
    with pytest.raises(InvalidToken):
        await api.verify(Credentials(token=OPAQUE))
    assert issuer.requests[INTROSPECT] == 2


async def test_cache_lasts_only_its_ttl_so_revocation_shows(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    issuer.introspection[OPAQUE] = active(clock, exp=int(clock.now) + 3600)
    await api.verify(Credentials(token=OPAQUE))
    issuer.introspection[OPAQUE] = {"active": False}  # revoked at the issuer
    clock.now += 29
    await api.verify(Credentials(token=OPAQUE))
    clock.now += 1
    with pytest.raises(InvalidToken):
        await api.verify(Credentials(token=OPAQUE))


async def test_introspection_failure_fails_closed(
    api: ResourceServer, issuer: FakeIssuer, clock: Clock
) -> None:
    issuer.introspection[OPAQUE] = active(clock)
    await api.metadata()
    issuer.down = True
    with pytest.raises(Unavailable):
        await api.verify(Credentials(token=OPAQUE))


async def test_opaque_token_without_introspection_configured(
    http: httpx.AsyncClient, clock: Clock
) -> None:
    async with ResourceServer(issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock) as api:
        with pytest.raises(InvalidToken, match="only accepts JWTs"):
            await api.verify(Credentials(token=OPAQUE))


async def test_garbage_introspection_answer_fails_closed(clock: Clock, issuer: FakeIssuer) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == INTROSPECT:
            return httpx.Response(200, content=b"<html>")
        return issuer.handle(request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http,
        ResourceServer(
            issuer=ISSUER,
            audience=AUDIENCE,
            client_id="a",
            client_secret="b",
            http=http,
            clock=clock,
        ) as api,
    ):
        with pytest.raises(ProtectError) as caught:
            await api.verify(Credentials(token=OPAQUE))
        assert caught.value.status == 503


def test_client_id_without_secret_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="both"):
        ResourceServer(issuer=ISSUER, audience=AUDIENCE, client_id="only-id")
