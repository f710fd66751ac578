"""`ostiary.protect` against a real `ostiary serve`: the example notes API
(`examples/notes_api.py` under uvicorn, as the README runs it) accepts the server's tokens
and refuses every attack with the right status and challenge; key rotation is followed
without a restart; an issuer that is down at start, or later, is handled.

Where a test needs to move an API's clock (expiry, refetch intervals, outages) it uses a
`ResourceServer` in this process, with a shifted clock, still against the real server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_server import (
    HOST,
    SCRIPT,
    OstiaryServer,
    ServerFailed,
    clean_environment,
    free_port,
    start_server,
    stop_server,
    wait_until_ready,
)
from e2e_user_agent import Pkce, authorization_url, authorize

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.protect import (
    Credentials,
    DPoPAuth,
    DPoPKey,
    InvalidToken,
    ResourceServer,
    Unavailable,
)

REPO = Path(__file__).resolve().parents[2]
NOTES = "https://notes.example"
BILLING = "https://billing.example"
TIMEOUT = 10.0
START_TIMEOUT = 30.0
# Long-lived tokens: the tests move the API's clock by hours to cross cache lifetimes.
LONG_TTL = str(3 * 86_400)


@dataclass
class Deployment:
    """A running authorization server with the notes API registered, and the notes API."""

    server: OstiaryServer
    notes_url: str
    reader: dict[str, Any]  # client_credentials, scope notes:read
    writer: dict[str, Any]  # client_credentials, scopes notes:read notes:write


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_token(server: OstiaryServer, client: dict[str, Any], **params: str) -> str:
    response = httpx.post(
        server.endpoint("token"),
        data={"grant_type": "client_credentials", **params},
        auth=(client["client_id"], client["client_secret"]),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def seed(server: OstiaryServer) -> tuple[dict[str, Any], dict[str, Any]]:
    for identifier, scopes in ((NOTES, "notes:read notes:write"), (BILLING, "invoices:read")):
        done = server.ostiary("apis", "create", "--identifier", identifier, "--scopes", scopes)
        assert done.returncode == 0, done.stderr
    reader = server.create_client(
        name="Notes reader", grant_types="client_credentials", scopes="notes:read invoices:read"
    )
    writer = server.create_client(
        name="Notes writer",
        grant_types="client_credentials",
        scopes="notes:read notes:write",
    )
    return reader, writer


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("protect-e2e")
    server = start_server("sqlite", folder, {"OSTIARY_ACCESS_TOKEN_TTL": LONG_TTL})
    try:
        reader, writer = seed(server)
        with notes_api(server.issuer, folder) as notes_url:
            yield Deployment(server, notes_url, reader, writer)
    finally:
        stop_server(server)


class NotesApiFailed(RuntimeError):
    """The example API did not come up; the message holds its log."""


def _wait_for_notes(url: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                if http.get(url + "/me").status_code == 401:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # bounded polling for a real server to come up
    return False


@contextmanager
def notes_api(issuer: str, folder: Path) -> Iterator[str]:
    """`OSTIARY_ISSUER=<issuer> uvicorn examples.notes_api:app`, exactly as the README says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    env["OSTIARY_ISSUER"] = issuer
    log_path = folder / "notes-api.log"
    for _ in range(3):
        port = free_port()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "examples.notes_api:app"),
                    *("--host", HOST, "--port", str(port), "--no-access-log"),
                ],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://{HOST}:{port}"
        try:
            if _wait_for_notes(url, process):
                yield url
                log_text = log_path.read_text(errors="replace")
                assert "Traceback" not in log_text, log_text[-4000:]
                return
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    raise NotesApiFailed(log_path.read_text(errors="replace")[-4000:])


def call(
    deployment: Deployment, method: str, path: str, token: str | None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.request(
        method, deployment.notes_url + path, headers=headers, timeout=TIMEOUT, **kwargs
    )


def assert_invalid_token(response: httpx.Response, token: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="'), challenge
    assert token not in response.text and token not in challenge


# -- the example accepts the server's tokens -------------------------------------------------


def test_token_for_the_notes_api_is_accepted(deployment: Deployment) -> None:
    token = client_token(deployment.server, deployment.writer, resource=NOTES)
    me = call(deployment, "GET", "/me", token)
    assert me.status_code == 200, me.text
    assert me.json() == {
        "sub": deployment.writer["client_id"],
        "client_id": deployment.writer["client_id"],
        "scope": "notes:read notes:write",
    }
    created = call(deployment, "POST", "/notes", token, json={"text": "buy milk"})
    assert (created.status_code, created.json()) == (201, {"text": "buy milk"})
    listed = call(deployment, "GET", "/notes", token)
    assert (listed.status_code, listed.json()) == (200, ["buy milk"])


def test_user_token_from_the_code_flow_is_accepted(deployment: Deployment) -> None:
    """A person signs in at the real server; the resource indicator picks the audience."""
    server = deployment.server
    callback_port = free_port()
    redirect_uri = f"http://{HOST}:{callback_port}/cb"
    app = server.create_client(
        name="Notes web",
        grant_types="authorization_code",
        scopes="openid notes:read",
        redirect_uris=redirect_uri,
        public=True,
    )
    server.create_user("notes-user", "correct horse battery")
    pkce = Pkce.new()
    url = authorization_url(
        server.endpoint("authorization"),
        client_id=app["client_id"],
        redirect_uri=redirect_uri,
        scope="openid notes:read",
        state="s1",
        pkce=pkce,
    )
    with httpx.Client(timeout=TIMEOUT) as user_agent:
        journey = authorize(
            user_agent,
            url + "&resource=" + NOTES,
            redirect_uri=redirect_uri,
            username="notes-user",
            password="correct horse battery",
        )
    assert journey.callback_url is not None, journey.pages[-1].text[-2000:]
    code = httpx.QueryParams(journey.callback_url.split("?", 1)[1])["code"]
    response = httpx.post(
        server.endpoint("token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": pkce.verifier,
            "redirect_uri": redirect_uri,
            "client_id": app["client_id"],
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    me = call(deployment, "GET", "/me", response.json()["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["client_id"] == app["client_id"]
    assert me.json()["scope"] == "notes:read"
    assert me.json()["sub"] != app["client_id"]  # the person, not the client
    # The ID token from the same response is signed by the same issuer, but it is not an
    # access token (RFC 9068 §4: typ at+jwt), nor for this API.
    id_token = response.json()["id_token"]
    assert_invalid_token(call(deployment, "GET", "/me", id_token), id_token)


def test_unknown_resource_is_invalid_target(deployment: Deployment) -> None:
    response = httpx.post(
        deployment.server.endpoint("token"),
        data={"grant_type": "client_credentials", "resource": "https://unknown.example"},
        auth=(deployment.writer["client_id"], deployment.writer["client_secret"]),
        timeout=TIMEOUT,
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_target")


# -- refusals ------------------------------------------------------------------------------


def test_no_token_gets_the_bare_challenge(deployment: Deployment) -> None:
    response = call(deployment, "GET", "/notes", None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer, DPoP algs=")


def test_missing_scope_is_403_naming_it(deployment: Deployment) -> None:
    token = client_token(deployment.server, deployment.reader, resource=NOTES)
    assert call(deployment, "GET", "/notes", token).status_code == 200
    response = call(deployment, "POST", "/notes", token, json={"text": "x"})
    assert response.status_code == 403
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert 'scope="notes:write"' in response.headers["www-authenticate"]


def test_token_for_another_api_is_refused(deployment: Deployment) -> None:
    token = client_token(deployment.server, deployment.reader, resource=BILLING)
    response = call(deployment, "GET", "/me", token)
    assert_invalid_token(response, token)
    assert "not meant for this API" in response.headers["www-authenticate"]


def test_token_without_resource_is_refused(deployment: Deployment) -> None:
    token = client_token(deployment.server, deployment.reader)  # audience: the issuer
    assert_invalid_token(call(deployment, "GET", "/me", token), token)


def test_forged_token_with_the_servers_kid_is_refused(deployment: Deployment) -> None:
    real = client_token(deployment.server, deployment.writer, resource=NOTES)
    header = jwt.unverified_header(real)
    forger = JWK.generate("EC", crv="P-256", alg="ES256", kid=header["kid"])
    claims = deployment.server.access_token_claims(real, audience=NOTES)
    claims["scope"] = "notes:read notes:write admin"
    forged = jwt.encode(
        claims, forger, alg="ES256", headers={"typ": "at+jwt", "kid": header["kid"]}
    )
    assert_invalid_token(call(deployment, "GET", "/me", forged), forged)


def test_alg_none_is_refused(deployment: Deployment) -> None:
    real = client_token(deployment.server, deployment.writer, resource=NOTES)
    _, payload, _ = real.split(".")
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    token = f"{header}.{payload}."
    assert_invalid_token(call(deployment, "GET", "/me", token), token)


def test_key_confusion_hmac_with_the_public_key_is_refused(deployment: Deployment) -> None:
    real = client_token(deployment.server, deployment.writer, resource=NOTES)
    kid = jwt.unverified_header(real)["kid"]
    jwks = httpx.get(deployment.server.metadata()["jwks_uri"], timeout=TIMEOUT).json()
    public = JWK.from_dict(next(k for k in jwks["keys"] if k["kid"] == kid))
    _, payload, _ = real.split(".")
    header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    for secret in (public.to_pem(), public.to_json().encode()):
        mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        token = f"{header}.{payload}.{b64(mac)}"
        assert_invalid_token(call(deployment, "GET", "/me", token), token)


def test_token_from_another_issuer_is_refused(deployment: Deployment, tmp_path: Path) -> None:
    other = start_server("sqlite", tmp_path / "other", {})
    try:
        seed(other)
        client = other.create_client(
            name="Elsewhere", grant_types="client_credentials", scopes="notes:read"
        )
        token = client_token(other, client, resource=NOTES)
    finally:
        stop_server(other)
    assert_invalid_token(call(deployment, "GET", "/me", token), token)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer a b", "Bearer " + "a" * 20_000],
    ids=["empty", "space", "oversized"],
)
def test_malformed_authorization_is_invalid_request(
    deployment: Deployment, authorization: str
) -> None:
    response = httpx.get(
        deployment.notes_url + "/me", headers={"Authorization": authorization}, timeout=TIMEOUT
    )
    assert response.status_code == 400
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_request"')


# -- time, rotation and outages, with the API's clock in this process -----------------------


class ShiftedClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_expired_and_not_yet_valid_tokens_are_refused(deployment: Deployment) -> None:
    token = client_token(deployment.server, deployment.writer, resource=NOTES)
    claims = deployment.server.access_token_claims(token, audience=NOTES)
    clock = ShiftedClock()

    async def run() -> None:
        async with ResourceServer(
            issuer=deployment.server.issuer, audience=NOTES, clock=clock
        ) as api:
            await api.verify(Credentials(token=token))
            clock.offset = claims["exp"] - time.time() + 11  # past exp and the leeway
            with pytest.raises(InvalidToken, match="expired"):
                await api.verify(Credentials(token=token))
            clock.offset = claims["iat"] - time.time() - 60  # before it was issued
            with pytest.raises(InvalidToken, match="not valid yet"):
                await api.verify(Credentials(token=token))

    asyncio.run(run())


def serve_on(folder: Path, port: int, name: str) -> OstiaryServer:
    """`ostiary serve` on a given port, so a restarted server keeps its issuer URL."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"OSTIARY_ACCESS_TOKEN_TTL": LONG_TTL, "OSTIARY_KEY_REFRESH_INTERVAL": "0"}
    server = OstiaryServer(
        backend="sqlite",
        folder=folder,
        env=clean_environment(folder, settings),
        port=port,
        log_path=folder / f"{name}.log",
    )
    with server.log_path.open("wb") as log:
        server.process = subprocess.Popen(
            [str(SCRIPT), "serve", "--host", HOST, "--port", str(port)],
            cwd=folder,
            env=server.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if not wait_until_ready(server):
        stop_server(server)
        raise ServerFailed(server.log_tail())
    return server


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[OstiaryServer]:
    """A server only this test uses: it rotates keys and goes down."""
    server = serve_on(tmp_path / "own", free_port(), "first")
    try:
        yield server
    finally:
        stop_server(server)


def test_key_rotation_is_followed_without_a_restart(own_server: OstiaryServer) -> None:
    reader, _ = seed(own_server)
    before = client_token(own_server, reader, resource=NOTES)
    clock = ShiftedClock()

    async def run() -> None:
        async with ResourceServer(issuer=own_server.issuer, audience=NOTES, clock=clock) as api:
            await api.verify(Credentials(token=before))
            rotated = own_server.ostiary("keys", "rotate", "--overlap", "0")
            assert rotated.returncode == 0, rotated.stderr
            after = client_token(own_server, reader, resource=NOTES)
            assert jwt.unverified_header(after)["kid"] != jwt.unverified_header(before)["kid"]
            clock.offset += 30  # the API's next allowed refetch for an unknown kid
            claims = await api.verify(Credentials(token=after))
            assert claims["client_id"] == reader["client_id"]
            await api.verify(Credentials(token=before))  # still published while it may live

    asyncio.run(run())


def test_issuer_down_at_start_and_later(own_server: OstiaryServer, tmp_path: Path) -> None:
    reader, _ = seed(own_server)
    token = client_token(own_server, reader, resource=NOTES)
    clock = ShiftedClock()
    stop_server(own_server)

    async def down_at_start(api: ResourceServer) -> None:
        with pytest.raises(Unavailable):  # nothing cached: fail closed
            await api.verify(Credentials(token=token))

    async def run() -> None:
        async with ResourceServer(issuer=own_server.issuer, audience=NOTES, clock=clock) as api:
            await down_at_start(api)
            restarted = serve_on(own_server.folder, own_server.port, "again")
            try:
                assert restarted.issuer == own_server.issuer
                clock.offset += 30
                await api.verify(Credentials(token=token))  # recovered, no restart of the API
            finally:
                stop_server(restarted)
            clock.offset += 3600  # stale keys, issuer down: the cached keys keep serving
            await api.verify(Credentials(token=token))
            await asyncio.sleep(0.05)  # the background refresh fails meanwhile
            await api.verify(Credentials(token=token))
            clock.offset += 2 * 86_400  # past max_stale: nothing left to trust
            with pytest.raises(Unavailable):
                await api.verify(Credentials(token=token))

    asyncio.run(run())


# -- DPoP (RFC 9449) end to end ------------------------------------------------------------


def dpop_token(deployment: Deployment, key: DPoPKey) -> str:
    client = deployment.writer
    pair = f"{client['client_id']}:{client['client_secret']}".encode()
    basic = "Basic " + base64.b64encode(pair).decode()  # the ids are URL-safe already
    with httpx.Client(auth=DPoPAuth(key), timeout=TIMEOUT) as http:
        response = http.post(
            deployment.server.endpoint("token"),
            data={"grant_type": "client_credentials", "resource": NOTES},
            headers={"Authorization": basic},
        )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    token: str = response.json()["access_token"]
    return token


def test_dpop_bound_token_accepted_with_its_proofs(deployment: Deployment) -> None:
    key = DPoPKey.generate()
    token = dpop_token(deployment, key)
    assert deployment.server.access_token_claims(token, audience=NOTES)["cnf"] == {"jkt": key.jkt}
    with httpx.Client(
        auth=DPoPAuth(key, access_token=token), base_url=deployment.notes_url, timeout=TIMEOUT
    ) as http:
        assert http.post("/notes", json={"text": "bound"}).status_code == 201
        assert "bound" in http.get("/notes").json()
        assert http.get("/me").json()["client_id"] == deployment.writer["client_id"]


def dpop_call(deployment: Deployment, token: str, proof: str | None) -> httpx.Response:
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return httpx.get(deployment.notes_url + "/me", headers=headers, timeout=TIMEOUT)


def assert_dpop_refused(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert 'DPoP error="invalid_dpop_proof"' in challenge, challenge
    assert fragment in challenge


def test_replayed_dpop_proof_refused(deployment: Deployment) -> None:
    key = DPoPKey.generate()
    token = dpop_token(deployment, key)
    proof = key.proof("GET", deployment.notes_url + "/me", access_token=token)
    assert dpop_call(deployment, token, proof).status_code == 200
    assert_dpop_refused(dpop_call(deployment, token, proof), "already used")


def test_dpop_proof_for_another_url_refused(deployment: Deployment) -> None:
    key = DPoPKey.generate()
    token = dpop_token(deployment, key)
    for url in (deployment.notes_url + "/notes", "https://notes.example/me"):
        proof = key.proof("GET", url, access_token=token)
        assert_dpop_refused(dpop_call(deployment, token, proof), "htu")


def test_stolen_bound_token_refused(deployment: Deployment) -> None:
    key = DPoPKey.generate()
    token = dpop_token(deployment, key)
    as_bearer = call(deployment, "GET", "/me", token)
    assert_invalid_token(as_bearer, token)
    assert "bound to a DPoP key" in as_bearer.headers["www-authenticate"]
    thief = DPoPKey.generate()
    proof = thief.proof("GET", deployment.notes_url + "/me", access_token=token)
    assert_dpop_refused(dpop_call(deployment, token, proof), "not signed by")


def test_token_endpoint_refuses_a_replayed_dpop_proof(deployment: Deployment) -> None:
    key = DPoPKey.generate()
    proof = key.proof("POST", deployment.server.endpoint("token"))
    client = deployment.writer
    for expected in (200, 400):
        response = httpx.post(
            deployment.server.endpoint("token"),
            data={"grant_type": "client_credentials", "resource": NOTES},
            auth=(client["client_id"], client["client_secret"]),
            headers={"DPoP": proof},
            timeout=TIMEOUT,
        )
        assert response.status_code == expected, response.text
    assert response.json()["error"] == "invalid_dpop_proof"
