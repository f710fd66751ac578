"""The audit log of a whole journey through the app: failed and successful sign-in, consent,
code, tokens, refresh, refresh reuse, revocation, consent revocation and key rotation, each
one a row in the database and a JSON line on the `ostiary.audit` logger, and none holding a
secret or a token the journey used."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest
from server_app import (
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    Served,
    authorize_params,
    query_of,
    sign_in_and_allow,
    submit,
)

from ostiary.oauth.consent import revoke_consent
from ostiary.server.keyring import rotate
from ostiary.store import SqlStore

pytestmark = pytest.mark.anyio


async def test_every_step_is_audited_in_the_database_and_the_log_without_secrets(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    client, client_secret = await served.add_client()
    assert client_secret is not None
    user = await served.add_user()
    auth = (client.client_id, client_secret)
    secrets_used = {"client secret": client_secret, "password": PASSWORD}

    # a wrong password first, then the right one
    pkce = Pkce.new()
    url = "/authorize?" + urlencode(authorize_params(client, pkce))
    async with served.browser() as other:
        page = await other.get(url)
        wrong = "wrong-" + PASSWORD
        secrets_used["wrong password"] = wrong
        refused = await submit(other, page, username=user.username, password=wrong)
        assert refused.status_code == 400
    final = await sign_in_and_allow(served.http, url, user.username)
    code = query_of(final.headers["location"])["code"][0]
    secrets_used |= {"code": code, "code_verifier": pkce.verifier}
    for name, value in served.http.cookies.items():
        secrets_used[f"cookie {name}"] = value

    issued = await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=auth,
    )
    assert issued.status_code == 200, issued.text
    first_refresh = issued.json()["refresh_token"]
    secrets_used |= {"access token": issued.json()["access_token"], "refresh": first_refresh}

    refreshed = await served.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": first_refresh}, auth=auth
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    secrets_used |= {"access token 2": second["access_token"], "refresh 2": second["refresh_token"]}
    reused = await served.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": first_refresh}, auth=auth
    )
    assert reused.json()["error"] == "invalid_grant"

    credentials = await served.http.post(
        "/token", data={"grant_type": "client_credentials", "scope": "read"}, auth=auth
    )
    machine_token = credentials.json()["access_token"]
    secrets_used["client credentials token"] = machine_token
    revoked = await served.http.post("/revoke", data={"token": machine_token}, auth=auth)
    assert revoked.status_code == 200

    ctx = served.runtime.ctx
    await revoke_consent(user.user_id, client.client_id, ctx=ctx)
    await rotate(served.store, b"k" * 32, "ES256", served.clock(), 0)

    store = served.store
    assert isinstance(store, SqlStore)
    rows = [event for _, event in await store.audit.read(limit=1000)]
    names = [event.event for event in rows]
    for expected in (
        "login.failed",
        "login.succeeded",
        "consent.granted",
        "code.issued",
        "token.issued",
        "refresh.reuse_detected",
        "token.revoked",
        "consent.revoked",
        "key.retired",
        "key.rotated",
    ):
        assert expected in names, (expected, names)
    grants = {e.detail.get("grant_type") for e in rows if e.event == "token.issued"}
    assert {"authorization_code", "refresh_token", "client_credentials"} <= grants

    lines = [r.getMessage() for r in caplog.records if r.name == "ostiary.audit"]
    logged = [json.loads(line) for line in lines]
    # the app started before caplog listened: its first key.created is in the database only
    assert [line["event"] for line in logged] == [n for n in names if n != "key.created"]
    assert all(line["at"] >= 1 for line in logged)

    everything = repr(rows) + "\n".join(lines)
    for what, value in secrets_used.items():
        assert value not in everything, f"the {what} leaked into the audit log"
