"""The key-encryption secret: read from `OSTIARY_KEY_FILE`, or made once in ./ostiary.key.

Every server process and the CLI read the same secret: it encrypts the signing keys at rest
(`keyring.py`) and, through `derive_key`, signs the browser cookies (`sessions.py`,
`csrf.py`), so any process can read what another one wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from ostiary.oauth.config import ServerConfig

from .settings import SettingsError

MIN_SECRET_BYTES = 32
_MAX_FILE = 4096


def load_key_secret(path: Path, *, create: bool) -> bytes:
    """The secret in `path`; with `create`, a new random one is written there first if absent.

    The file holds text (a new one: 43 base64url characters, 256 bits). Surrounding
    whitespace is ignored; fewer than 32 characters is refused.
    """
    if create:
        _create(path)
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            data = file.read(_MAX_FILE + 1)
    except FileNotFoundError as exc:
        raise SettingsError(
            f"the key-encryption secret file {path} does not exist (OSTIARY_KEY_FILE)"
        ) from exc
    except OSError as exc:
        raise SettingsError(f"cannot read the key-encryption secret {path}: {exc}") from exc
    if mode & stat.S_IWOTH:
        raise SettingsError(f"{path} is writable by every user; run: chmod 600 {path}")
    secret = data.strip()
    if len(data) > _MAX_FILE or len(secret) < MIN_SECRET_BYTES:
        raise SettingsError(
            f"the key-encryption secret in {path} must be {MIN_SECRET_BYTES} to "
            f"{_MAX_FILE} bytes of random text"
        )
    return secret


def _create(path: Path) -> None:
    """Write a new secret with mode 0600, unless the file exists (several processes may race)."""
    if path.exists():
        return
    value = secrets.token_urlsafe(32).encode("ascii") + b"\n"
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, value)
            os.fsync(fd)
        finally:
            os.close(fd)
        # a hard link appears complete or not at all and fails if the name exists: of several
        # processes starting at once exactly one publishes its secret, and none reads half
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError as exc:
        raise SettingsError(f"cannot create the key-encryption secret {path}: {exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose from the secret: HKDF-SHA256 (RFC 5869), `purpose` as info."""
    if not 0 < length <= 255 * 32:
        raise ValueError("length out of range")
    prk = hmac.new(b"ostiary key derivation", secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(
            prk, block + purpose.encode("utf-8") + bytes([counter]), hashlib.sha256
        ).digest()
        out += block
        counter += 1
    return out[:length]


def with_derived_keys(config: ServerConfig, secret: bytes) -> ServerConfig:
    """`config` with the keys the core derives from the key-encryption secret: the salt of
    pairwise subjects (OpenID Connect Core §8.1) and the key of initial access tokens
    (RFC 7591 §3), the same in every process that holds the secret."""
    return dataclasses.replace(
        config,
        subject_salt=derive_key(secret, "ostiary pairwise subjects v1"),
        registration_key=derive_key(secret, "ostiary initial access tokens v1"),
    )
