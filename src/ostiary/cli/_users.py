"""The handlers of `ostiary users`, loaded only when one runs (`users_commands.py`)."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import secrets
import sys
import time
import unicodedata
from typing import Any, Final

from ostiary.jose.jwk import JWK, JWKSet
from ostiary.oauth.claims import BOOLEAN_CLAIMS, check_claim
from ostiary.oauth.consent import ConsentRevocation, revoke_consent
from ostiary.oauth.context import Context
from ostiary.oauth.models import AuditEvent, Consent, User
from ostiary.oauth.store import Store
from ostiary.server.passwords import MAX_PASSWORD_LENGTH, Argon2PasswordHasher
from ostiary.server.routes_login import MAX_USERNAME_LENGTH

from ._console import fail, printable, read_input, render_json
from ._durations import utc_datetime
from ._server_settings import load_settings, run_with_store

_CLI: Final = {"source": "cli"}  # audit detail: the change came from the command line
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
        await store.audit.record(
            AuditEvent(event="user.created", at=user.created_at, user_id=user.user_id, detail=_CLI)
        )

    run_with_store(args, add, migrate_first=True)
    if args.json:
        print(render_json(_describe(user)))
    else:
        print(f"created user {printable(username)} ({user.user_id})")
    return 0


def _apply_claims(claims: dict[str, Any], assignments: list[str], removals: list[str]) -> None:
    for name in removals:
        top, _, field = name.partition(".")
        if field and isinstance(claims.get(top), dict):
            claims[top].pop(field, None)
            if not claims[top]:
                del claims[top]
        else:
            claims.pop(name, None)
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        if not equals:
            fail(f"--claim takes NAME=VALUE, not {printable(assignment)!r}")
        value: Any = text
        if name in BOOLEAN_CLAIMS:
            if text not in ("true", "false"):
                fail(f"{name} takes true or false")
            value = text == "true"
        top, _, field = name.partition(".")
        if field:
            if top != "address":
                fail(f"{printable(name)}: only address has fields")
            value = {**claims.get("address", {}), field: text}
        try:
            claims[top] = check_claim(top, value)
        except ValueError as exc:
            fail(str(exc))


def set_claims(args: argparse.Namespace) -> int:
    username = unicodedata.normalize("NFC", args.username)
    if not args.claim and not args.unset and not args.json:
        fail("nothing to change: pass --claim NAME=VALUE or --unset NAME (or --json to show)")

    async def change(store: Store) -> User:
        user = await store.users.by_username(username)
        if user is None:
            fail(f"no user named {username!r}")
        if not args.claim and not args.unset:
            return user
        claims = dict(user.claims)
        _apply_claims(claims, args.claim, args.unset)
        claims.pop("updated_at", None)
        if claims:
            claims["updated_at"] = int(time.time())  # OpenID Connect Core §5.1
        changed = dataclasses.replace(user, claims=claims)
        if not await store.users.update(changed):
            fail(f"no user named {username!r}")
        return changed

    user = run_with_store(args, change, migrate_first=True)
    if args.json:
        print(render_json(dict(user.claims)))
    else:
        names = ", ".join(sorted(user.claims)) or "none"
        print(f"claims of {printable(user.username)}: {names}")
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
        if user is None:
            return False
        # Back-Channel Logout 1.0: the clients of each of their sessions hear of it; the
        # logout tokens stay queued for a running server after the user is gone
        await store.sessions.end_for_user(user.user_id, now=int(time.time()), reason="user deleted")
        if not await store.users.delete(user.user_id):
            return False
        await store.audit.record(
            AuditEvent(event="user.deleted", at=int(time.time()), user_id=user.user_id, detail=_CLI)
        )
        return True

    if not run_with_store(args, delete):
        fail(f"no user named {username!r}")
    print(f"deleted user {printable(username)}")
    return 0


async def _user_named(store: Store, username: str) -> User:
    user = await store.users.by_username(unicodedata.normalize("NFC", username))
    if user is None:
        fail(f"no user named {username!r}")
    return user


def list_consents(args: argparse.Namespace) -> int:
    async def load(store: Store) -> list[tuple[Consent, str | None]]:
        user = await _user_named(store, args.username)
        found = []
        for consent in await store.consents.list_for_user(user.user_id):
            client = await store.clients.get(consent.client_id)
            found.append((consent, None if client is None else client.name))
        return found

    consents = run_with_store(args, load)
    if args.json:
        print(render_json([_describe_consent(c, name) for c, name in consents]))
        return 0
    if not consents:
        print(f"{printable(args.username)} has approved no client")
        return 0
    width = max(len(consent.client_id) for consent, _ in consents)
    for consent, name in consents:
        scope = " ".join(sorted(consent.scope)) or "(no scope)"
        if consent.claims:  # approved one by one (the claims request parameter)
            scope += "  claims: " + " ".join(sorted(consent.claims))
        shown = f"{consent.client_id:<{width}}  {_date(consent.granted_at)}  {scope}"
        print(printable(shown if name is None else f"{shown}  ({name})"))
    return 0


def _describe_consent(consent: Consent, client_name: str | None) -> dict[str, Any]:
    return {
        "client_id": consent.client_id,
        "client_name": client_name,
        "scope": " ".join(sorted(consent.scope)),
        "claims": " ".join(sorted(consent.claims)),
        "granted_at": consent.granted_at,
    }


def _date(moment: int) -> str:
    shown = utc_datetime(moment)
    return shown.strftime("%Y-%m-%d %H:%M UTC") if shown is not None else str(moment)


def revoke_client_consent(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    client_id: str = args.client_id

    async def withdraw(store: Store) -> ConsentRevocation:
        user = await _user_named(store, args.username)
        ctx = Context(
            config=settings.server_config(),
            store=store,
            keys=_NoSigningKeys(),
            passwords=Argon2PasswordHasher(),
        )
        return await revoke_consent(user.user_id, client_id, ctx=ctx)

    revocation = run_with_store(args, withdraw, settings=settings)
    who = f"{printable(args.username)} at client {printable(client_id)}"
    if not revocation.consent_revoked and not revocation.revoked_tokens:
        fail(f"nothing to revoke: no consent and no tokens of {who}")
    tokens = revocation.revoked_tokens
    what = "revoked the consent" if revocation.consent_revoked else "no remembered consent"
    print(f"{what} of {who}; {tokens} token{'' if tokens == 1 else 's'} revoked")
    return 0


class _NoSigningKeys:
    """The key ring of a command that signs nothing: withdrawing a client's access must not
    need the key-encryption secret, which an operator acting in a hurry may not hold."""

    async def signing_key(self, alg: str | None = None) -> JWK:
        fail("this command does not sign")

    async def published(self) -> JWKSet:
        fail("this command does not sign")


def sign_out(args: argparse.Namespace) -> int:
    username = unicodedata.normalize("NFC", args.username)

    async def end(store: Store) -> int:
        user = await store.users.by_username(username)
        if user is None:
            fail(f"no user named {username!r}")
        now = int(time.time())
        ended = await store.sessions.end_for_user(user.user_id, now=now)
        await store.audit.record(
            AuditEvent(
                event="session.ended",
                at=now,
                user_id=user.user_id,
                detail={"via": "cli", "sessions": ended},
            )
        )
        return ended

    ended = run_with_store(args, end)
    print(f"ended {ended} session{'' if ended == 1 else 's'} of {printable(username)}")
    return 0
