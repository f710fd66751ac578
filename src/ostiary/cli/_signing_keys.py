"""The handlers of `ostiary keys list | rotate`, loaded only when one runs."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ostiary.oauth.models import SigningKey
from ostiary.oauth.store import Store
from ostiary.server.key_secret import load_key_secret
from ostiary.server.keyring import ensure_signing_key, is_published, rotate, select_signing_key
from ostiary.server.settings import SettingsError

from ._console import fail, render_json
from ._durations import describe_span, utc_datetime
from ._server_settings import load_settings, run_with_store


def key_state(row: SigningKey, rows: list[SigningKey], now: int) -> str:
    """What a key does at `now`: next, signing (for its algorithm), retired (published) or
    expired."""
    current = select_signing_key(rows, now, row.alg)
    if current is not None and current.kid == row.kid:
        return "signing"
    if not is_published(row, now):
        return "expired"
    if row.activates_at > now and row.retires_at is None:
        return "next"
    return "retired"


def _describe(row: SigningKey, rows: list[SigningKey], now: int) -> dict[str, Any]:
    return {
        "kid": row.kid,
        "alg": row.alg,
        "state": key_state(row, rows, now),
        "created_at": row.created_at,
        "activates_at": row.activates_at,
        "retires_at": row.retires_at,
        "expires_at": row.expires_at,
        "public_jwk": dict(row.public_jwk),
    }


def _when(moment: int | None, now: int) -> str:
    if moment is None:
        return "-"
    shown = utc_datetime(moment)
    date = shown.strftime("%Y-%m-%d %H:%M UTC") if shown is not None else str(moment)
    if moment == now:
        return f"{date} (now)"
    span = describe_span(moment - now)
    return f"{date} ({'in ' + span if moment > now else span + ' ago'})"


def list_keys(args: argparse.Namespace) -> int:
    async def load(store: Store) -> list[SigningKey]:
        return list(await store.keys.list())

    rows = run_with_store(args, load)
    now = int(time.time())
    if args.json:
        print(render_json([_describe(row, rows, now) for row in rows]))
        return 0
    if not rows:
        print("no signing keys yet: `ostiary serve` creates the first one when it starts")
        return 0
    for row in rows:
        state = key_state(row, rows, now)
        print(f"{row.kid}  {row.alg:<6} {state}")
        print(f"    signs from {_when(row.activates_at, now)}")
        if row.retires_at is not None:
            print(f"    retires    {_when(row.retires_at, now)}")
        if row.expires_at is not None:
            print(f"    published until {_when(row.expires_at, now)}")
    return 0


def rotate_key(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    alg: str = args.alg or settings.signing_alg
    overlap: int = settings.key_rotation_overlap if args.overlap is None else args.overlap
    if overlap < 0:
        fail("--overlap must not be negative")
    try:
        # the same secret the server reads (and, on a first run, would create): OSTIARY_KEY_FILE
        secret = load_key_secret(settings.key_path, create=settings.key_file is None)
    except SettingsError as exc:
        fail(str(exc))
    now = int(time.time())

    async def rotate_keys(store: Store) -> tuple[SigningKey, list[SigningKey]]:
        if not await store.keys.list():
            first = await ensure_signing_key(store, secret, alg, now)
            return first, list(await store.keys.list())
        # refuse now, not at the next start, if this secret cannot open the current key
        await ensure_signing_key(store, secret, settings.signing_alg, now)
        new = await rotate(
            store, secret, alg, now, overlap, access_token_ttl=settings.access_token_ttl
        )
        return new, list(await store.keys.list())

    new, rows = run_with_store(args, rotate_keys, migrate_first=True, settings=settings)
    if args.json:
        print(render_json(_describe(new, rows, now)))
        return 0
    first = len(rows) == 1
    print(f"{'first' if first else 'new'} signing key {new.kid} ({new.alg}), published now")
    print(f"    signs from {_when(new.activates_at, now)}")
    return 0
