"""Fixtures for `ostiary.protect`: a `ResourceServer` in front of a `FakeIssuer`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from protect_issuer import AUDIENCE, ISSUER, Clock, FakeIssuer

from ostiary.protect import ResourceServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(clock: Clock) -> FakeIssuer:
    return FakeIssuer(clock)


@pytest.fixture
async def http(issuer: FakeIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=issuer.transport()) as client:
        yield client


@pytest.fixture
async def api(http: httpx.AsyncClient, clock: Clock) -> AsyncIterator[ResourceServer]:
    async with ResourceServer(issuer=ISSUER, audience=AUDIENCE, http=http, clock=clock) as server:
        yield server
