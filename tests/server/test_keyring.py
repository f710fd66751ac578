"""Signing keys: created on first start, encrypted at rest, rotated with an overlap, retired
keys published until their tokens expire, rotations by other processes picked up.

The same cases run on `MemoryStore` and on the real SqlStore (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_app import START, database_url_for

from ostiary.jose import jwe, jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.errors import TemporarilyUnavailable
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.store import Store
from ostiary.server.keyring import (
    DbKeyRing,
    KeySecretMismatch,
    decrypt_signing_key,
    ensure_signing_key,
    rotate,
)
from ostiary.store import migrate, open_store

SECRET = b"k" * 43
TTL = 600

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    async with database_url_for(request.param, tmp_path) as url:
        await migrate(url)
        sql = await open_store(url)
        try:
            yield sql
        finally:
            await sql.close()


class Ticks:
    """A settable clock for the keyring (seconds) and its monotonic refresh timer."""

    def __init__(self) -> None:
        self.now = START
        self.mono = 0.0

    def clock(self) -> int:
        return self.now

    def monotonic(self) -> float:
        return self.mono


def ring(
    store: Store, ticks: Ticks, refresh_interval: float = 30, default_alg: str | None = None
) -> DbKeyRing:
    return DbKeyRing(
        store,
        SECRET,
        clock=ticks.clock,
        refresh_interval=refresh_interval,
        monotonic=ticks.monotonic,
        default_alg=default_alg,
    )


async def kids(keyring: DbKeyRing) -> set[str]:
    return {key.kid for key in (await keyring.published()).keys if key.kid is not None}


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
async def test_first_start_makes_one_key_that_signs_tokens_the_jwks_verifies(
    store: Store, alg: str
) -> None:
    first = await ensure_signing_key(store, SECRET, alg, START)
    again = await ensure_signing_key(store, SECRET, alg, START + 5)
    assert again.kid == first.kid
    assert len(await store.keys.list()) == 1
    ticks = Ticks()
    keyring = ring(store, ticks)
    key = await keyring.signing_key()
    assert (key.kid, key.alg, key.is_private) == (first.kid, alg, True)
    token = jwt.encode({"sub": "u", "exp": START + 60}, key, alg=alg)
    published = await keyring.published()
    assert all(not k.is_private for k in published.keys)
    assert jwt.decode(token, published, algorithms=[alg], now=START)["sub"] == "u"


async def test_private_key_is_encrypted_at_rest(store: Store) -> None:
    row = await ensure_signing_key(store, SECRET, "ES256", START)
    private = decrypt_signing_key(row, SECRET).to_dict(private=True)
    assert private["d"] not in row.private_jwe
    assert "d" not in row.public_jwk
    header = jwe.unverified_header(row.private_jwe)
    assert (header["alg"], header["enc"], header["kid"]) == ("dir", "A256GCM", row.kid)


async def test_wrong_key_encryption_secret_fails_start_up_loudly(store: Store) -> None:
    await ensure_signing_key(store, SECRET, "ES256", START)
    with pytest.raises(KeySecretMismatch, match="OSTIARY_KEY_FILE"):
        await ensure_signing_key(store, b"w" * 43, "ES256", START)


async def test_swapped_encrypted_keys_are_detected(store: Store) -> None:
    first = await ensure_signing_key(store, SECRET, "ES256", START)
    second = await rotate(store, SECRET, "ES256", START, 0, access_token_ttl=TTL)
    forged = dataclasses.replace(second, private_jwe=first.private_jwe)
    with pytest.raises(KeySecretMismatch, match="different key"):
        decrypt_signing_key(forged, SECRET)


async def test_public_key_swapped_in_the_row_is_detected(store: Store) -> None:
    row = await ensure_signing_key(store, SECRET, "ES256", START)
    other = JWK.generate("EC", crv="P-256").public().to_dict()
    forged = dataclasses.replace(row, public_jwk={**other, "kid": row.kid, "alg": "ES256"})
    with pytest.raises(KeySecretMismatch, match="public key"):
        decrypt_signing_key(forged, SECRET)


async def test_rotation_publishes_first_signs_later_and_retires_after_tokens_expire(
    store: Store,
) -> None:
    old = await ensure_signing_key(store, SECRET, "ES256", START)
    ticks = Ticks()
    keyring = ring(store, ticks, refresh_interval=0)
    new = await rotate(store, SECRET, "ES256", START, 100, access_token_ttl=TTL)
    # published at once, so verifiers caching the JWKS know it before it signs anything
    assert await kids(keyring) == {old.kid, new.kid}
    timeline = [
        (START, old.kid, {old.kid, new.kid}),
        (START + 99, old.kid, {old.kid, new.kid}),
        (START + 100, new.kid, {old.kid, new.kid}),
        (START + 100 + TTL - 1, new.kid, {old.kid, new.kid}),  # last old token still valid
        (START + 100 + TTL, new.kid, {new.kid}),
    ]
    for now, signer, published in timeline:
        ticks.now = now
        assert (await keyring.signing_key()).kid == signer, now
        assert await kids(keyring) == published, now
    rows = {row.kid: row for row in await store.keys.list()}
    assert rows[old.kid].retires_at == START + 100
    assert rows[old.kid].expires_at == START + 100 + TTL
    assert rows[new.kid].retires_at is None


async def test_rotating_again_during_the_overlap_keeps_one_signer_at_a_time(
    store: Store,
) -> None:
    a = await ensure_signing_key(store, SECRET, "ES256", START)
    b = await rotate(store, SECRET, "ES256", START, 100, access_token_ttl=TTL)
    c = await rotate(store, SECRET, "ES256", START + 50, 100, access_token_ttl=TTL)
    ticks = Ticks()
    keyring = ring(store, ticks, refresh_interval=0)
    for now, signer in [(START + 50, a), (START + 100, b), (START + 149, b), (START + 150, c)]:
        ticks.now = now
        assert (await keyring.signing_key()).kid == signer.kid, now


async def test_each_algorithm_keeps_its_own_current_key_through_rotations(
    store: Store,
) -> None:
    es = await ensure_signing_key(store, SECRET, "ES256", START)
    rs = await ensure_signing_key(store, SECRET, "RS256", START)
    assert es.kid != rs.kid
    assert (await ensure_signing_key(store, SECRET, "RS256", START + 1)).kid == rs.kid
    new_rs = await rotate(store, SECRET, "RS256", START, 100, access_token_ttl=TTL)
    ticks = Ticks()
    keyring = ring(store, ticks, refresh_interval=0, default_alg="ES256")
    ticks.now = START + 100
    # rotating RS256 retires the old RS256 key only; the ES256 key goes on signing
    assert (await keyring.signing_key()).kid == es.kid
    assert (await keyring.signing_key("ES256")).kid == es.kid
    assert (await keyring.signing_key("RS256")).kid == new_rs.kid
    rows = {row.kid: row for row in await store.keys.list()}
    assert rows[es.kid].retires_at is None
    assert rows[rs.kid].retires_at == START + 100
    assert await kids(keyring) == {es.kid, rs.kid, new_rs.kid}
    with pytest.raises(TemporarilyUnavailable):
        await keyring.signing_key("EdDSA")  # never created: no key of another alg stands in


async def test_rotation_by_another_process_is_picked_up_within_the_refresh_interval(
    store: Store,
) -> None:
    old = await ensure_signing_key(store, SECRET, "ES256", START)
    ticks = Ticks()
    keyring = ring(store, ticks, refresh_interval=30)
    assert await kids(keyring) == {old.kid}
    new = await rotate(store, SECRET, "ES256", START, 0, access_token_ttl=TTL)  # e.g. the CLI
    ticks.mono = 29.0
    assert await kids(keyring) == {old.kid}  # cached: the table is not read per request
    assert (await keyring.signing_key()).kid == old.kid
    ticks.mono = 30.0
    assert await kids(keyring) == {old.kid, new.kid}
    assert (await keyring.signing_key()).kid == new.kid


async def test_processes_starting_at_once_settle_on_one_signing_key(store: Store) -> None:
    chosen = await asyncio.gather(
        *(ensure_signing_key(store, SECRET, "ES256", START) for _ in range(4))
    )
    rows = await store.keys.list()
    assert {row.kid for row in chosen} <= {row.kid for row in rows}
    ticks = Ticks()
    signers = {(await ring(store, ticks).signing_key()).kid for _ in range(3)}
    assert len(signers) == 1  # every process's keyring picks the same one
    assert signers <= {row.kid for row in rows}


async def test_no_key_at_all_is_temporarily_unavailable_not_a_crash() -> None:
    keyring = ring(MemoryStore(), Ticks())
    with pytest.raises(TemporarilyUnavailable):
        await keyring.signing_key()
    assert (await keyring.published()).to_dict() == {"keys": []}


async def test_the_cli_rotation_without_a_ttl_uses_the_default(store: Store) -> None:
    old = await ensure_signing_key(store, SECRET, "ES256", START)
    await rotate(store, SECRET, "ES256", START, 10)
    rows = {row.kid: row for row in await store.keys.list()}
    assert rows[old.kid].expires_at == START + 10 + 600


async def test_published_document_is_plain_json(store: Store) -> None:
    await ensure_signing_key(store, SECRET, "RS256", START)
    document = (await ring(store, Ticks()).published()).to_dict()
    (key,) = json.loads(json.dumps(document))["keys"]
    assert key["kty"] == "RSA" and "d" not in key and key["use"] == "sig"


@pytest.mark.parametrize(("overlap", "ttl"), [(-1, 600), (0, 0)])
async def test_rotate_refuses_nonsense(overlap: int, ttl: int) -> None:
    with pytest.raises(ValueError, match="overlap"):
        await rotate(MemoryStore(), SECRET, "ES256", START, overlap, access_token_ttl=ttl)
