"""Schemathesis fuzzes a real `ostiary serve` with the server's own OpenAPI description, on
SQLite and on PostgreSQL: every operation gets a bounded number of generated requests (valid
and invalid ones), and every answer must be a documented status with a documented body,
never a 5xx.

Two runs per database, each with a fixed seed and a bounded number of cases:
- stateful, first: Schemathesis follows the description's OpenAPI links with values from
  real answers: register a client -> read, update, delete it with its registration access
  token; get tokens -> introspect, revoke, refresh them. Its token requests use the
  password grant of a client and a user made for it (so refresh tokens exist to follow);
  it checks that a deleted client is gone and a registered one can be read.
- stateless: examples, coverage and fuzzing phases, with a confidential client's
  credentials on the operations that take them (token, revocation, introspection), so
  those are fuzzed past client authentication. Its password-grant guesses count against 127.0.0.1,
  which is why it runs second, and why the server is this test's own.

Registration is open on this server (`OSTIARY_REGISTRATION=open`), so the registration
parser is fuzzed past the initial access token.

More cases, by hand:
    OSTIARY_FUZZ_EXAMPLES=500 OSTIARY_FUZZ_SEED=7 pytest tests/e2e/test_schemathesis.py -n 0
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from e2e_server import (
    SCOPES,
    OstiaryServer,
    postgres_database,
    postgres_unreachable,
    start_server,
    stop_server,
)

from ostiary.server.openapi import openapi_document

SCHEMATHESIS = Path(sys.executable).parent / ("st.exe" if os.name == "nt" else "st")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
)
# what a sequence of calls must keep true, besides every answer conforming
STATEFUL_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "use_after_free",  # a deleted client is not found again
    "ensure_resource_availability",  # a registered client can be read at once
)
EXAMPLES = int(os.environ.get("OSTIARY_FUZZ_EXAMPLES", "40"))  # per operation and phase
SCENARIOS = int(os.environ.get("OSTIARY_FUZZ_SCENARIOS", "25"))  # stateful: call sequences
MAX_STEPS = 6  # calls in one stateful sequence at most
MIN_LINKS_COVERED = 5  # of the description's links, followed with a real answer's values
SEED = os.environ.get("OSTIARY_FUZZ_SEED", "20261129")  # fixed: a CI failure reproduces
RUN_TIMEOUT = 240.0
CRASHED = re.compile(r"Traceback \(most recent call last\)|\" 5\d\d\b")
COMMON_OPTIONS = (
    "--seed",
    SEED,
    "--workers",
    "1",
    "--generation-database",
    "none",
    "--max-redirects",
    "0",
    "--request-timeout",
    "30",
    "--no-color",
)


@contextmanager
def database(backend: str) -> Iterator[dict[str, str]]:
    if backend == "sqlite":
        yield {}  # a SQLite file in the server's folder
        return
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(f"{reason}; CI starts it (.ci/run)")
    with postgres_database() as url:
        yield {"OSTIARY_DATABASE_URL": url}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_schemathesis_finds_no_5xx_and_no_answer_off_the_description(
    tmp_path: Path, backend: str
) -> None:
    if not SCHEMATHESIS.exists():
        pytest.skip(f"schemathesis is not installed next to the interpreter ({SCHEMATHESIS})")
    with database(backend) as settings:
        server = start_server(backend, tmp_path / "server", {**settings, **OPEN_REGISTRATION})
        try:
            secrets_used = _stateful_run(server, tmp_path)
            secrets_used += _stateless_run(server, tmp_path)
            log = server.log()
            crash = CRASHED.search(log)
            assert crash is None, (
                f"the server crashed or answered 5xx under fuzzing:\n{log[-6000:]}"
            )
            for secret in secrets_used:
                assert secret not in log
        finally:
            stop_server(server)


OPEN_REGISTRATION = {"OSTIARY_REGISTRATION": "open"}


def _stateful_run(server: OstiaryServer, folder: Path) -> list[str]:
    """Follow the OpenAPI links; returns the secrets it used (none may reach the log)."""
    client = server.create_client(
        name="Stateful",
        grant_types="password,refresh_token,client_credentials",
        scopes=SCOPES,
        extra=("--legacy-password-grant",),
    )
    username, password = f"fuzz-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    server.create_user(username, password)
    # Only the sources of the links get fixed values, so that they answer with something to
    # follow: every other field is still generated, and a link's own values win over these.
    token = {"grant_type": "password", "username": username, "password": password, "scope": "read"}
    registration = {
        "redirect_uris": ["https://app.example/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "read",
    }
    toml = f"""
[phases.stateful]
max-steps = {MAX_STEPS}

[[operations]]
include-operation-id = "token"
parameters = {_inline_table(token)}

[[operations]]
include-operation-id = "register_client_post"
parameters = {_inline_table(registration)}
"""
    config_file = _config(folder / "stateful.toml", client, toml)
    report = _schemathesis(
        server,
        folder,
        "--phases",
        "stateful",
        "--mode",
        "positive",
        "--checks",
        ",".join(STATEFUL_CHECKS),
        "--max-examples",
        str(SCENARIOS),
        config=config_file,
    )
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", report)
    assert links is not None, report[-4000:]
    assert int(links.group(1)) >= MIN_LINKS_COVERED, report[-4000:]
    return [client["client_secret"], password]


def _stateless_run(server: OstiaryServer, folder: Path) -> list[str]:
    client = server.create_client(
        name="Fuzzed",
        grant_types="authorization_code,refresh_token,client_credentials",
        redirect_uris="https://app.example/callback",
        scopes=SCOPES,
    )
    report = _schemathesis(
        server,
        folder,
        "--phases",
        "examples,coverage,fuzzing",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES),
        config=_config(folder / "stateless.toml", client),
    )
    paths = openapi_document(server.issuer)["paths"].values()
    # Schemathesis leaves out the operation it loaded the description from
    operations = sum(len(item) for item in paths) - 1
    assert re.search(rf"\b{operations} passed\b", report) is not None, report[-4000:]
    generated = re.search(r"(\d+) generated, \1 passed", report)
    assert generated is not None, report[-4000:]
    assert int(generated.group(1)) >= operations * 10, report[-4000:]
    return [client["client_secret"]]


def _schemathesis(
    server: OstiaryServer, folder: Path, *options: str, config: Path | None = None
) -> str:
    first = ["--config-file", str(config)] if config is not None else []
    command = [str(SCHEMATHESIS), *first, "run", f"{server.base_url}/openapi.json"]
    done = subprocess.run(
        [*command, *options, *COMMON_OPTIONS],
        cwd=folder,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-12000:]
    return report


def _config(path: Path, client: dict[str, Any], more: str = "") -> Path:
    """A Schemathesis config that sends the client's credentials (client_secret_basic) to
    the operations the description says take them, and only to those."""
    credentials = f"""
[auth.openapi.clientBasic]
username = {json.dumps(client["client_id"])}
password = {json.dumps(client["client_secret"])}
"""
    path.write_text(credentials + more, encoding="utf-8")
    return path


def _inline_table(body: dict[str, object]) -> str:
    """A TOML inline table of body overrides (a JSON string or list is a TOML one too)."""
    pairs = ", ".join(f'"body.{name}" = {json.dumps(value)}' for name, value in body.items())
    return "{ " + pairs + " }"
