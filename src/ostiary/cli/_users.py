"""The handlers of `ostiary users`, loaded only when one runs (`users_commands.py`)."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
import time
import unicodedata
from typing import Any, Final

from ostiary.oauth.models import User
from ostiary.oauth.store import Store
from ostiary.server.passwords import MAX_PASSWORD_LENGTH, Argon2PasswordHasher
from ostiary.server.routes_login import MAX_USERNAME_LENGTH

from ._console import fail, printable, read_input, render_json
from ._server_settings import run_with_store

MIN_PASSWORD_LENGTH: Final = 8  # NIST SP 800-63B §3.1.1.2: at least 8 characters


def check_username(username: str) -> str:
    """The username as stored: NFC, 1 to 256 visible characters, no surrounding spaces."""
    # NFC: the login form sends what the browser composed, and the store compares exactly.
    name = unicodedata.normalize("NFC", username)
    if not name or len(name) > MAX_USERNAME_LENGTH:
        fail(f"the username must be 1 to {MAX_USERNAME_LENGTH} characters")
    if name != name.strip() or printable(name) != name:
        fail("the username must not start or end with a space or hold invisible characters")
    return name


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        data = read_input("-", "password", limit=MAX_PASSWORD_LENGTH * 4 + 2)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            fail("the password on stdin is not UTF-8 text")
        return text.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        fail("no terminal to ask for the password: pass --password-stdin and pipe it in")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        fail("the two passwords differ")
    return first


def _check_password(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        fail(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        fail(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if password.casefold() == username.casefold():
        fail("the password must not be the username")


def create(args: argparse.Namespace) -> int:
    username = check_username(args.username)
    password = _read_password(args)
    _check_password(password, username)
    user = User(
        user_id="u_" + secrets.token_urlsafe(16),
        username=username,
        password_hash=Argon2PasswordHasher().hash(password),
        created_at=int(time.time()),
    )

    async def add(store: Store) -> None:
        folded = username.casefold()
        # "Alice" beside "alice" invites mistakes and impersonation on the consent page
        if any(other.username.casefold() == folded for other in await store.users.list()):
            fail(f"a user named {username!r} (ignoring case) exists already")
        try:
            await store.users.add(user)
        except ValueError:  # another command added the same name in between
            fail(f"a user named {username!r} exists already")

    run_with_store(args, add, migrate_first=True)
    if args.json:
        print(render_json(_describe(user)))
    else:
        print(f"created user {printable(username)} ({user.user_id})")
    return 0


def _describe(user: User) -> dict[str, Any]:
    return {"user_id": user.user_id, "username": user.username, "created_at": user.created_at}


def list_users(args: argparse.Namespace) -> int:
    async def load(store: Store) -> list[User]:
        return list(await store.users.list())

    users = run_with_store(args, load)
    if args.json:
        print(render_json([_describe(user) for user in users]))
        return 0
    if not users:
        print("no users yet: ostiary users create --help")
    for user in users:
        print(f"{user.user_id}  {printable(user.username)}")
    return 0


def delete(args: argparse.Namespace) -> int:
    username = unicodedata.normalize("NFC", args.username)

    async def delete(store: Store) -> bool:
        user = await store.users.by_username(username)
        return user is not None and await store.users.delete(user.user_id)

    if not run_with_store(args, delete):
        fail(f"no user named {username!r}")
    print(f"deleted user {printable(username)}")
    return 0
