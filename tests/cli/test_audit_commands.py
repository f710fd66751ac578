"""`ostiary audit tail`: client, user and key changes made with the command are audited
without their secrets, and `audit tail` reads them back (filtered, as JSON, and following
new ones) from the database a running server uses, whose own events are JSON log lines."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_run import Run, assert_one_line_error
from test_server_commands import SCRIPT, _serve

pytestmark = pytest.mark.usefixtures("working_folder")

PASSWORD = "correct horse battery"
FOLLOW_TIMEOUT = 60.0


def events(ostiary: Run, *args: str) -> list[dict[str, Any]]:
    result = ostiary("audit", "tail", "--json", *args)
    assert result.status == 0, result.err
    return [json.loads(line) for line in result.out.splitlines()]


def test_client_user_and_key_changes_are_audited_without_secrets(
    ostiary: Run, database_url: str, working_folder: Path
) -> None:
    created = ostiary(
        *("clients", "create", "--name", "Billing", "--grant-types", "client_credentials"),
        *("--scopes", "read", "--json"),
    )
    assert created.status == 0, created.err
    client = json.loads(created.out)
    user = ostiary(
        *("users", "create", "--username", "ada", "--password-stdin", "--json"),
        stdin=f"{PASSWORD}\n".encode(),
    )
    assert user.status == 0, user.err
    user_id = json.loads(user.out)["user_id"]
    assert ostiary("keys", "rotate").status == 0  # the first key
    assert ostiary("keys", "rotate", "--overlap", "0").status == 0
    assert ostiary("clients", "delete", client["client_id"]).status == 0
    assert ostiary("users", "delete", "ada").status == 0
    api = "https://notes.example"
    assert ostiary("apis", "create", "--identifier", api, "--scopes", "notes:read").status == 0
    assert ostiary("apis", "delete", api).status == 0

    log = events(ostiary, "-n", "100")
    assert [e["event"] for e in log] == [
        "client.created",
        "user.created",
        "key.created",
        "key.retired",
        "key.rotated",
        "client.deleted",
        "user.deleted",
        "api.created",
        "api.deleted",
    ]
    assert [e["id"] for e in log] == sorted(e["id"] for e in log)
    made = log[0]
    assert made["client_id"] == client["client_id"]
    assert made["detail"]["grant_types"] == ["client_credentials"]
    assert made["detail"]["source"] == "cli"
    assert log[1]["user_id"] == user_id == log[-3]["user_id"]
    assert log[-2]["detail"] == {"source": "cli", "identifier": api, "scope": "notes:read"}
    assert log[-1]["detail"] == {"source": "cli", "identifier": api}
    first_kid = log[2]["detail"]["kid"]
    assert log[3]["detail"]["kid"] == first_kid
    assert log[4]["detail"]["replaces"] == [first_kid]
    assert all(e["time"].endswith("Z") and isinstance(e["at"], int) for e in log)

    text = ostiary("audit", "tail", "-n", "100").out
    # each command also logged its events, as the server does: one JSON line each on stderr
    lines = [json.loads(line) for line in created.err.splitlines() + user.err.splitlines()]
    assert [line["event"] for line in lines] == ["client.created", "user.created"]
    assert lines[0]["client_id"] == client["client_id"]
    for secret in (client["client_secret"], PASSWORD):
        assert secret not in json.dumps(log)
        assert secret not in text
        assert secret not in created.err + user.err
    if database_url.startswith("sqlite"):
        # the whole database file: nothing anywhere holds the secret or the password
        raw = (working_folder / "ostiary.db").read_bytes()
        for name in ("ostiary.db-wal",):
            if (working_folder / name).exists():
                raw += (working_folder / name).read_bytes()
        assert client["client_secret"].encode() not in raw
        assert PASSWORD.encode() not in raw


def test_tail_filters_and_counts(ostiary: Run, database_url: str) -> None:
    ids = []
    for name in ("One", "Two", "Three"):
        made = ostiary(
            *("clients", "create", "--name", name, "--grant-types", "client_credentials"),
            "--json",
        )
        ids.append(json.loads(made.out)["client_id"])
    assert ostiary("keys", "rotate").status == 0
    assert [e["event"] for e in events(ostiary, "-n", "2")] == ["client.created", "key.created"]
    assert [e["client_id"] for e in events(ostiary, "--event", "client")] == ids
    assert [e["client_id"] for e in events(ostiary, "--event", "client.created")] == ids
    assert events(ostiary, "--event", "client.create") == []  # a family is a whole segment
    assert events(ostiary, "--event", "client_") == []  # LIKE wildcards are plain characters
    assert events(ostiary, "--event", "%") == []
    assert [e["client_id"] for e in events(ostiary, "--client", ids[1])] == [ids[1]]
    assert events(ostiary, "--user", "u_nobody") == []
    assert events(ostiary, "-n", "0") == []
    plain = ostiary("audit", "tail", "--event", "key")
    assert plain.status == 0
    assert plain.out.count("\n") == 1 and "  key.created  " in plain.out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-n", "-1"], "between 0 and 100000"),
        (["-n", "many"], "not a whole number"),
        (["--interval", "0"], "--interval must be"),
        (["--follow", "--interval", "nan"], "interval"),
    ],
)
def test_tail_usage_errors(ostiary: Run, args: list[str], fragment: str) -> None:
    result = ostiary("audit", "tail", *args)
    assert result.status == 2
    assert fragment in result.err


def test_tail_without_a_database_says_migrate(ostiary: Run) -> None:
    assert_one_line_error(ostiary("audit", "tail"), "ostiary migrate")


def test_follow_prints_new_events_as_they_come(ostiary: Run, working_folder: Path) -> None:
    if not SCRIPT.exists():
        pytest.skip(f"the console script is not installed next to the interpreter ({SCRIPT})")
    assert ostiary("migrate").status == 0
    assert ostiary("keys", "rotate").status == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    with subprocess.Popen(
        [str(SCRIPT), "audit", "tail", "--follow", "--json", "-n", "1", "--interval", "0.05"],
        cwd=working_folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as follower:
        try:
            # the newest event first: then the follower has read the log and waits for news
            assert json.loads(_read_line(follower))["event"] == "key.created"
            made = ostiary(
                *("clients", "create", "--name", "Late", "--grant-types", "client_credentials"),
                "--json",
            )
            client_id = json.loads(made.out)["client_id"]
            event = json.loads(_read_line(follower))
            assert (event["event"], event["client_id"]) == ("client.created", client_id)
            assert ostiary("clients", "delete", client_id).status == 0
            assert json.loads(_read_line(follower))["event"] == "client.deleted"
        finally:
            follower.send_signal(signal.SIGINT)
            try:
                _, err = follower.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                follower.kill()
                _, err = follower.communicate(timeout=20)
    assert follower.returncode == 130
    assert b"Traceback" not in err


def _read_line(process: subprocess.Popen[bytes]) -> str:
    """One line of the process's stdout, waiting at most FOLLOW_TIMEOUT seconds."""
    assert process.stdout is not None
    deadline = time.monotonic() + FOLLOW_TIMEOUT
    data = b""
    fd = process.stdout.fileno()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"no line from audit tail --follow in time (got {data!r})"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 1)
            assert chunk, f"audit tail --follow ended: {process.poll()}"
            data += chunk
    return data.decode()


def test_a_running_server_writes_audit_lines_the_command_reads_back(tmp_path: Path) -> None:
    with _serve(tmp_path, {}) as served:
        created = served.ostiary(
            *("clients", "create", "--name", "Job", "--grant-types", "client_credentials"),
            *("--scopes", "read", "--json"),
        )
        client = json.loads(created.stdout)
        response = httpx.post(
            f"{served.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "read"},
            auth=(client["client_id"], client["client_secret"]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        tail = served.ostiary("audit", "tail", "--json", "--event", "token.issued")
        assert tail.returncode == 0, tail.stderr
        (issued,) = [json.loads(line) for line in tail.stdout.splitlines()]
        assert issued["client_id"] == client["client_id"]
        assert issued["detail"]["grant_type"] == "client_credentials"
        log = served.log()
    # the server logs each event as one bare JSON object on its own line
    logged = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    # the three keys of the first start (RS256, ES256, EdDSA), then the token
    assert [line["event"] for line in logged] == [*["key.created"] * 3, "token.issued"]
    assert logged[-1]["client_id"] == client["client_id"]
    for secret in (client["client_secret"], token):
        assert secret not in log
        assert secret not in tail.stdout


@pytest.mark.parametrize(("command", "fragment"), [("audit", "tail"), ("audit tail", "--follow")])
def test_audit_commands_have_help(ostiary: Run, command: str, fragment: str) -> None:
    result = ostiary(*command.split(), "--help")
    assert result.status == 0
    assert result.out.startswith(f"usage: ostiary {command}")
    assert fragment in result.out
