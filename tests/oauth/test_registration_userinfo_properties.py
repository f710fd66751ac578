"""Random requests to the dynamic client registration (RFC 7591/7592) and UserInfo cores:
a spec-shaped answer every time, never an exception, and nothing stored by a refusal."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
from core_context import START, make_context
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ostiary.oauth.context import Context
from ostiary.oauth.registration import (
    RegistrationRequest,
    RegistrationResponse,
    handle_registration_request,
    issue_initial_access_token,
)
from ostiary.oauth.token_request import TokenRequest
from ostiary.oauth.userinfo import UserInfoResponse, handle_userinfo_request

REGISTRATION_KEY = b"r" * 32
_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
REGISTRATION_ERRORS = {
    "invalid_request",
    "invalid_token",
    "invalid_redirect_uri",
    "invalid_client_metadata",
    "invalid_software_statement",
    "invalid_client",
}
USERINFO_ERRORS = {"invalid_request", "invalid_token", "insufficient_scope"}

any_text = st.text(st.characters(exclude_categories=()), max_size=30)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), any_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=12,
)
METADATA_NAMES = [
    "redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "client_name",
    "scope",
    "jwks",
    "jwks_uri",
    "software_statement",
    "id_token_signed_response_alg",
    "userinfo_signed_response_alg",
    "subject_type",
    "sector_identifier_uri",
    "post_logout_redirect_uris",
    "client_id",
    "client_secret",
]
plausible = st.one_of(
    json_values,
    st.sampled_from(
        [
            ["https://app.example/callback"],
            ["http://127.0.0.1/cb"],
            ["authorization_code", "refresh_token"],
            ["client_credentials"],
            ["code"],
            "none",
            "client_secret_basic",
            "private_key_jwt",
            "read write",
            "RS256",
            "pairwise",
            {"keys": []},
        ]
    ),
)
metadata = st.dictionaries(st.one_of(st.sampled_from(METADATA_NAMES), any_text), plausible)
bodies = st.one_of(
    metadata.map(lambda m: json.dumps(m).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=80),
)
content_types = st.one_of(
    st.just("application/json"), st.just("application/json; charset=utf-8"), st.none(), any_text
)
methods = st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH"])
client_ids = st.one_of(st.none(), any_text, st.just("c_unknown"))


def _context(open_registration: bool) -> Context:
    return make_context(registration_key=REGISTRATION_KEY, open_registration=open_registration)


def _check_registration(response: RegistrationResponse) -> None:
    event(f"{response.status} {(response.body or {}).get('error', '')}")
    assert response.headers["Cache-Control"] == "no-store"
    if response.status in (200, 201):
        assert response.body is not None and response.body["client_id"]
        return
    if response.status == 204:
        assert response.body is None
        return
    assert response.status in (400, 401, 403, 404), response
    assert response.body is not None
    assert set(response.body) <= {"error", "error_description"}
    assert response.body["error"] in REGISTRATION_ERRORS, response.body
    assert _DESCRIPTION.fullmatch(response.body.get("error_description", ""))
    if response.status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    methods,
    client_ids,
    bodies,
    content_types,
    st.sampled_from(["none", "initial", "garbage", "basic"]),
    st.booleans(),
)
def test_random_registration_requests_get_spec_shaped_answers(  # noqa: PLR0917 - hypothesis
    method: str,
    client_id: str | None,
    body: bytes,
    content_type: str | None,
    credential: str,
    open_registration: bool,
) -> None:
    ctx = _context(open_registration)
    token = issue_initial_access_token(ctx.config, ttl=600, now=START)
    authorization = {
        "none": None,
        "initial": f"Bearer {token}",
        "garbage": "Bearer " + "x" * 20,
        "basic": "Basic YTpi",
    }[credential]
    request = RegistrationRequest(
        method=method,
        client_id=client_id,
        authorization=authorization,
        content_type=content_type,
        body=body,
        address="203.0.113.9",
    )

    async def run() -> None:
        response = await handle_registration_request(request, ctx)
        _check_registration(response)
        stored = await ctx.store.clients.list()
        if response.status == 201:
            assert len(stored) == 1
        else:
            assert stored == [] or response.status in (200, 204)

    anyio.run(run)


VALID_METADATA = {
    "redirect_uris": ["https://app.example/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "client_name": "Fuzzed",
    "scope": "read",
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadata, st.booleans())
def test_random_metadata_from_an_authorized_registrant(
    overrides: dict[str, Any], start_valid: bool
) -> None:
    # Past authentication and JSON parsing, into the metadata checks: a valid registration
    # with random members changed, or random members alone.
    body = {**VALID_METADATA, **overrides} if start_valid else overrides
    ctx = _context(open_registration=False)
    token = issue_initial_access_token(ctx.config, ttl=600, now=START)
    request = RegistrationRequest(
        method="POST",
        client_id=None,
        authorization=f"Bearer {token}",
        content_type="application/json",
        body=json.dumps(body).encode(),
    )

    async def run() -> None:
        response = await handle_registration_request(request, ctx)
        _check_registration(response)
        stored = await ctx.store.clients.list()
        assert len(stored) == (1 if response.status == 201 else 0)
        if response.status == 201:
            assert response.body is not None
            (client,) = stored
            assert client.client_id == response.body["client_id"]
            secret = response.body.get("client_secret")
            if secret is not None:  # stored only as a hash
                assert client.secret_hash is not None and secret not in client.secret_hash

    anyio.run(run)


def _check_userinfo(response: UserInfoResponse) -> None:
    event(f"{response.status} {(response.body or {}).get('error', '')}")
    assert response.status in (400, 401, 403), response  # no valid token is ever generated
    assert response.headers["WWW-Authenticate"].startswith(("Bearer", "DPoP"))
    if response.body is not None:
        assert set(response.body) <= {"error", "error_description"}
        assert response.body["error"] in USERINFO_ERRORS
        assert _DESCRIPTION.fullmatch(response.body.get("error_description", ""))


forms = st.dictionaries(
    st.one_of(st.just("access_token"), any_text),
    st.lists(st.one_of(any_text, st.just("a.b.c"), st.just("x" * 5000)), max_size=3),
    max_size=4,
)
authorizations = st.one_of(
    st.none(),
    any_text,
    st.sampled_from(["Bearer", "Bearer ", "Bearer a.b.c", "DPoP a.b.c", "Basic YTpi"]),
    any_text.map(lambda t: "Bearer " + t),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["GET", "POST"]),
    forms,
    authorizations,
    content_types.map(lambda c: c or "application/x-www-form-urlencoded"),
    st.lists(any_text, max_size=2),
)
def test_random_userinfo_requests_get_bearer_errors(
    method: str,
    form: dict[str, list[str]],
    authorization: str | None,
    content_type: str,
    dpop: list[str],
) -> None:
    request = TokenRequest(
        form=form if method == "POST" else {},
        authorization=authorization,
        content_type=content_type,
        address="203.0.113.9",
        dpop=dpop,
    )
    _check_userinfo(anyio.run(_userinfo, request, method))


async def _userinfo(request: TokenRequest, method: str) -> UserInfoResponse:
    return await handle_userinfo_request(request, make_context(), method=method)
