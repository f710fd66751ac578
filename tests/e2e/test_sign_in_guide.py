"""The "Sign in with Ostiary" guide (docs/sign-in.md) run as written: its FastAPI example
(`examples/sign_in_with_ostiary.py`, Authlib's Starlette client as the relying party) signs a
person in at a real `ostiary serve`, shows their name from UserInfo, and signs them out of
both the app and the server."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from e2e_server import HOST, OstiaryServer, Person, free_port
from e2e_user_agent import parse_forms, submit

pytest.importorskip("itsdangerous", reason="the guide's app needs it: pip install -e '.[dev]'")

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
MAX_HOPS = 12


@contextmanager
def guide_app(server: OstiaryServer, folder: Path) -> Iterator[str]:
    """Register the app with `ostiary clients create`, then run it with uvicorn."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    client = server.ostiary_json(
        *("clients", "create", "--name", "Guide app", "--json"),
        *("--grant-types", "authorization_code,refresh_token"),
        *("--redirect-uris", f"{url}/callback", "--scopes", "openid profile email"),
        *("--post-logout-redirect-uris", f"{url}/"),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSTIARY_", "APP_"))}
    env.update(
        APP_ISSUER=server.issuer,
        APP_URL=url,
        APP_CLIENT_ID=client["client_id"],
        APP_CLIENT_SECRET=client["client_secret"],
        APP_SESSION_SECRET=secrets.token_hex(32),
    )
    log_path = folder / "guide-app.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "examples.sign_in_with_ostiary:app"),
                *("--host", HOST, "--port", str(port), "--no-access-log"),
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        up = False
        with httpx.Client(timeout=2) as http:
            while time.monotonic() < deadline and process.poll() is None and not up:
                try:
                    up = http.get(url + "/").status_code == 200
                except httpx.TransportError:
                    time.sleep(0.1)  # bounded polling for a real server to come up
        assert up, log_path.read_text(errors="replace")[-4000:]
        yield url
        log_text = log_path.read_text(errors="replace")
        assert "Traceback" not in log_text, log_text[-4000:]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def browse(http: httpx.Client, url: str, person: Person) -> httpx.Response:
    """Follow redirects across the app and the server, signing in and allowing on the way."""
    response = http.get(url)
    for _ in range(MAX_HOPS):
        if response.is_redirect:
            response = http.get(urljoin(str(response.url), response.headers["location"]))
            continue
        forms = parse_forms(response.text) if response.status_code == 200 else []
        login = next((f for f in forms if f.has_input("password")), None)
        consent = next((f for f in forms if f.button_values("decision")), None)
        if login is not None:
            response = submit(
                http, response, login, username=person.username, password=person.password
            )
        elif consent is not None and "allow" in consent.button_values("decision"):
            response = submit(http, response, consent, decision="allow")
        else:
            return response
    raise AssertionError(f"more than {MAX_HOPS} hops")


def test_the_guide_app_signs_in_and_out(
    server: OstiaryServer, person: Person, tmp_path: Path
) -> None:
    done = server.ostiary("users", "set", "--username", person.username, "--claim", "name=Grace")
    assert done.returncode == 0, done.stderr
    with guide_app(server, tmp_path) as app, httpx.Client(timeout=10) as browser:
        page = browse(browser, app + "/login", person)
        assert page.status_code == 200 and "Hello, Grace!" in page.text, page.text
        # signed in at the server too: signing in again needs no password (SSO)
        authorization = browser.get(app + "/login").headers["location"]
        answer = browser.get(authorization)
        assert answer.is_redirect and answer.headers["location"].startswith(app + "/callback")
        signed_out = browse(browser, app + "/logout", person)
        assert "not signed in" in signed_out.text, signed_out.text
        # the server's session ended with the app's: the next sign-in asks for the password
        login_page = browser.get(app + "/login", follow_redirects=True)
        assert 'name="password"' in login_page.text
