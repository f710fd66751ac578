"""Property tests: whatever the core may store comes back equal, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_databases import copy_sqlite, truncate

from ostiary.oauth.models import (
    AUTH_METHODS,
    GRANT_TYPES,
    AuditEvent,
    AuthorizationCode,
    Client,
    IssuedAccessToken,
    RefreshToken,
    User,
)
from ostiary.store import SqlStore, open_store

# RFC 6749 §3.3 NQCHAR: %x21 / %x23-5B / %x5D-7E
NQCHAR = "".join(c for c in string.printable[:94] if c not in '"\\')
# Any text a database holds: no NUL, no lone surrogates.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)
SCOPES = st.frozensets(st.text(alphabet=NQCHAR, min_size=1, max_size=12), max_size=5)
TIMES = st.integers(min_value=0, max_value=2**62)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(params=["sqlite", "postgresql"])
def running(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[asyncio.Runner, SqlStore]]:
    """A store on its own event loop, kept open across hypothesis examples."""
    if request.param == "sqlite":
        url = copy_sqlite(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        url = request.getfixturevalue("postgres_session_url")
        asyncio.run(truncate(url))
    with asyncio.Runner() as runner:
        store = runner.run(open_store(url))
        try:
            runner.run(store.clients.add(Client(client_id="c1", name="c", auth_method="none")))
            runner.run(store.users.add(User(user_id="u1", username="u", password_hash="h")))
            yield runner, store
        finally:
            runner.run(store.close())


CLIENTS = st.builds(
    Client,
    client_id=TEXT.filter(lambda s: s != "c1"),
    name=TEXT,
    auth_method=st.sampled_from(sorted(AUTH_METHODS)),
    secret_hash=st.none() | TEXT,
    redirect_uris=st.lists(TEXT, max_size=4).map(tuple),
    grant_types=st.frozensets(st.sampled_from(sorted(GRANT_TYPES))),
    scopes=SCOPES,
    jwks=st.none() | st.dictionaries(TEXT, JSON, max_size=3),
    token_format=st.sampled_from(["jwt", "opaque"]),
    legacy_password_grant=st.booleans(),
    created_at=TIMES,
)
CODES = st.builds(
    AuthorizationCode,
    code_hash=TEXT,
    grant_id=TEXT,
    client_id=st.just("c1"),
    user_id=st.just("u1"),
    redirect_uri=TEXT,
    scope=SCOPES,
    code_challenge=TEXT,
    resources=st.lists(TEXT, max_size=3).map(tuple),
    nonce=st.none() | TEXT,
    auth_time=TIMES,
    created_at=TIMES,
    expires_at=st.just(2**62 + 1),
)
REFRESH_TOKENS = st.builds(
    RefreshToken,
    token_hash=TEXT,
    grant_id=TEXT,
    client_id=st.just("c1"),
    user_id=st.sampled_from([None, "u1"]),
    scope=SCOPES,
    resources=st.lists(TEXT, max_size=3).map(tuple),
    created_at=TIMES,
    expires_at=TIMES,
    auth_time=TIMES,
)
ACCESS_TOKENS = st.builds(
    IssuedAccessToken,
    token_id=TEXT,
    format=st.sampled_from(["jwt", "opaque"]),
    client_id=st.just("c1"),
    grant_id=st.none() | TEXT,
    subject=TEXT,
    scope=SCOPES,
    audience=st.lists(TEXT, max_size=3).map(tuple),
    issued_at=TIMES,
    expires_at=TIMES,
    extra=st.dictionaries(TEXT, JSON, max_size=4),
)


@EXAMPLES
@given(client=CLIENTS)
def test_client_round_trips(running: tuple[asyncio.Runner, SqlStore], client: Client) -> None:
    runner, store = running
    runner.run(store.clients.add(client))
    try:
        assert runner.run(store.clients.get(client.client_id)) == client
    finally:
        runner.run(store.clients.delete(client.client_id))


@EXAMPLES
@given(code=CODES, now=TIMES)
def test_code_round_trips(
    running: tuple[asyncio.Runner, SqlStore], code: AuthorizationCode, now: int
) -> None:
    runner, store = running
    runner.run(store.codes.put(code))
    try:
        assert runner.run(store.codes.peek(code.code_hash)) == code
        assert runner.run(store.codes.consume(code.code_hash, now=now)).code == code
    finally:
        runner.run(store.tokens.purge_expired(before=2**63 - 1))


@EXAMPLES
@given(refresh=REFRESH_TOKENS, access=ACCESS_TOKENS)
def test_tokens_round_trip(
    running: tuple[asyncio.Runner, SqlStore], refresh: RefreshToken, access: IssuedAccessToken
) -> None:
    runner, store = running
    runner.run(store.tokens.add_refresh(refresh))
    runner.run(store.tokens.add_access(access))
    try:
        assert runner.run(store.tokens.peek_refresh(refresh.token_hash)) == refresh
        assert runner.run(store.tokens.find_access(access.token_id)) == access
    finally:
        runner.run(store.tokens.purge_expired(before=2**63 - 1))


@EXAMPLES
@given(
    event=TEXT,
    at=TIMES,
    names=st.tuples(*(st.none() | TEXT for _ in range(4))),
    detail=st.dictionaries(TEXT, JSON, max_size=4),
)
def test_audit_event_round_trips(
    running: tuple[asyncio.Runner, SqlStore],
    event: str,
    at: int,
    names: tuple[str | None, str | None, str | None, str | None],
    detail: dict[str, object],
) -> None:
    runner, store = running
    record = AuditEvent(
        event=event,
        at=at,
        client_id=names[0],
        user_id=names[1],
        grant_id=names[2],
        address=names[3],
        detail=detail,
    )
    runner.run(store.audit.record(record))
    assert runner.run(store.audit.tail(1)) == [record]


@pytest.mark.parametrize("word", ["", "two words", " padded", "tab\tinside", "new\nline"])
def test_scope_tokens_with_whitespace_are_refused(
    running: tuple[asyncio.Runner, SqlStore], word: str
) -> None:
    runner, store = running
    client = Client(client_id="c2", name="c", auth_method="none", scopes=frozenset({word}))
    with pytest.raises(ValueError, match="whitespace"):
        runner.run(store.clients.add(client))
    assert runner.run(store.clients.get("c2")) is None
