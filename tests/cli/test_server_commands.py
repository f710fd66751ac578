"""`ostiary serve | migrate | clients | users | keys list|rotate` on the server's database.

In-process tests run `main()` in a temporary working folder on SQLite (the default, no
settings) and on a PostgreSQL database emptied before each test (skipped with the reason when
127.0.0.1:5432 is unreachable). The end-to-end tests start a real `ostiary serve` process
and change its database with the `ostiary` command while it runs.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_databases import PostgresDatabases, in_store
from cli_run import Run, assert_one_line_error

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK, JWKSet
from ostiary.oauth.client_secrets import verify_client_secret
from ostiary.oauth.models import Client, SigningKey, User
from ostiary.oauth.store import Store
from ostiary.server.passwords import Argon2PasswordHasher

SCRIPT = Path(sys.executable).parent / ("ostiary.exe" if os.name == "nt" else "ostiary")
START_TIMEOUT = 60.0  # first start migrates the database and makes the signing key
PASSWORD = "correct horse battery"


# -- databases -----------------------------------------------------------------------------

# Every test runs in an empty folder with no OSTIARY_* settings of the caller's.
pytestmark = pytest.mark.usefixtures("working_folder")


def stored_clients(url: str) -> list[Client]:
    async def load(store: Store) -> list[Client]:
        return list(await store.clients.list())

    return in_store(url, load)


def stored_users(url: str) -> list[User]:
    async def load(store: Store) -> list[User]:
        return list(await store.users.list())

    return in_store(url, load)


def stored_keys(url: str) -> list[SigningKey]:
    async def load(store: Store) -> list[SigningKey]:
        return list(await store.keys.list())

    return in_store(url, load)


def create_client(ostiary: Run, *args: str) -> dict[str, Any]:
    result = ostiary("clients", "create", "--json", *args)
    assert result.status == 0, result.err
    created: dict[str, Any] = json.loads(result.out)
    return created


# -- clients -------------------------------------------------------------------------------


def test_confidential_client_secret_shown_once_stored_as_hash(
    ostiary: Run, database_url: str
) -> None:
    created = create_client(
        ostiary,
        *("--name", "Notes web", "--grant-types", "authorization_code,refresh_token"),
        *("--redirect-uris", "https://notes.example/cb,http://127.0.0.1/cb"),
        *("--scopes", "openid  notes:read notes:read"),
    )
    secret = created["client_secret"]
    assert len(secret) >= 43
    assert created["auth_method"] == "client_secret_basic"
    assert created["redirect_uris"] == ["https://notes.example/cb", "http://127.0.0.1/cb"]
    assert created["scope"] == "notes:read openid"
    (client,) = stored_clients(database_url)
    assert client.client_id == created["client_id"]
    assert client.secret_hash is not None and secret not in client.secret_hash
    assert verify_client_secret(secret, client.secret_hash)
    assert client.grant_types == {"authorization_code", "refresh_token"}
    # show and list never print the secret or its hash again
    for args in (("show", client.client_id), ("show", client.client_id, "--json"), ("list",)):
        shown = ostiary("clients", *args)
        assert shown.status == 0, shown.err
        assert secret not in shown.out and client.secret_hash not in shown.out
        assert client.client_id in shown.out


def test_human_output_puts_the_secret_on_stdout_and_the_warning_on_stderr(
    ostiary: Run, database_url: str
) -> None:
    result = ostiary("clients", "create", "--name", "Job", "--grant-types", "client_credentials")
    assert result.status == 0, result.err
    (client,) = stored_clients(database_url)
    lines = dict(line.split(":", 1) for line in result.out.splitlines())
    assert lines["client_id"].strip() == client.client_id
    assert client.secret_hash is not None
    assert verify_client_secret(lines["client_secret"].strip(), client.secret_hash)
    assert "shown only this once" in result.err


def test_public_client_has_no_secret(ostiary: Run, database_url: str) -> None:
    created = create_client(
        ostiary,
        *("--name", "CLI app", "--public", "--grant-types", "authorization_code"),
        *("--redirect-uris", "http://[::1]/cb", "--scopes", "read"),
    )
    assert "client_secret" not in created
    assert (created["public"], created["auth_method"]) == (True, "none")
    (client,) = stored_clients(database_url)
    assert (client.is_public, client.secret_hash) == (True, None)


def test_options_reach_the_stored_client(ostiary: Run, database_url: str) -> None:
    create_client(
        ostiary,
        *("--name", "Legacy", "--grant-types", "authorization_code,refresh_token"),
        *("--redirect-uris", "com.example.app:/oauth", "--legacy-password-grant"),
        *("--auth-method", "client_secret_post", "--token-format", "opaque"),
    )
    (client,) = stored_clients(database_url)
    assert client.grant_types == {"authorization_code", "refresh_token", "password"}
    assert client.legacy_password_grant is True
    assert (client.auth_method, client.token_format) == ("client_secret_post", "opaque")
    assert client.redirect_uris == ("com.example.app:/oauth",)


def test_private_key_jwt_client_gets_public_keys_only(
    ostiary: Run, database_url: str, tmp_path: Path
) -> None:
    key = JWK.generate("EC", crv="P-256", alg="ES256", kid="job-1")
    (tmp_path / "job.pub.jwk").write_text(key.public().to_json(), encoding="utf-8")
    created = create_client(
        ostiary,
        *("--name", "Signed job", "--grant-types", "client_credentials"),
        *("--auth-method", "private_key_jwt", "--jwks", "job.pub.jwk"),
    )
    assert "client_secret" not in created
    (client,) = stored_clients(database_url)
    assert client.jwks is not None
    registered = JWKSet.from_dict(dict(client.jwks)).get("job-1")
    assert registered is not None and registered.to_dict() == key.public().to_dict()


PRIVATE_KEY_JWT = ("--grant-types", "client_credentials", "--auth-method", "private_key_jwt")
REFUSED_CLIENTS = {
    "public-client-credentials": (
        ["--public", "--grant-types", "client_credentials"],
        "public client cannot use client_credentials",
    ),
    "http-non-loopback": (["--redirect-uris", "http://evil.example/cb"], "loopback"),
    "fragment": (["--redirect-uris", "https://a.example/cb#x"], "without a fragment"),
    "relative": (["--redirect-uris", "/cb"], "absolute"),
    "userinfo": (["--redirect-uris", "https://user@a.example/cb"], "no user info"),
    "response-parameter-in-query": (["--redirect-uris", "https://a.example/cb?code=1"], "code"),
    "no-redirect-for-code": (["--grant-types", "authorization_code"], "needs at least one"),
    "redirect-without-code": (
        ["--grant-types", "client_credentials", "--redirect-uris", "https://a.example/cb"],
        "only for clients with the authorization_code grant",
    ),
    "implicit": (["--grant-types", "implicit"], "unknown grant type 'implicit'"),
    "password-without-opt-in": (
        ["--grant-types", "password", "--redirect-uris", "https://a.example/cb"],
        "--legacy-password-grant",
    ),
    "refresh-alone": (["--grant-types", "client_credentials,refresh_token"], "refresh_token"),
    "empty-grants": (["--grant-types", " , "], "--grant-types is empty"),
    "scope-quote": (["--grant-types", "client_credentials", "--scopes", 'a"b'], "--scopes"),
    "scope-backslash": (["--grant-types", "client_credentials", "--scopes", "a\\b"], "--scopes"),
    "scope-oversized": (
        ["--grant-types", "client_credentials", "--scopes", "s" * 5000],
        "too long",
    ),
    "none-without-public": (
        ["--grant-types", "client_credentials", "--auth-method", "none"],
        "pass --public",
    ),
    "public-with-secret-method": (
        ["--public", "--auth-method", "client_secret_basic"],
        "authenticates with 'none'",
    ),
    "private-key-jwt-without-jwks": (
        ["--grant-types", "client_credentials", "--auth-method", "private_key_jwt"],
        "needs --jwks",
    ),
    "jwks-without-private-key-jwt": (
        ["--grant-types", "client_credentials", "--jwks", "pub.jwk"],
        "only for --auth-method private_key_jwt",
    ),
    "jwks-private-key": (
        [*PRIVATE_KEY_JWT, "--jwks", "private.jwk"],
        "private key",
    ),
    "jwks-not-json": (
        [*PRIVATE_KEY_JWT, "--jwks", "junk.txt"],
        "not valid JSON",
    ),
    "jwks-missing-file": (
        [*PRIVATE_KEY_JWT, "--jwks", "nowhere.jwk"],
        "cannot read",
    ),
    "name-control-character": (
        ["--name", "Notes\x1b[31m", "--grant-types", "client_credentials"],
        "visible characters",
    ),
    "name-blank": (["--name", "  ", "--grant-types", "client_credentials"], "--name"),
    "too-many-redirect-uris": (
        ["--redirect-uris", ",".join(f"https://a.example/{n}" for n in range(21))],
        "at most 20",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_CLIENTS))
def test_bad_client_is_refused_and_nothing_stored(
    ostiary: Run, database_url: str, tmp_path: Path, case: str
) -> None:
    key = JWK.generate("EC", crv="P-256", alg="ES256")
    (tmp_path / "pub.jwk").write_text(key.public().to_json(), encoding="utf-8")
    (tmp_path / "private.jwk").write_text(key.to_json(private=True), encoding="utf-8")
    (tmp_path / "junk.txt").write_text("{not json", encoding="utf-8")
    args, fragment = REFUSED_CLIENTS[case]
    if "--name" not in args:
        args = ["--name", "App", *args]
    assert ostiary("migrate").status == 0
    assert_one_line_error(ostiary("clients", "create", *args), fragment)
    assert stored_clients(database_url) == []


def test_list_show_delete(ostiary: Run, database_url: str) -> None:
    assert ostiary("migrate").status == 0
    empty = ostiary("clients", "list")
    assert (empty.status, empty.out) == (0, "no clients yet: ostiary clients create --help\n")
    assert json.loads(ostiary("clients", "list", "--json").out) == []
    first = create_client(ostiary, "--name", "One", "--grant-types", "client_credentials")
    second = create_client(ostiary, "--name", "Two", "--grant-types", "client_credentials")
    listed = json.loads(ostiary("clients", "list", "--json").out)
    assert {c["client_id"] for c in listed} == {first["client_id"], second["client_id"]}
    assert all("client_secret" not in c for c in listed)
    shown = json.loads(ostiary("clients", "show", first["client_id"], "--json").out)
    assert shown == {k: v for k, v in first.items() if k != "client_secret"}
    deleted = ostiary("clients", "delete", first["client_id"])
    assert (deleted.status, deleted.out) == (0, f"deleted client {first['client_id']}\n")
    assert [c.client_id for c in stored_clients(database_url)] == [second["client_id"]]
    assert_one_line_error(ostiary("clients", "delete", first["client_id"]), "no client")
    assert_one_line_error(ostiary("clients", "show", first["client_id"]), "no client")


def test_client_ids_never_read_as_options(ostiary: Run, database_url: str) -> None:
    for _ in range(20):
        created = create_client(ostiary, "--name", "N", "--grant-types", "client_credentials")
        assert created["client_id"].startswith("c_")


# -- users ---------------------------------------------------------------------------------


FAST_HASHER = Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_user_from_stdin_is_stored_as_argon2id(ostiary: Run, database_url: str) -> None:
    result = ostiary(
        "users",
        "create",
        "--username",
        "alice",
        "--password-stdin",
        "--json",
        stdin=f"{PASSWORD}\n".encode(),
    )
    assert result.status == 0, result.err
    assert PASSWORD not in result.out + result.err
    created = json.loads(result.out)
    (user,) = stored_users(database_url)
    assert (user.user_id, user.username) == (created["user_id"], "alice")
    assert user.password_hash.startswith("$argon2id$")
    assert FAST_HASHER.verify(user.password_hash, PASSWORD)  # the trailing newline is not kept
    assert not FAST_HASHER.verify(user.password_hash, PASSWORD + "\n")


def test_user_password_keeps_inner_and_leading_spaces(ostiary: Run, database_url: str) -> None:
    password = "  two  spaces \r\n"
    result = ostiary(
        "users", "create", "--username", "bob", "--password-stdin", stdin=password.encode()
    )
    assert result.status == 0, result.err
    (user,) = stored_users(database_url)
    assert FAST_HASHER.verify(user.password_hash, "  two  spaces ")


def test_username_is_stored_nfc(ostiary: Run, database_url: str) -> None:
    decomposed = "Jose\u0301"
    result = ostiary(
        "users", "create", "--username", decomposed, "--password-stdin", stdin=b"long enough\n"
    )
    assert result.status == 0, result.err
    assert [u.username for u in stored_users(database_url)] == ["Jos\u00e9"]


REFUSED_USERS = {
    "empty-username": (["--username", ""], PASSWORD, "1 to 256"),
    "long-username": (["--username", "u" * 257], PASSWORD, "1 to 256"),
    "leading-space": (["--username", " alice"], PASSWORD, "start or end with a space"),
    "control-character": (["--username", "al\x07ice"], PASSWORD, "invisible"),
    "bidi-override": (["--username", "al\u202eice"], PASSWORD, "invisible"),
    "short-password": (["--username", "carol"], "short", "at least 8"),
    "oversized-password": (["--username", "carol"], "p" * 1025, "at most 1024"),
    "password-is-username": (["--username", "carol-the-user"], "Carol-The-User", "not be the"),
    "empty-password": (["--username", "carol"], "", "at least 8"),
}


@pytest.mark.parametrize("case", list(REFUSED_USERS))
def test_bad_user_is_refused_and_nothing_stored(ostiary: Run, database_url: str, case: str) -> None:
    args, password, fragment = REFUSED_USERS[case]
    assert ostiary("migrate").status == 0
    result = ostiary("users", "create", *args, "--password-stdin", stdin=password.encode())
    assert_one_line_error(result, fragment)
    assert stored_users(database_url) == []


@pytest.mark.parametrize(
    ("stdin", "fragment"),
    [(b"\xff\xfe not utf-8", "not UTF-8"), (b"p" * 10_000, "larger than")],
    ids=["not-utf8", "megabytes"],
)
def test_unreadable_password_on_stdin(
    ostiary: Run, database_url: str, stdin: bytes, fragment: str
) -> None:
    result = ostiary("users", "create", "--username", "dave", "--password-stdin", stdin=stdin)
    assert_one_line_error(result, fragment)


def test_no_password_argument_and_no_prompt_without_a_terminal(ostiary: Run) -> None:
    result = ostiary("users", "create", "--username", "erin", stdin=b"piped\n")
    assert_one_line_error(result, "--password-stdin")
    for args in (["--password", "hunter2-typed"], ["--password=hunter2-typed"], ["--password"]):
        refused = ostiary("users", "create", "--username", "erin", *args)
        assert refused.status == 2
        assert "pipe it to --password-stdin" in refused.err
        assert "hunter2" not in refused.err
    abbreviated = ostiary("users", "create", "--username", "erin", "--password-std")
    assert "unrecognized arguments: --password-std" in abbreviated.err


def test_usernames_differing_only_in_case_are_refused(ostiary: Run, database_url: str) -> None:
    assert (
        ostiary(
            "users", "create", "--username", "alice", "--password-stdin", stdin=b"long enough\n"
        ).status
        == 0
    )
    for name in ("alice", "ALICE"):
        result = ostiary(
            "users", "create", "--username", name, "--password-stdin", stdin=b"another one\n"
        )
        assert_one_line_error(result, "exists already")
    assert len(stored_users(database_url)) == 1


def test_users_list_and_delete(ostiary: Run, database_url: str) -> None:
    assert ostiary("migrate").status == 0
    assert ostiary("users", "list").out == "no users yet: ostiary users create --help\n"
    for name in ("bob", "alice"):
        assert (
            ostiary(
                "users", "create", "--username", name, "--password-stdin", stdin=b"long enough\n"
            ).status
            == 0
        )
    listed = json.loads(ostiary("users", "list", "--json").out)
    assert [u["username"] for u in listed] == ["alice", "bob"]
    assert all(set(u) == {"user_id", "username", "created_at"} for u in listed)
    assert "$argon2" not in ostiary("users", "list").out
    assert ostiary("users", "delete", "alice").out == "deleted user alice\n"
    assert [u.username for u in stored_users(database_url)] == ["bob"]
    assert_one_line_error(ostiary("users", "delete", "alice"), "no user named 'alice'")


def test_interactive_prompt_reads_the_password_without_echo(tmp_path: Path) -> None:
    """At a real terminal (a pseudo-terminal here) the password is asked twice, not echoed."""
    if not SCRIPT.exists():
        pytest.skip(f"the console script is not installed next to the interpreter ({SCRIPT})")
    if not hasattr(os, "openpty"):
        pytest.skip("no pseudo-terminals on this system")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    secret = "typed at the terminal"
    output = _run_at_terminal(
        [str(SCRIPT), "users", "create", "--username", "frank"], tmp_path, env, [secret] * 2
    )
    assert "Password: " in output and "Password again: " in output
    assert secret not in output
    assert "created user frank" in output
    (user,) = stored_users(f"sqlite:///{tmp_path / 'ostiary.db'}")
    assert FAST_HASHER.verify(user.password_hash, secret)
    mismatch = _run_at_terminal(
        [str(SCRIPT), "users", "create", "--username", "grace"], tmp_path, env, ["one1two2", "x"]
    )
    assert "the two passwords differ" in mismatch


def _run_at_terminal(argv: list[str], folder: Path, env: dict[str, str], answers: list[str]) -> str:
    main, child = os.openpty()
    process = subprocess.Popen(
        argv,
        stdin=child,
        stdout=child,
        stderr=child,
        cwd=folder,
        env=env,
        start_new_session=True,  # no controlling terminal: getpass uses stdin, the pty
    )
    os.close(child)
    seen = b""
    try:
        for answer in answers:
            seen += _read_until(main, process, b": ")
            os.write(main, answer.encode() + b"\n")
        process.wait(timeout=60)
        seen += _read_until(main, process, None)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)
    return seen.decode("utf-8", "replace")


def _read_until(fd: int, process: subprocess.Popen[bytes], marker: bytes | None) -> bytes:
    data = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            if marker is None and process.poll() is not None:
                return data
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            return data
        if not chunk:
            return data
        data += chunk
        if marker is not None and data.endswith(marker):
            return data
    raise AssertionError(f"no {marker!r} from the command in time; saw {data!r}")


# -- keys ----------------------------------------------------------------------------------


def test_keys_list_before_any_key(ostiary: Run, database_url: str) -> None:
    assert ostiary("migrate").status == 0
    assert "no signing keys yet" in ostiary("keys", "list").out
    assert json.loads(ostiary("keys", "list", "--json").out) == []


def test_rotate_publishes_next_key_before_it_signs(ostiary: Run, database_url: str) -> None:
    first = ostiary("keys", "rotate", "--json")
    assert first.status == 0, first.err
    created = json.loads(first.out)
    assert (created["alg"], created["state"]) == ("ES256", "signing")
    before = int(time.time())
    second = json.loads(ostiary("keys", "rotate", "--json").out)
    assert second["state"] == "next"
    assert before + 24 * 3600 - 5 <= second["activates_at"] <= int(time.time()) + 24 * 3600
    states = {k["kid"]: k for k in json.loads(ostiary("keys", "list", "--json").out)}
    assert states[created["kid"]]["state"] == "signing"
    assert states[created["kid"]]["retires_at"] == second["activates_at"]
    # a retired key stays published one access-token lifetime longer (600 s by default)
    assert states[created["kid"]]["expires_at"] == second["activates_at"] + 600
    assert "d" not in second["public_jwk"]
    human = ostiary("keys", "list").out
    assert f"{second['kid']}  ES256  next" in human
    assert f"{created['kid']}  ES256  signing" in human


def test_rotating_one_algorithm_leaves_the_others_signing(ostiary: Run, database_url: str) -> None:
    es256 = json.loads(ostiary("keys", "rotate", "--json").out)
    eddsa = json.loads(ostiary("keys", "rotate", "--alg", "EdDSA", "--overlap", "0", "--json").out)
    assert (eddsa["alg"], eddsa["state"], eddsa["public_jwk"]["crv"]) == (
        "EdDSA",
        "signing",
        "Ed25519",
    )
    newer = json.loads(ostiary("keys", "rotate", "--alg", "EdDSA", "--overlap", "0", "--json").out)
    states = {k["kid"]: k["state"] for k in json.loads(ostiary("keys", "list", "--json").out)}
    assert states == {es256["kid"]: "signing", eddsa["kid"]: "retired", newer["kid"]: "signing"}
    rows = stored_keys(database_url)
    assert all(row.private_jwe.count(".") == 4 for row in rows)  # private parts stay a JWE
    assert all("d" not in row.public_jwk for row in rows)


def test_rotate_with_the_wrong_key_secret_changes_nothing(
    ostiary: Run, database_url: str, tmp_path: Path
) -> None:
    assert ostiary("keys", "rotate").status == 0
    assert stat.S_IMODE((tmp_path / "ostiary.key").stat().st_mode) == 0o600
    (tmp_path / "ostiary.key").write_text(secrets.token_urlsafe(32), encoding="utf-8")
    assert_one_line_error(ostiary("keys", "rotate"), "does not decrypt")
    assert len(stored_keys(database_url)) == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--overlap", "soon"], "is not a duration"),
        (["--alg", "HS256"], "invalid choice"),
        (["--alg", "none"], "invalid choice"),
    ],
    ids=["overlap-text", "alg-hmac", "alg-none"],
)
def test_rotate_usage_errors(ostiary: Run, args: list[str], fragment: str) -> None:
    result = ostiary("keys", "rotate", *args)
    assert result.status == 2
    assert fragment in result.err


def test_negative_overlap_is_refused(ostiary: Run, database_url: str) -> None:
    assert_one_line_error(ostiary("keys", "rotate", "--overlap=-1h"), "must not be negative")


# -- settings, database, migrate -----------------------------------------------------------


def test_read_commands_on_a_missing_database_say_migrate(ostiary: Run, tmp_path: Path) -> None:
    for args in (("clients", "list"), ("users", "list"), ("keys", "list")):
        assert_one_line_error(ostiary(*args), "ostiary migrate")
    assert not (tmp_path / "ostiary.db").exists()


def test_migrate_twice_on_a_new_database(
    ostiary: Run, postgres: PostgresDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.create()
    monkeypatch.setenv("OSTIARY_DATABASE_URL", url)
    for _ in range(2):
        result = ostiary("migrate")
        assert (result.status, result.out) == (0, f"database {url}: schema up to date\n")
    assert stored_clients(url) == []


def test_migrate_creates_the_sqlite_file(ostiary: Run, tmp_path: Path) -> None:
    result = ostiary("migrate")
    assert (result.status, result.out) == (0, "database sqlite:///ostiary.db: schema up to date\n")
    assert stored_clients(f"sqlite:///{tmp_path / 'ostiary.db'}") == []


def test_config_file_names_the_database(ostiary: Run, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    config = tmp_path / "ostiary.toml"
    config.write_text('database_url = "sqlite:///elsewhere/auth.db"\n', encoding="utf-8")
    create_client(
        ostiary, "--config", str(config), "--name", "A", "--grant-types", "client_credentials"
    )
    assert not (tmp_path / "ostiary.db").exists()
    assert len(stored_clients("sqlite:///elsewhere/auth.db")) == 1
    listed = json.loads(ostiary("clients", "list", "--config", str(config), "--json").out)
    assert len(listed) == 1


@pytest.mark.parametrize(
    ("env", "config", "fragment"),
    [
        ({"OSTIARY_ISSUER": "http://auth.example"}, None, "must use https"),
        ({"OSTIARY_DATABASE_URL": "mysql://db/x"}, None, "mysql"),
        ({"OSTIARY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}, None, "database"),
        ({"OSTIARY_ACCESS_TOKEN_TTL": "soon"}, None, "OSTIARY_ACCESS_TOKEN_TTL"),
        ({}, "missing.toml", "cannot read the config file"),
        ({}, "bad.toml", "not valid TOML"),
        ({}, "unknown.toml", "unknown setting"),
    ],
    ids=[
        "http-issuer",
        "unknown-database",
        "unreachable",
        "bad-number",
        "no-file",
        "bad-toml",
        "unknown-key",
    ],
)
def test_bad_settings_are_one_line(
    ostiary: Run,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    env: dict[str, str],
    config: str | None,
    *,
    fragment: str,
) -> None:
    (tmp_path / "bad.toml").write_text("database_url = \n", encoding="utf-8")
    (tmp_path / "unknown.toml").write_text('databse_url = "sqlite:///x.db"\n', encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    extra = ["--config", config] if config else []
    for args in (
        ["clients", "create", "--name", "A", "--grant-types", "client_credentials"],
        ["users", "list"],
        ["migrate"],
        ["serve", "--port", "0"],
    ):
        assert_one_line_error(ostiary(*args, *extra), fragment)


def test_serve_refuses_a_port_in_use(ostiary: Run) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line_error(
            ostiary("serve", "--port", str(port)), f"cannot listen on 127.0.0.1:{port}"
        )


def test_serve_refuses_a_key_secret_that_does_not_open_the_keys(
    ostiary: Run, tmp_path: Path
) -> None:
    assert ostiary("keys", "rotate").status == 0
    (tmp_path / "ostiary.key").write_text(secrets.token_urlsafe(32), encoding="utf-8")
    assert_one_line_error(ostiary("serve", "--port", "0"), "does not decrypt")


@pytest.mark.parametrize("port", ["-1", "65536", "http", "80.5"])
def test_serve_port_must_be_a_port(ostiary: Run, port: str) -> None:
    result = ostiary("serve", "--port", port)
    assert result.status == 2
    assert "is not a port number" in result.err


SERVER_HELP = {
    "serve": "--port",
    "migrate": "lock",
    "clients": "create",
    "clients create": "--redirect-uris",
    "clients list": "--json",
    "clients show": "CLIENT_ID",
    "clients delete": "CLIENT_ID",
    "users": "create",
    "users create": "--password-stdin",
    "users list": "--json",
    "users delete": "USERNAME",
    "keys": "rotate",
    "keys list": "--json",
    "keys rotate": "--overlap",
}


@pytest.mark.parametrize("command", list(SERVER_HELP))
def test_every_server_command_has_help(ostiary: Run, command: str) -> None:
    result = ostiary(*command.split(), "--help")
    assert result.status == 0
    assert result.out.startswith(f"usage: ostiary {command}")
    assert SERVER_HELP[command] in result.out


def test_jwt_commands_do_not_load_the_server() -> None:
    """The parser is built on every run: `ostiary jwt decode` must not pay for the server."""
    code = (
        "import sys; from ostiary.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('sqlalchemy', 'starlette', 'pydantic', 'uvicorn', 'alembic')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


# -- a real server -------------------------------------------------------------------------


@dataclass
class Served:
    folder: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    first_line: str
    issuer: str

    def ostiary(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=self.env,
            timeout=120,
            check=False,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def _serve(base: Path, settings: dict[str, str]) -> Iterator[Served]:
    """`ostiary serve --port 0` in the empty folder `base/work`; stopped by PID at the end."""
    if not SCRIPT.exists():
        pytest.skip(f"the console script is not installed next to the interpreter ({SCRIPT})")
    folder = base / "work"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    env.update(HOME=str(folder), PYTHONUNBUFFERED="1", **settings)
    log_path = base / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", "0"],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        first_line, issuer = _wait_until_ready(process, log_path)
        yield Served(folder, env, process, log_path, first_line, issuer)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> tuple[str, str]:
    """Bounded polling: the first log line names the port; then the metadata must answer."""
    deadline = time.monotonic() + START_TIMEOUT
    first_line = ""
    while not first_line and time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if "\n" in text:
            first_line = text.split("\n", 1)[0]
        elif process.poll() is not None:
            raise AssertionError(f"ostiary serve exited {process.returncode}:\n{text}")
        else:
            time.sleep(0.05)
    assert "listening on http://127.0.0.1:" in first_line, log_path.read_text()
    port = int(first_line.split("listening on http://127.0.0.1:", 1)[1].split(";", 1)[0])
    issuer = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"ostiary serve exited:\n{log_path.read_text()}")
            try:
                if http.get(f"{issuer}/.well-known/oauth-authorization-server").status_code == 200:
                    return first_line, issuer
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"ostiary serve did not answer in time:\n{log_path.read_text()}")


def assert_stopped_cleanly(served: Served) -> None:
    """SIGTERM finished the requests in flight and the lifespan, then ended the process
    (uvicorn re-raises the signal it caught, so the status may say SIGTERM)."""
    assert served.process.returncode in (0, -signal.SIGTERM), served.log()
    log = served.log()
    assert "Application shutdown complete." in log
    assert "Traceback" not in log and "ERROR" not in log, log


def _token(issuer: str, client: dict[str, Any], scope: str = "read") -> httpx.Response:
    return httpx.post(
        f"{issuer}/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client["client_id"], client["client_secret"]),
        timeout=10,
    )


def _claims(issuer: str, token: str) -> dict[str, Any]:
    keys = JWKSet.from_dict(httpx.get(f"{issuer}/jwks.json", timeout=10).json())
    return jwt.decode(
        token,
        keys,
        algorithms=["ES256", "EdDSA", "RS256"],
        audience=issuer,
        issuer=issuer,
        typ="at+jwt",
    )


def _created(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_serve_in_an_empty_folder_and_change_it_while_it_runs(tmp_path: Path) -> None:
    with _serve(tmp_path, {}) as served:
        line = served.first_line
        assert f"listening on {served.issuer}; ostiary local server: issuer {served.issuer}" in line
        assert "database sqlite:///ostiary.db" in line and "local defaults" in line
        for name in ("ostiary.db", "ostiary.key"):
            assert stat.S_IMODE((served.folder / name).stat().st_mode) & 0o077 == 0, name
        metadata = httpx.get(f"{served.issuer}/.well-known/oauth-authorization-server").json()
        assert metadata["issuer"] == served.issuer

        client = _created(
            served.ostiary(
                *("clients", "create", "--name", "Job", "--grant-types", "client_credentials"),
                *("--scopes", "read write", "--json"),
            )
        )
        response = _token(served.issuer, client)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        claims = _claims(served.issuer, response.json()["access_token"])
        assert (claims["client_id"], claims["scope"]) == (client["client_id"], "read")

        user = served.ostiary(
            "users", "create", "--username", "ada", "--password-stdin", stdin="long enough\n"
        )
        assert user.returncode == 0, user.stderr

        deleted = served.ostiary("clients", "delete", client["client_id"])
        assert deleted.returncode == 0, deleted.stderr
        refused = _token(served.issuer, client)
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert_stopped_cleanly(served)
    # the keys made before the server listened are audited in its log too, after that line
    events = [
        json.loads(line)["event"] for line in served.log().splitlines() if line.startswith("{")
    ]
    assert events.count("key.created") == 3  # RS256, ES256 and EdDSA


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_keys_rotated_by_the_command_reach_the_running_server(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    settings = {"OSTIARY_KEY_REFRESH_INTERVAL": "0"}
    if backend == "postgresql":
        databases: PostgresDatabases = request.getfixturevalue("postgres")
        settings["OSTIARY_DATABASE_URL"] = databases.create()
    with _serve(tmp_path, settings) as served:
        shown = settings.get("OSTIARY_DATABASE_URL", "sqlite:///ostiary.db")
        assert f"database {shown}," in served.first_line
        client = _created(
            served.ostiary(
                *("clients", "create", "--name", "Job", "--grant-types", "client_credentials"),
                *("--scopes", "read", "--json"),
            )
        )
        before = _token(served.issuer, client).json()["access_token"]
        old_kid = jwt.unverified_header(before)["kid"]

        others = {k["kid"] for k in httpx.get(f"{served.issuer}/jwks.json").json()["keys"]}
        others.remove(old_kid)  # the RS256 and EdDSA keys of ID tokens, not rotated here
        planned = _created(served.ostiary("keys", "rotate", "--json"))
        published = httpx.get(f"{served.issuer}/jwks.json").json()["keys"]
        assert {k["kid"] for k in published} == {old_kid, planned["kid"], *others}
        after_planned = _token(served.issuer, client).json()["access_token"]
        assert jwt.unverified_header(after_planned)["kid"] == old_kid  # not signing yet

        urgent = _created(served.ostiary("keys", "rotate", "--overlap", "0", "--json"))
        now_signed = _token(served.issuer, client).json()["access_token"]
        assert jwt.unverified_header(now_signed)["kid"] == urgent["kid"]
        for token in (before, now_signed):  # old tokens still verify: their key stays published
            assert _claims(served.issuer, token)["client_id"] == client["client_id"]
    assert_stopped_cleanly(served)
