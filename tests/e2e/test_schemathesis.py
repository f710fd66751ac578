"""Schemathesis fuzzes a real `ostiary serve` with the server's own OpenAPI description:
every operation gets a bounded number of generated requests (valid and invalid ones), and
every answer must be a documented status with a documented body, never a 5xx.

The server is this test's own (a fresh SQLite database in a temporary folder): fuzzed
sign-ins count against 127.0.0.1, which must not throttle the other end-to-end tests. A
confidential client is registered first, and its credentials go with every request, so the
token, revocation and introspection endpoints are fuzzed past client authentication.

More cases, by hand:
    OSTIARY_FUZZ_EXAMPLES=500 OSTIARY_FUZZ_SEED=7 pytest tests/e2e/test_schemathesis.py -n 0
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_server import SCOPES, start_server, stop_server

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
EXAMPLES = int(os.environ.get("OSTIARY_FUZZ_EXAMPLES", "40"))  # per operation and phase
SEED = os.environ.get("OSTIARY_FUZZ_SEED", "20261129")  # fixed: a CI failure reproduces
RUN_TIMEOUT = 240.0
CRASHED = re.compile(r"Traceback \(most recent call last\)|\" 5\d\d\b")


def test_schemathesis_finds_no_5xx_and_no_answer_off_the_description(tmp_path: Path) -> None:
    if not SCHEMATHESIS.exists():
        pytest.skip(f"schemathesis is not installed next to the interpreter ({SCHEMATHESIS})")
    server = start_server("sqlite", tmp_path / "server", {})
    try:
        client = server.create_client(
            name="Fuzzed",
            grant_types="authorization_code,refresh_token,client_credentials",
            redirect_uris="https://app.example/callback",
            scopes=SCOPES,
        )
        done = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.base_url}/openapi.json",
                "--checks",
                ",".join(CHECKS),
                "--max-examples",
                str(EXAMPLES),
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
                "--auth",
                f"{client['client_id']}:{client['client_secret']}",
                "--no-color",
            ],
            cwd=tmp_path,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        report = done.stdout + done.stderr
        assert done.returncode == 0, report[-12000:]
        paths = openapi_document(server.issuer)["paths"].values()
        # Schemathesis leaves out the operation it loaded the description from
        operations = sum(len(item) for item in paths) - 1
        assert re.search(rf"\b{operations} passed\b", report) is not None, report[-4000:]
        generated = re.search(r"(\d+) generated, \1 passed", report)
        assert generated is not None, report[-4000:]
        assert int(generated.group(1)) >= operations * 10, report[-4000:]
        log = server.log()
        crash = CRASHED.search(log)
        assert crash is None, f"the server crashed or answered 5xx under fuzzing:\n{log[-6000:]}"
        assert client["client_secret"] not in log
    finally:
        stop_server(server)
