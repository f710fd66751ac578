"""Sign in with Ostiary: a FastAPI app whose users sign in at an Ostiary server (OpenID
Connect), the example of docs/sign-in.md. The relying-party side is Authlib's Starlette
client: discovery, the code flow with PKCE and nonce, ID token validation.

Register the app, then run it next to a running `ostiary serve`:

    ostiary clients create --name "My app" --grant-types authorization_code,refresh_token \
        --redirect-uris http://127.0.0.1:8001/callback --scopes "openid profile email" \
        --post-logout-redirect-uris http://127.0.0.1:8001/ --json
    APP_ISSUER=http://127.0.0.1:8000 APP_URL=http://127.0.0.1:8001 APP_CLIENT_ID=c_... \
        APP_CLIENT_SECRET=... APP_SESSION_SECRET=$(openssl rand -hex 32) \
        uvicorn examples.sign_in_with_ostiary:app --port 8001
"""

from __future__ import annotations

import html
import os
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

ISSUER = os.environ["APP_ISSUER"]  # the Ostiary server, e.g. https://auth.example
APP_URL = os.environ["APP_URL"]  # where this app is reached, e.g. https://notes.example

oauth = OAuth()
oauth.register(
    "ostiary",
    server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
    client_id=os.environ["APP_CLIENT_ID"],
    client_secret=os.environ["APP_CLIENT_SECRET"],
    client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
)

app = FastAPI()
# The app's own session: a signed cookie holding who signed in (and the ID token for logout).
app.add_middleware(
    SessionMiddleware,
    secret_key=os.environ["APP_SESSION_SECRET"],
    same_site="lax",
    https_only=APP_URL.startswith("https://"),
)


@app.get("/", response_class=HTMLResponse)
async def home(request: Request) -> str:
    user: dict[str, Any] | None = request.session.get("user")
    if user is None:
        return '<p>You are not signed in. <a href="/login">Sign in with Ostiary</a></p>'
    name = html.escape(str(user.get("name") or user.get("preferred_username") or user["sub"]))
    return f'<p>Hello, {name}! <a href="/logout">Sign out</a></p>'


@app.get("/login")
async def login(request: Request) -> Any:
    # Authlib adds state, nonce and the PKCE challenge, and keeps them in the session.
    return await oauth.ostiary.authorize_redirect(request, f"{APP_URL}/callback")


@app.get("/callback")
async def callback(request: Request) -> Any:
    try:
        # redeems the code, then checks the ID token: signature, iss, aud, exp, nonce
        token = await oauth.ostiary.authorize_access_token(request)
    except OAuthError as exc:
        return HTMLResponse(f"<p>Sign-in failed: {html.escape(exc.error)}</p>", status_code=400)
    userinfo = await oauth.ostiary.userinfo(token=token)  # name, email: from /userinfo
    request.session["user"] = dict(userinfo)
    request.session["id_token"] = token["id_token"]
    return RedirectResponse("/", status_code=303)


@app.get("/logout")
async def logout(request: Request) -> Any:
    id_token = request.session.pop("id_token", None)
    request.session.pop("user", None)
    metadata = await oauth.ostiary.load_server_metadata()
    if id_token is None:
        return RedirectResponse("/", status_code=303)
    # RP-Initiated Logout: end the Ostiary session too, then come back here
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": f"{APP_URL}/"})
    return RedirectResponse(f"{metadata['end_session_endpoint']}?{query}", status_code=303)
