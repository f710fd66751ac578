"""Random requests to the back-channel endpoints: a spec-shaped answer, never an exception."""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable

import anyio
from core_context import make_context
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from token_requests import FORM, basic

from ostiary.oauth.client_secrets import hash_client_secret
from ostiary.oauth.context import Context
from ostiary.oauth.introspection import handle_introspection_request
from ostiary.oauth.models import Client
from ostiary.oauth.revocation import handle_revocation_request
from ostiary.oauth.token_endpoint import TokenRequest, TokenResponse, handle_token_request

Handler = Callable[[TokenRequest, Context], Awaitable[TokenResponse]]

SECRET = "s3cret-s3cret-s3cret"
CLIENT_ID = "app"
ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "slow_down",
}
NAMES = [
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "scope",
    "resource",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "username",
    "password",
    "token",
    "token_type_hint",
]
GRANTS = ["authorization_code", "refresh_token", "client_credentials", "password", "implicit"]
_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")

any_text = st.text(st.characters(exclude_categories=()), max_size=40)
values = st.one_of(
    any_text,
    st.sampled_from(
        [*GRANTS, CLIENT_ID, SECRET, "read", "read write", "https://api.example", "v" * 43]
    ),
    st.sampled_from(
        ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "a.b.c", "x" * 5000]
    ),
)
forms = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), any_text),
    st.lists(values, max_size=3),
    max_size=8,
)
authorizations = st.one_of(
    st.none(),
    st.just(basic(CLIENT_ID, SECRET)),
    st.just(basic(CLIENT_ID, "wrong")),
    any_text,
    st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
)
content_types = st.one_of(st.just(FORM), st.none(), any_text)
# Printable values under known names: requests that get past parsing into the grants.
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
grant_forms = st.dictionaries(
    st.sampled_from(NAMES),
    st.lists(st.one_of(printable, values), min_size=1, max_size=1),
    max_size=6,
)
handlers = st.sampled_from(
    [handle_token_request, handle_revocation_request, handle_introspection_request]
)


async def _answer(handler: Handler, request: TokenRequest) -> TokenResponse:
    ctx = make_context()
    await ctx.store.clients.add(
        Client(
            client_id=CLIENT_ID,
            name="App",
            auth_method="client_secret_basic",
            secret_hash=hash_client_secret(SECRET),
            redirect_uris=("https://app.example/callback",),
            grant_types=frozenset(GRANTS[:4]),
            scopes=frozenset({"read", "write"}),
            legacy_password_grant=True,
        )
    )
    return await handler(request, ctx)


def check_shape(response: TokenResponse) -> None:
    event(f"{response.status} {response.body.get('error', '')}")
    assert response.headers["Cache-Control"] == "no-store"
    if response.status == 200:
        assert "error" not in response.body
        return
    assert response.status in (400, 401, 429)
    assert set(response.body) <= {"error", "error_description"}
    assert response.body["error"] in ERRORS
    assert _DESCRIPTION.fullmatch(response.body.get("error_description", ""))
    if response.status == 401:
        assert response.body["error"] == "invalid_client"
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(handlers, forms, authorizations, content_types)
def test_random_requests_get_spec_shaped_answers(
    handler: Handler,
    form: dict[str, list[str]],
    authorization: str | None,
    content_type: str | None,
) -> None:
    request = TokenRequest(form=form, authorization=authorization, content_type=content_type)
    check_shape(anyio.run(_answer, handler, request))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(GRANTS), grant_forms)
def test_random_grant_requests_from_an_authenticated_client(
    grant_type: str, form: dict[str, list[str]]
) -> None:
    # Past parsing and authentication, into the grants: random codes, tokens, scopes, users.
    form = {**form, "grant_type": [grant_type]}
    form.pop("client_secret", None)
    form.pop("client_assertion", None)
    request = TokenRequest(form=form, authorization=basic(CLIENT_ID, SECRET), content_type=FORM)
    check_shape(anyio.run(_answer, handle_token_request, request))
