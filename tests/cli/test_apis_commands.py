"""`ostiary apis create | list | delete`: the RFC 8707 resources, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from cli_databases import in_store
from cli_run import Run, assert_one_line_error

from ostiary.oauth.models import Api, AuditEvent
from ostiary.oauth.store import Store

pytestmark = pytest.mark.usefixtures("working_folder")

NOTES = "https://notes.example"


def stored_apis(url: str) -> list[Api]:
    async def load(store: Store) -> list[Api]:
        return list(await store.apis.list())

    return in_store(url, load)


def audit_events(url: str) -> list[AuditEvent]:
    async def load(store: Store) -> list[AuditEvent]:
        return list(await store.audit.tail(100))

    return in_store(url, load)


def test_create_list_delete(ostiary: Run, database_url: str) -> None:
    created = ostiary(
        "apis", "create", "--identifier", NOTES, "--scopes", "notes:write  notes:read", "--json"
    )
    assert created.status == 0, created.err
    view = json.loads(created.out)
    assert (view["identifier"], view["scope"]) == (NOTES, "notes:read notes:write")
    (api,) = stored_apis(database_url)
    assert (api.identifier, api.scopes) == (NOTES, {"notes:read", "notes:write"})

    human = ostiary("apis", "create", "--identifier", "urn:example:ledger", "--scopes", "x")
    assert human.status == 0, human.err
    assert "urn:example:ledger" in human.out
    listed = json.loads(ostiary("apis", "list", "--json").out)
    assert [item["identifier"] for item in listed] == [NOTES, "urn:example:ledger"]
    assert NOTES in ostiary("apis", "list").out

    deleted = ostiary("apis", "delete", NOTES)
    assert (deleted.status, deleted.out) == (0, f"deleted API {NOTES}\n")
    events = [e for e in audit_events(database_url) if e.event.startswith("api.")]
    assert [(e.event, e.detail["identifier"]) for e in events] == [
        ("api.created", NOTES),
        ("api.created", "urn:example:ledger"),
        ("api.deleted", NOTES),
    ]
    assert [a.identifier for a in stored_apis(database_url)] == ["urn:example:ledger"]
    assert_one_line_error(ostiary("apis", "delete", NOTES), "no API")


def test_list_when_empty(ostiary: Run, database_url: str) -> None:
    assert ostiary("migrate").status == 0
    empty = ostiary("apis", "list")
    assert (empty.status, empty.out) == (0, "no APIs yet: ostiary apis create --help\n")
    assert json.loads(ostiary("apis", "list", "--json").out) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(("--identifier", "notes.example"), "absolute URI", id="relative"),
        pytest.param(("--identifier", NOTES + "#x"), "fragment", id="fragment"),
        pytest.param(("--identifier", "https://x/" + "a" * 600), "too long", id="oversized"),
        pytest.param(("--identifier", NOTES, "--scopes", 'a "b"'), "--scopes", id="bad-scope"),
    ],
)
def test_bad_input_refused_and_nothing_stored(
    ostiary: Run, database_url: str, args: tuple[str, ...], fragment: str
) -> None:
    assert ostiary("migrate").status == 0
    assert_one_line_error(ostiary("apis", "create", *args), fragment)
    assert stored_apis(database_url) == []


def test_identifier_taken_twice_refused(ostiary: Run, database_url: str) -> None:
    assert ostiary("apis", "create", "--identifier", NOTES, "--scopes", "a").status == 0
    assert_one_line_error(
        ostiary("apis", "create", "--identifier", NOTES, "--scopes", "b"), "exists already"
    )
    (api,) = stored_apis(database_url)
    assert api.scopes == {"a"}
