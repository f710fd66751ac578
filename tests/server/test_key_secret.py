"""The key-encryption secret file: made once with 0600, shared by racing processes, checked."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ostiary.server.key_secret import derive_key, load_key_secret
from ostiary.server.settings import SettingsError


def test_first_start_creates_a_0600_secret_and_later_starts_reuse_it(tmp_path: Path) -> None:
    path = tmp_path / "ostiary.key"
    secret = load_key_secret(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret) >= 43
    assert load_key_secret(path, create=True) == secret
    assert load_key_secret(path, create=False) == secret
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_processes_starting_at_once_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "ostiary.key"
    with ThreadPoolExecutor(max_workers=8) as pool:
        secrets = set(pool.map(lambda _: load_key_secret(path, create=True), range(32)))
    assert len(secrets) == 1


def test_a_named_file_that_is_missing_is_an_error_not_a_new_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_key_secret(tmp_path / "absent.key", create=False)
    assert not (tmp_path / "absent.key").exists()


@pytest.mark.parametrize("content", [b"", b"short", b"  " + b"x" * 31 + b"\n", b"x" * 5000])
def test_weak_or_oversized_secret_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "ostiary.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(SettingsError, match="random text"):
        load_key_secret(path, create=False)


def test_world_writable_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ostiary.key"
    path.write_text("x" * 43)
    path.chmod(0o666)
    with pytest.raises(SettingsError, match="chmod 600"):
        load_key_secret(path, create=False)


def test_surrounding_whitespace_is_not_part_of_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "ostiary.key"
    path.write_text("\n  " + "k" * 40 + "  \n")
    assert load_key_secret(path, create=False) == b"k" * 40


def test_derive_key_is_rfc_5869_hkdf_sha256() -> None:
    secret = b"s" * 43
    expected = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=b"ostiary key derivation", info=b"purpose"
    ).derive(secret)
    assert derive_key(secret, "purpose", 64) == expected
    assert derive_key(secret, "purpose") == expected[:32]
    assert derive_key(secret, "other") != derive_key(secret, "purpose")
