"""`Settings`: the only pydantic-settings class. Environment `OSTIARY_*`, then a TOML file.

Precedence, highest first: keyword arguments (command-line flags), `OSTIARY_*` environment
variables, the TOML file named by `config=` / `OSTIARY_CONFIG`, the defaults below. With no
settings at all the server is a local one that just works: issuer `http://HOST:PORT`, a
SQLite file and a key-encryption secret in the working folder. Settings production needs are
checked loudly when the object is built, so a bad deployment never starts.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ostiary.oauth.config import ServerConfig

DEFAULT_DATABASE_URL = "sqlite:///ostiary.db"
DEFAULT_KEY_FILE = Path("ostiary.key")
_MAX_CONFIG_FILE = 1024 * 1024


class SettingsError(ValueError):
    """A setting is missing, unreadable or unsafe; the message says which and how to fix it."""


class Settings(BaseSettings):
    """Everything `ostiary serve` can be told: `Settings()`, `Settings(port=9000)`."""

    model_config = SettingsConfigDict(
        env_prefix="OSTIARY_", extra="forbid", frozen=True, validate_default=True
    )

    config: Path | None = None  # a TOML file with any of the settings below (OSTIARY_CONFIG)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    issuer: str | None = None  # default http://HOST:PORT; anything not local must be https
    database_url: str = DEFAULT_DATABASE_URL
    key_file: Path | None = None  # the key-encryption secret; default ./ostiary.key, made once
    signing_alg: Literal["ES256", "RS256", "EdDSA"] = "ES256"
    access_token_ttl: int = Field(default=600, gt=0)
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, gt=0)
    code_ttl: int = Field(default=60, gt=0, le=60)
    key_rotation_overlap: int = Field(default=24 * 3600, ge=0)
    key_refresh_interval: int = Field(default=30, ge=0)  # re-read the key table this often
    default_audience: str | None = None
    session_ttl: int = Field(default=8 * 3600, gt=0)  # the browser login session
    # Back-channel logout tokens (server/backchannel.py): at most this many posts of each,
    # the first retry after `logout_retry_delay` seconds and each pause doubled (cap 1 h);
    # due ones are looked for every `logout_delivery_interval` seconds (0: this process
    # sends none) and expired sessions ended every `session_sweep_interval` (0: never)
    logout_delivery_attempts: int = Field(default=10, ge=1, le=100)
    logout_retry_delay: int = Field(default=5, ge=1, le=3600)
    logout_delivery_interval: float = Field(default=2.0, ge=0, le=3600)
    session_sweep_interval: float = Field(default=60.0, ge=0, le=24 * 3600)
    # Remove expired codes, tokens, sessions and the like every `purge_interval` seconds
    # (server/purge.py), give or take a fifth; 0: this process never does (`ostiary purge`)
    purge_interval: float = Field(default=300.0, ge=0, le=7 * 24 * 3600)
    login_max_failures: int = Field(default=5, gt=0)
    login_window: int = Field(default=15 * 60, gt=0)
    login_backoff_cap: int = Field(default=24 * 3600, gt=0)
    max_request_size: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    metrics_token: SecretStr | None = None  # when set, GET /metrics needs it as a bearer token
    health_timeout: float = Field(default=2.0, gt=0, le=60)  # /health waits this long for the db
    health_interval: float = Field(default=1.0, gt=0, le=60)  # /health checks the db this often
    # PostgreSQL: each connect, wait for a pooled connection and statement; past it, 503
    database_timeout: float = Field(default=5.0, gt=0, le=300)
    database_pool_size: int = Field(default=10, ge=1, le=1000)  # connections per process
    workers: int = Field(default=1, ge=1, le=64)  # `ostiary serve` processes on one port
    dpop_nonces: bool = False  # RFC 9449 §8: DPoP proofs at /token must carry our nonce
    # Token requests per client per window over every process (0: no limit); generous by
    # default: it stops a runaway client, not a busy one.
    token_rate_limit: int = Field(default=120_000, ge=0)
    token_rate_window: int = Field(default=60, ge=1, le=24 * 3600)
    # a client past its budget again in the window after its penalty: refused 2, 4, 8, ...
    # windows, the part beyond the first window at most this long (0: no back-off)
    token_rate_backoff_cap: int = Field(default=3600, ge=0, le=7 * 24 * 3600)
    rate_limit_sync_interval: float = Field(default=1.0, gt=0, le=60)  # share counts this often
    # Failed client authentication (token, revocation, introspection): per address and
    # client id this many free, per address this many client ids free; then a wait from
    # `client_auth_backoff` seconds, doubling, up to the cap. 0 failures: no limit.
    client_auth_max_failures: int = Field(default=10, ge=0)
    client_auth_max_clients: int = Field(default=20, ge=1)
    client_auth_backoff: int = Field(default=1, ge=1)
    client_auth_backoff_cap: int = Field(default=900, ge=1, le=24 * 3600)
    redis_url: str | None = None  # rate-limit counters in Redis instead of the database
    redis_prefix: str = Field(default="ostiary", min_length=1, max_length=100, pattern=r"^\S+$")
    # RFC 7591 at /register: "token" needs an initial access token (`ostiary clients
    # registration-token`), "open" lets anyone register, "off" turns the endpoint off
    registration: Literal["token", "open", "off"] = "token"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_path(init_settings)
        if path is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, InitSettingsSource(settings_cls, read_toml(path)))

    @model_validator(mode="after")
    def _check(self) -> Settings:
        self.server_config()  # ServerConfig's own checks (issuer shape, code_ttl, alg)
        check_issuer(self.effective_issuer)
        if 0 < self.purge_interval < 1:
            raise SettingsError(
                "OSTIARY_PURGE_INTERVAL must be 0 (no purge in this process) or at least 1 second"
            )
        if not self.database_url.strip():
            raise SettingsError("OSTIARY_DATABASE_URL is empty")
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise SettingsError("OSTIARY_REDIS_URL must be a redis://, rediss:// or unix:// URL")
        return self

    @property
    def effective_issuer(self) -> str:
        """The issuer: `OSTIARY_ISSUER`, else `http://HOST:PORT` for a local server."""
        if self.issuer is not None:
            return self.issuer
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def key_path(self) -> Path:
        """Where the key-encryption secret lives (`OSTIARY_KEY_FILE`, else ./ostiary.key)."""
        return self.key_file if self.key_file is not None else DEFAULT_KEY_FILE

    @property
    def is_local(self) -> bool:
        """True when the issuer is a loopback address: no https, no Secure cookies needed."""
        return is_loopback_url(self.effective_issuer)

    def server_config(self) -> ServerConfig:
        """The protocol core's configuration built from these settings."""
        try:
            return ServerConfig(
                issuer=self.effective_issuer,
                access_token_ttl=self.access_token_ttl,
                refresh_token_ttl=self.refresh_token_ttl,
                code_ttl=self.code_ttl,
                signing_alg=self.signing_alg,
                key_rotation_overlap=self.key_rotation_overlap,
                default_audience=self.default_audience,
                login_max_failures=self.login_max_failures,
                login_window=self.login_window,
                login_backoff_cap=self.login_backoff_cap,
                max_request_size=self.max_request_size,
                open_registration=self.registration == "open",
                registration_enabled=self.registration != "off",
            )
        except ValueError as exc:
            raise SettingsError(f"OSTIARY_ISSUER or a token setting is invalid: {exc}") from exc

    def summary(self) -> str:
        """One line for the first log line of `ostiary serve`; never shows a secret."""
        kind = "local server" if self.is_local else "server"
        return (
            f"ostiary {kind}: issuer {self.effective_issuer}, "
            f"database {redact_url(self.database_url)}, signing {self.signing_alg}, "
            f"key-encryption secret in {self.key_path}"
        )


def _config_path(init_settings: PydanticBaseSettingsSource) -> Path | None:
    given: Any = None
    if isinstance(init_settings, InitSettingsSource):
        given = init_settings.init_kwargs.get("config")
    if given is None:
        given = os.environ.get("OSTIARY_CONFIG") or None
    return None if given is None else Path(given)


def read_toml(path: Path) -> dict[str, Any]:
    """The settings in a TOML file (flat keys named like the fields); unknown keys are errors."""
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_CONFIG_FILE + 1)
    except OSError as exc:
        raise SettingsError(f"cannot read the config file {path}: {exc.strerror}") from exc
    if len(data) > _MAX_CONFIG_FILE:
        raise SettingsError(f"the config file {path} is larger than 1 MiB")
    try:
        values = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"the config file {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(values) - set(Settings.model_fields) | ({"config"} & set(values)))
    if unknown:
        known = ", ".join(sorted(set(Settings.model_fields) - {"config"}))
        raise SettingsError(f"unknown setting(s) {unknown} in {path}; known: {known}")
    return values


def check_issuer(issuer: str) -> None:
    """Refuse an issuer a production server must not have (RFC 8414 §2: https, no query)."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"OSTIARY_ISSUER must be an absolute http(s) URL, not {issuer!r}")
    if parts.username is not None or parts.password is not None:
        raise SettingsError("OSTIARY_ISSUER must not contain a user name or password")
    if parts.scheme != "https" and not is_loopback_url(issuer):
        # RFC 8414 §2 and OAuth 2.1 §1.5: a non-local issuer over plain http leaks every code
        raise SettingsError(
            f"OSTIARY_ISSUER {issuer!r} is not a local address, so it must use https "
            "(set OSTIARY_ISSUER=https://your.public.host)"
        )


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs on localhost or a loopback IP address."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """A database URL with any password replaced by `***`, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{netloc[2]}").geturl()
