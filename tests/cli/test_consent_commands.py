"""`ostiary users consents | revoke-consent` on the server's database (SQLite and PostgreSQL).

What the server would have stored after a consent page and a token request is written
straight into the store; the commands then run in-process, and the store is read back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_databases import in_store
from cli_run import NOW, Run, assert_one_line_error

from ostiary.oauth.models import (
    AuditEvent,
    Consent,
    IssuedAccessToken,
    RefreshToken,
)
from ostiary.oauth.store import Store

pytestmark = pytest.mark.usefixtures("working_folder")

FAR = NOW + 10 * 365 * 86_400  # tokens that outlive the test whatever the wall clock says


def create_user(ostiary: Run, username: str) -> str:
    args = ("users", "create", "--username", username, "--password-stdin", "--json")
    result = ostiary(*args, stdin=b"long enough\n")
    assert result.status == 0, result.err
    user_id: str = json.loads(result.out)["user_id"]
    return user_id


def create_client(ostiary: Run, name: str) -> str:
    result = ostiary(
        *("clients", "create", "--name", name, "--json", "--scopes", "openid read write"),
        *("--grant-types", "authorization_code,refresh_token"),
        *("--redirect-uris", "https://app.example/cb"),
    )
    assert result.status == 0, result.err
    client_id: str = json.loads(result.out)["client_id"]
    return client_id


def issue(
    url: str,
    user_id: str,
    client_id: str,
    grant_id: str,
    *,
    scope: frozenset[str] | None = frozenset({"openid", "read"}),
    granted_at: int = NOW,
    claims: frozenset[str] = frozenset(),
) -> None:
    """A remembered consent (unless `scope=None`), one refresh and one access token of a grant."""

    async def put(store: Store) -> None:
        if scope is not None:
            await store.consents.put(
                Consent(
                    user_id=user_id,
                    client_id=client_id,
                    scope=scope,
                    granted_at=granted_at,
                    claims=claims,
                )
            )
        await store.tokens.add_refresh(
            RefreshToken(
                token_hash=f"rt-{grant_id}",
                grant_id=grant_id,
                client_id=client_id,
                user_id=user_id,
                scope=frozenset({"read"}),
                created_at=NOW,
                expires_at=FAR,
            )
        )
        await store.tokens.add_access(
            IssuedAccessToken(
                token_id=f"jti-{grant_id}",
                format="jwt",
                client_id=client_id,
                grant_id=grant_id,
                subject=user_id,
                scope=frozenset({"read"}),
                audience=(),
                issued_at=NOW,
                expires_at=FAR,
            )
        )

    in_store(url, put)


def is_live(url: str, grant_id: str) -> tuple[bool, bool]:
    """(refresh token live, access token active at introspection) of a grant."""

    async def look(store: Store) -> tuple[bool, bool]:
        refresh = await store.tokens.find_refresh(f"rt-{grant_id}", now=NOW)
        revoked = await store.tokens.is_revoked(f"jti-{grant_id}", grant_id)
        return refresh is not None, not revoked

    return in_store(url, look)


def consents_of(url: str, user_id: str) -> list[Consent]:
    async def load(store: Store) -> list[Consent]:
        return list(await store.consents.list_for_user(user_id))

    return in_store(url, load)


def audit_events(url: str) -> list[AuditEvent]:
    async def load(store: Store) -> list[AuditEvent]:
        return list(await store.audit.tail(100))

    return in_store(url, load)


# -- consents ----------------------------------------------------------------------------------


def test_consents_listed_with_scopes_and_dates(ostiary: Run, database_url: str) -> None:
    alice = create_user(ostiary, "alice")
    notes = create_client(ostiary, "Notes")
    photos = create_client(ostiary, "Photos")
    issue(database_url, alice, notes, "g1", scope=frozenset({"read", "openid"}))
    issue(
        database_url,
        alice,
        photos,
        "g2",
        scope=frozenset(),
        granted_at=NOW + 60,
        claims=frozenset({"phone_number", "email"}),
    )

    listed = json.loads(ostiary("users", "consents", "--username", "alice", "--json").out)
    expected: list[dict[str, Any]] = [
        {
            "client_id": notes,
            "client_name": "Notes",
            "scope": "openid read",
            "claims": "",
            "granted_at": NOW,
        },
        {
            "client_id": photos,
            "client_name": "Photos",
            "scope": "",
            "claims": "email phone_number",
            "granted_at": NOW + 60,
        },
    ]
    assert listed == sorted(expected, key=lambda c: str(c["client_id"]))

    human = ostiary("users", "consents", "--username", "alice")
    assert human.status == 0
    lines = human.out.splitlines()
    assert len(lines) == 2
    notes_line = next(line for line in lines if line.startswith(notes))
    assert notes_line.split() == [notes, "2027-01-15", "08:00", "UTC", "openid", "read", "(Notes)"]
    photos_line = next(line for line in lines if line.startswith(photos))
    assert "2027-01-15 08:01 UTC  (no scope)  claims: email phone_number  (Photos)" in photos_line


def test_no_consents_yet(ostiary: Run, database_url: str) -> None:
    create_user(ostiary, "alice")
    assert ostiary("users", "consents", "--username", "alice").out == (
        "alice has approved no client\n"
    )
    assert json.loads(ostiary("users", "consents", "--username", "alice", "--json").out) == []


def test_consents_of_one_user_only(ostiary: Run, database_url: str) -> None:
    alice, bob = create_user(ostiary, "alice"), create_user(ostiary, "bob")
    notes = create_client(ostiary, "Notes")
    issue(database_url, bob, notes, "g1")
    assert json.loads(ostiary("users", "consents", "--username", "alice", "--json").out) == []
    assert len(json.loads(ostiary("users", "consents", "--username", "bob", "--json").out)) == 1
    assert consents_of(database_url, alice) == []


# -- revoke-consent ----------------------------------------------------------------------------


def test_revoke_consent_revokes_the_clients_tokens(
    ostiary: Run, database_url: str, working_folder: Path
) -> None:
    alice, bob = create_user(ostiary, "alice"), create_user(ostiary, "bob")
    notes, photos = create_client(ostiary, "Notes"), create_client(ostiary, "Photos")
    issue(database_url, alice, notes, "g-alice-notes")
    issue(database_url, alice, photos, "g-alice-photos")
    issue(database_url, bob, notes, "g-bob-notes")

    result = ostiary("users", "revoke-consent", "--username", "alice", "--client-id", notes)

    assert result.status == 0
    [line] = result.err.splitlines()  # the audit event, as the server logs it: one JSON line
    assert json.loads(line)["event"] == "consent.revoked"
    assert result.out == f"revoked the consent of alice at client {notes}; 2 tokens revoked\n"
    assert is_live(database_url, "g-alice-notes") == (False, False)
    assert is_live(database_url, "g-alice-photos") == (True, True)
    assert is_live(database_url, "g-bob-notes") == (True, True)
    assert [c.client_id for c in consents_of(database_url, alice)] == [photos]
    assert len(consents_of(database_url, bob)) == 1
    event = audit_events(database_url)[-1]
    assert (event.event, event.user_id, event.client_id, dict(event.detail)) == (
        "consent.revoked",
        alice,
        notes,
        {"consent_revoked": True, "revoked_tokens": 2},
    )
    # revoking signs nothing: it needs no key-encryption secret, and makes none
    assert not (working_folder / "ostiary.key").exists()


def test_revoke_tokens_without_a_remembered_consent(ostiary: Run, database_url: str) -> None:
    """A one-time approval is not remembered, but the client still holds tokens for the user."""
    alice = create_user(ostiary, "alice")
    notes = create_client(ostiary, "Notes")
    issue(database_url, alice, notes, "g1", scope=None)
    result = ostiary("users", "revoke-consent", "--username", "alice", "--client-id", notes)
    assert result.out == f"no remembered consent of alice at client {notes}; 2 tokens revoked\n"
    assert is_live(database_url, "g1") == (False, False)


def test_revoking_twice_has_nothing_left_to_revoke(ostiary: Run, database_url: str) -> None:
    alice = create_user(ostiary, "alice")
    notes = create_client(ostiary, "Notes")
    issue(database_url, alice, notes, "g1")
    args = ("users", "revoke-consent", "--username", "alice", "--client-id", notes)
    assert ostiary(*args).status == 0
    assert_one_line_error(ostiary(*args), "nothing to revoke: no consent and no tokens of alice")
    before = len(audit_events(database_url))
    assert_one_line_error(ostiary(*args), "nothing to revoke")
    assert len(audit_events(database_url)) == before  # nothing happened, nothing audited


def test_revoke_for_an_unknown_client_changes_nothing(ostiary: Run, database_url: str) -> None:
    alice = create_user(ostiary, "alice")
    notes = create_client(ostiary, "Notes")
    issue(database_url, alice, notes, "g1")
    result = ostiary("users", "revoke-consent", "--username", "alice", "--client-id", "c_nope")
    assert_one_line_error(result, "at client c_nope")
    assert is_live(database_url, "g1") == (True, True)
    assert len(consents_of(database_url, alice)) == 1


BAD_NAMES = {
    "unknown": ("mallory", "no user named 'mallory'"),
    "nul": ("al\x00ice", "no user named 'al\\x00ice'"),
    "escape": ("\x1b[2Jalice", "no user named '\\x1b[2Jalice'"),
    "surrogate": ("al\ud800ice", "no user named 'al\\ud800ice'"),
    "oversized": ("a" * 100_000, "no user named 'aaaa"),
    "empty": ("", "no user named ''"),
}


@pytest.mark.parametrize("case", list(BAD_NAMES))
def test_bad_username_is_one_line_error(ostiary: Run, database_url: str, case: str) -> None:
    create_user(ostiary, "alice")
    notes = create_client(ostiary, "Notes")
    username, fragment = BAD_NAMES[case]
    for args in (
        ("users", "consents", "--username", username),
        ("users", "revoke-consent", "--username", username, "--client-id", notes),
    ):
        result = ostiary(*args)
        assert_one_line_error(result, fragment)
        assert "\x1b" not in result.err


@pytest.mark.parametrize("client_id", ["c\x00x", "c\ud800x", "\x1b[31mc", "c" * 100_000])
def test_bad_client_id_is_one_line_error(ostiary: Run, database_url: str, client_id: str) -> None:
    alice = create_user(ostiary, "alice")
    notes = create_client(ostiary, "Notes")
    issue(database_url, alice, notes, "g1")
    result = ostiary("users", "revoke-consent", "--username", "alice", "--client-id", client_id)
    assert_one_line_error(result, "nothing to revoke")
    assert "\x1b" not in result.err
    assert is_live(database_url, "g1") == (True, True)


@pytest.mark.parametrize(
    "args",
    [
        ["users", "consents"],
        ["users", "revoke-consent", "--username", "alice"],
        ["users", "revoke-consent", "--client-id", "c_x"],
        ["users", "consents", "--username", "alice", "--json=yes"],
    ],
    ids=["consents-no-username", "no-client-id", "no-username", "json-takes-no-value"],
)
def test_usage_errors(ostiary: Run, args: list[str]) -> None:
    result = ostiary(*args)
    assert result.status == 2
    assert result.out == ""
    assert "Traceback" not in result.err


def test_commands_on_a_missing_database_say_migrate(ostiary: Run, working_folder: Path) -> None:
    for args in (
        ("users", "consents", "--username", "alice"),
        ("users", "revoke-consent", "--username", "alice", "--client-id", "c_x"),
    ):
        assert_one_line_error(ostiary(*args), "ostiary migrate")
    assert not (working_folder / "ostiary.db").exists()


def test_help_names_both_commands(ostiary: Run) -> None:
    result = ostiary("users", "--help")
    assert result.status == 0
    assert "consents" in result.out
    assert "revoke-consent" in result.out
