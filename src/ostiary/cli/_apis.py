"""The handlers of `ostiary apis`, loaded only when one runs (`apis_commands.py`)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ostiary.oauth.errors import InvalidTarget
from ostiary.oauth.models import Api, AuditEvent
from ostiary.oauth.resources import parse_resources
from ostiary.oauth.store import Store

from ._console import fail, printable, render_json
from ._registration import check_scopes
from ._server_settings import run_with_store


def create(args: argparse.Namespace) -> int:
    identifier = _check_identifier(args.identifier)
    api = Api(identifier=identifier, scopes=check_scopes(args.scopes), created_at=int(time.time()))

    async def add(store: Store) -> bool:
        try:
            await store.apis.add(api)
        except ValueError:
            return False
        detail = {"source": "cli", "identifier": api.identifier, "scope": _describe(api)["scope"]}
        await store.audit.record(AuditEvent(event="api.created", at=api.created_at, detail=detail))
        return True

    if not run_with_store(args, add, migrate_first=True):
        fail(f"an API {identifier!r} exists already: delete it first to change it")
    if args.json:
        print(render_json(_describe(api)))
        return 0
    print(f"identifier: {api.identifier}")
    print(f"scopes:     {' '.join(sorted(api.scopes))}")
    return 0


def _check_identifier(text: str) -> str:
    try:
        (identifier,) = parse_resources([text])
    except InvalidTarget as exc:
        fail(f"--identifier: {exc.description} (RFC 8707), e.g. https://notes.example")
    return identifier


def _describe(api: Api) -> dict[str, Any]:
    return {
        "identifier": api.identifier,
        "scope": " ".join(sorted(api.scopes)),
        "created_at": api.created_at,
    }


def list_apis(args: argparse.Namespace) -> int:
    async def load(store: Store) -> list[Api]:
        return list(await store.apis.list())

    apis = run_with_store(args, load)
    if args.json:
        print(render_json([_describe(api) for api in apis]))
        return 0
    if not apis:
        print("no APIs yet: ostiary apis create --help")
        return 0
    width = max(len(api.identifier) for api in apis)
    for api in apis:
        print(f"{printable(api.identifier):<{width}}  {' '.join(sorted(api.scopes))}")
    return 0


def delete(args: argparse.Namespace) -> int:
    identifier: str = args.identifier

    async def remove(store: Store) -> bool:
        if not await store.apis.delete(identifier):
            return False
        detail = {"source": "cli", "identifier": identifier}
        await store.audit.record(
            AuditEvent(event="api.deleted", at=int(time.time()), detail=detail)
        )
        return True

    if not run_with_store(args, remove):
        fail(f"no API {identifier!r}")
    print(f"deleted API {printable(identifier)}")
    return 0
