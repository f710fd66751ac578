"""`Settings`: defaults that just work locally, env over TOML, loud production checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ostiary.server.settings import (
    DEFAULT_DATABASE_URL,
    Settings,
    SettingsError,
    is_loopback_url,
    redact_url,
)


def test_defaults_are_a_local_server() -> None:
    settings = Settings()
    assert settings.effective_issuer == "http://127.0.0.1:8000"
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///ostiary.db"
    assert settings.key_path == Path("ostiary.key")
    assert settings.is_local
    config = settings.server_config()
    assert (config.issuer, config.signing_alg, config.code_ttl) == (
        "http://127.0.0.1:8000",
        "ES256",
        60,
    )
    assert "local server" in settings.summary()


def test_issuer_follows_host_and_port() -> None:
    assert Settings(host="localhost", port=9000).effective_issuer == "http://localhost:9000"
    assert Settings(host="::1", port=9000).effective_issuer == "http://[::1]:9000"


def test_environment_sets_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTIARY_ISSUER", "https://auth.example")
    monkeypatch.setenv("OSTIARY_DATABASE_URL", "postgresql://ostiary@db:5432/ostiary")
    monkeypatch.setenv("OSTIARY_ACCESS_TOKEN_TTL", "300")
    monkeypatch.setenv("OSTIARY_SIGNING_ALG", "EdDSA")
    monkeypatch.setenv("OSTIARY_KEY_FILE", "/run/secrets/ostiary.key")
    settings = Settings()
    config = settings.server_config()
    assert config.issuer == "https://auth.example"
    assert config.access_token_ttl == 300
    assert config.signing_alg == "EdDSA"
    assert settings.key_path == Path("/run/secrets/ostiary.key")
    assert not settings.is_local


def test_toml_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ostiary.toml"
    config.write_text(
        'issuer = "https://auth.example"\naccess_token_ttl = 120\nsigning_alg = "RS256"\n'
    )
    from_file = Settings(config=config)
    assert from_file.effective_issuer == "https://auth.example"
    assert from_file.access_token_ttl == 120
    monkeypatch.setenv("OSTIARY_CONFIG", str(config))
    monkeypatch.setenv("OSTIARY_ACCESS_TOKEN_TTL", "60")
    from_env = Settings()
    assert (from_env.access_token_ttl, from_env.signing_alg) == (60, "RS256")
    assert Settings(access_token_ttl=30).access_token_ttl == 30  # flags beat both


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('isuer = "https://auth.example"\n', "unknown setting"),
        ('config = "other.toml"\n', "unknown setting"),
        ("issuer = \n", "not valid TOML"),
        ("\xff\xfe", "not valid TOML"),
    ],
    ids=["typo", "nested-config", "syntax", "not-utf8"],
)
def test_bad_toml_file_is_refused_loudly(tmp_path: Path, text: str, complaint: str) -> None:
    config = tmp_path / "ostiary.toml"
    config.write_bytes(text.encode("latin-1"))
    with pytest.raises(SettingsError, match=complaint):
        Settings(config=config)


def test_missing_toml_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        Settings(config=tmp_path / "absent.toml")


@pytest.mark.parametrize(
    "issuer",
    [
        "http://auth.example",  # public host over plain http
        "http://10.0.0.5:8000",
        "ftp://auth.example",
        "https://auth.example/",  # trailing slash: RFC 8414 §2 compares exactly
        "https://auth.example?x=1",
        "https://auth.example#top",
        "https://user:pw@auth.example",
        "auth.example",
        "",
    ],
)
def test_unsafe_issuer_stops_start_up(issuer: str) -> None:
    with pytest.raises(ValueError, match="OSTIARY_ISSUER"):
        Settings(issuer=issuer)


def test_public_host_without_issuer_is_refused() -> None:
    # binding 0.0.0.0 with no issuer would advertise http://0.0.0.0:8000 to the world
    with pytest.raises(ValidationError, match="https"):
        Settings(host="0.0.0.0")  # noqa: S104 - the point of the test


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code_ttl", 61),
        ("code_ttl", 0),
        ("access_token_ttl", 0),
        ("port", 70000),
        ("signing_alg", "HS256"),
        ("max_request_size", 10),
        ("unknown_setting", 1),
    ],
)
def test_out_of_range_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.5.5.5", True),
        ("http://localhost:1", True),
        ("http://auth.localhost", True),
        ("http://[::1]:8000", True),
        ("http://localhost.example", False),
        ("http://0.0.0.0", False),
        ("https://auth.example", False),
    ],
)
def test_loopback_detection(url: str, local: bool) -> None:
    assert is_loopback_url(url) is local


def test_summary_never_shows_the_database_password() -> None:
    settings = Settings(database_url="postgresql://ostiary:hunter2@db:5432/ostiary")
    assert "hunter2" not in settings.summary()
    assert redact_url("postgresql://u:p@h/d") == "postgresql://u:***@h/d"
    assert redact_url("sqlite:///ostiary.db") == "sqlite:///ostiary.db"
