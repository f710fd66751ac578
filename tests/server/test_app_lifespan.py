"""Start-up and shut-down: the first start makes what a local server needs, later starts reuse
it, a bad secret stops the start loudly, and a rotation by the CLI reaches a running app."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from server_app import ISSUER, Clock, fast_hasher, make_settings, serve

from ostiary.oauth.memory import MemoryStore
from ostiary.server.app import create_app
from ostiary.server.key_secret import load_key_secret
from ostiary.server.keyring import KeySecretMismatch, rotate
from ostiary.server.settings import Settings, SettingsError

pytestmark = pytest.mark.anyio


async def jwks_kids(settings: Settings, clock: Clock) -> list[str]:
    async with serve(settings, clock=clock, hasher=fast_hasher()) as served:
        keys = (await served.http.get("/jwks.json")).json()["keys"]
    return [key["kid"] for key in keys]


async def test_first_start_in_an_empty_folder_just_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()  # nothing set: ./ostiary.db, ./ostiary.key
    first = await jwks_kids(settings, clock)
    key_file = tmp_path / "ostiary.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (tmp_path / "ostiary.db").is_file()
    assert len(first) == 3  # one key per algorithm: ES256 (access tokens), RS256, EdDSA
    assert await jwks_kids(settings, clock) == first  # the second start reuses the key


async def test_named_key_file_that_is_missing_stops_the_start(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path, key_file=tmp_path / "absent.key")
    app = create_app(settings, store=MemoryStore(), clock=clock, passwords=fast_hasher())
    with pytest.raises(SettingsError, match="does not exist"):
        async with app.router.lifespan_context(app):
            pass


async def test_keys_made_with_another_secret_stop_the_start(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path)
    await jwks_kids(settings, clock)
    other = tmp_path / "other.key"
    other.write_text("o" * 43)
    other.chmod(0o600)
    with pytest.raises(KeySecretMismatch):
        await jwks_kids(make_settings(tmp_path, key_file=other), clock)


@pytest.mark.parametrize(("alg", "kty"), [("RS256", "RSA"), ("EdDSA", "OKP"), ("ES256", "EC")])
async def test_access_tokens_use_the_configured_algorithm(
    tmp_path: Path, clock: Clock, alg: str, kty: str
) -> None:
    settings = make_settings(tmp_path, signing_alg=alg)
    async with serve(settings, clock=clock, hasher=fast_hasher()) as served:
        keys = (await served.http.get("/jwks.json")).json()["keys"]
        signer = await served.runtime.keyring.signing_key()
    assert sorted((key["alg"], key["kty"]) for key in keys) == [
        ("ES256", "EC"),
        ("EdDSA", "OKP"),
        ("RS256", "RSA"),
    ]
    assert (signer.alg, signer.kty) == (alg, kty)


async def test_rotation_by_the_cli_reaches_the_running_app(
    tmp_path: Path, clock: Clock, backend: str
) -> None:
    settings = make_settings(tmp_path, database_url=backend, key_refresh_interval=0)
    async with serve(settings, clock=clock, hasher=fast_hasher()) as served:
        before = (await served.http.get("/jwks.json")).json()["keys"]
        (old,) = [key for key in before if key["alg"] == "ES256"]
        secret = load_key_secret(settings.key_path, create=False)
        # what `ostiary keys rotate` does, against the same database
        new = await rotate(served.store, secret, "ES256", clock(), 3600, access_token_ttl=600)
        kids = [k["kid"] for k in (await served.http.get("/jwks.json")).json()["keys"]]
        assert sorted(kids) == sorted([*(key["kid"] for key in before), new.kid])
        assert (await served.runtime.keyring.signing_key()).kid == old["kid"]
        clock.advance(3600)
        assert (await served.runtime.keyring.signing_key()).kid == new.kid


async def test_changed_algorithm_takes_effect_with_the_keys_already_published(
    tmp_path: Path, clock: Clock
) -> None:
    first = await jwks_kids(make_settings(tmp_path, signing_alg="ES256"), clock)
    settings = make_settings(tmp_path, signing_alg="RS256")
    async with serve(settings, clock=clock, hasher=fast_hasher()) as served:
        kids = [k["kid"] for k in (await served.http.get("/jwks.json")).json()["keys"]]
        signer = await served.runtime.keyring.signing_key()
    assert kids == first  # no new key: the RS256 key was there (and published) all along
    assert signer.alg == "RS256"


async def test_given_store_is_used_and_no_database_is_made(tmp_path: Path, clock: Clock) -> None:
    store = MemoryStore()
    settings = make_settings(tmp_path)
    async with serve(settings, clock=clock, hasher=fast_hasher(), store=store) as served:
        assert served.store is store
        assert (await served.http.get("/jwks.json")).status_code == 200
    assert not (tmp_path / "ostiary.db").exists()
    assert sorted(key.alg for key in await store.keys.list()) == ["ES256", "EdDSA", "RS256"]


def test_issuer_is_the_settings_issuer(tmp_path: Path) -> None:
    assert make_settings(tmp_path, issuer=ISSUER).server_config().issuer == ISSUER
