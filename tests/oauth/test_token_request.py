"""The token endpoint's request checks: content type, repeated, empty, oversized, odd values.

Every refusal is RFC 6749 §5.2 JSON with the exact code and status, `Cache-Control: no-store`,
and a store left exactly as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from core_context import ClientFactory
from token_requests import FORM, basic, confidential_client, snapshot, token_request

from ostiary.oauth.context import Context
from ostiary.oauth.errors import (
    InvalidClient,
    InvalidRequest,
    OAuthError,
    SlowDown,
)
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.token_endpoint import TokenRequest, TokenResponse, handle_token_request
from ostiary.oauth.token_request import (
    MAX_LONG_VALUE_LENGTH,
    MAX_PARAMETERS,
    MAX_VALUE_LENGTH,
    error_response,
    is_form_content_type,
    parse_form,
)

pytestmark = pytest.mark.anyio

CC = {"grant_type": "client_credentials", "scope": "read"}


async def send(
    ctx: Context, store: MemoryStore, params: Any, auth: str | None, **kw: Any
) -> TokenResponse:
    before = snapshot(store)
    response = await handle_token_request(token_request(params, authorization=auth, **kw), ctx)
    assert snapshot(store) == before
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    return response


@pytest.fixture
async def auth(client_factory: ClientFactory) -> str:
    client, secret = await confidential_client(client_factory)
    return basic(client.client_id, secret)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded; charset=ISO-8859-1",
        "application/x-www-form-urlencodedx",
    ],
    ids=["missing", "empty", "json", "text", "multipart", "latin1", "lookalike"],
)
async def test_wrong_content_type_is_invalid_request(
    ctx: Context, store: MemoryStore, auth: str, content_type: str | None
) -> None:
    response = await send(ctx, store, CC, auth, content_type=content_type)
    assert (response.status, response.body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    "content_type",
    [
        FORM,
        "Application/X-WWW-Form-Urlencoded",
        f"{FORM}; charset=UTF-8",
        f'{FORM};charset="utf-8"',
    ],
)
def test_form_content_types_accepted(content_type: str) -> None:
    assert is_form_content_type(content_type)


@pytest.mark.parametrize("name", ["grant_type", "scope", "client_id", "code", "refresh_token"])
async def test_repeated_parameter_is_invalid_request(
    ctx: Context, store: MemoryStore, auth: str, name: str
) -> None:
    params = {**CC, name: ["a", "b"]}
    response = await send(ctx, store, params, auth)
    assert (response.status, response.body["error"]) == (400, "invalid_request")
    assert "repeated" in response.body["error_description"]


async def test_repeated_identical_values_are_still_repeated(
    ctx: Context, store: MemoryStore, auth: str
) -> None:
    params = {**CC, "grant_type": ["client_credentials", "client_credentials"]}
    response = await send(ctx, store, params, auth)
    assert (response.status, response.body["error"]) == (400, "invalid_request")


def test_resource_may_repeat() -> None:
    form = parse_form(token_request({"resource": ["https://a.example", "https://b.example"]}))
    assert form.resources == ("https://a.example", "https://b.example")


def test_empty_values_count_as_absent() -> None:
    # RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    form = parse_form(token_request({"scope": "", "code": ["", "x"], "state": []}))
    assert dict(form.params) == {"code": "x"}


@pytest.mark.parametrize(
    "params",
    [{"scope": "read"}, {"grant_type": ""}, {"grant_type": [""]}],
    ids=["missing", "empty", "empty-list"],
)
async def test_missing_grant_type_is_invalid_request(
    ctx: Context, store: MemoryStore, auth: str, params: dict[str, Any]
) -> None:
    response = await send(ctx, store, params, auth)
    assert (response.status, response.body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("grant_type", ["implicit", "token", "urn:x:unknown", "CLIENT_CREDENTIALS"])
async def test_unknown_grant_type_is_unsupported_grant_type(
    ctx: Context, store: MemoryStore, auth: str, grant_type: str
) -> None:
    response = await send(ctx, store, {"grant_type": grant_type}, auth)
    assert (response.status, response.body["error"]) == (400, "unsupported_grant_type")


async def test_unknown_grant_type_needs_client_authentication_first(
    ctx: Context, store: MemoryStore
) -> None:
    response = await send(ctx, store, {"grant_type": "implicit"}, None)
    assert (response.status, response.body["error"]) == (401, "invalid_client")


@pytest.mark.parametrize(
    ("name", "length"),
    [("scope", MAX_VALUE_LENGTH + 1), ("client_assertion", MAX_LONG_VALUE_LENGTH + 1)],
)
async def test_oversized_value_is_invalid_request(
    ctx: Context, store: MemoryStore, auth: str, name: str, length: int
) -> None:
    response = await send(ctx, store, {**CC, name: "a" * length}, auth)
    assert (response.status, response.body["error"]) == (400, "invalid_request")


async def test_too_many_parameters_is_invalid_request(
    ctx: Context, store: MemoryStore, auth: str
) -> None:
    params = {**CC, **{f"p{i}": "v" for i in range(MAX_PARAMETERS)}}
    response = await send(ctx, store, params, auth)
    assert (response.status, response.body["error"]) == (400, "invalid_request")


async def test_too_many_values_is_invalid_request(
    ctx: Context, store: MemoryStore, auth: str
) -> None:
    params = {**CC, "resource": [f"https://r{i}.example" for i in range(MAX_PARAMETERS)]}
    response = await send(ctx, store, params, auth)
    assert (response.status, response.body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("value", ["a\x00b", "a\nb", "\x7f", "\ud800"])
@pytest.mark.parametrize("name", ["scope", "unknown_parameter"])
async def test_control_characters_are_invalid_request(
    ctx: Context, store: MemoryStore, auth: str, name: str, value: str
) -> None:
    # NUL or a lone surrogate would otherwise fail later, in a database driver.
    response = await send(ctx, store, {**CC, name: value}, auth)
    assert (response.status, response.body["error"]) == (400, "invalid_request")


async def test_unknown_parameters_are_ignored(ctx: Context, auth: str) -> None:
    response = await handle_token_request(
        token_request({**CC, "foo": "bar"}, authorization=auth), ctx
    )
    assert response.status == 200


async def test_malformed_form_shapes_are_invalid_request(ctx: Context, store: MemoryStore) -> None:
    for form in ({"grant_type": "client_credentials"}, {"grant_type": [b"x"]}, {1: ["x"]}):
        request = TokenRequest(form=form, authorization=None, content_type=FORM)  # type: ignore[arg-type]
        before = snapshot(store)
        response = await handle_token_request(request, ctx)
        assert snapshot(store) == before
        assert (response.status, response.body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("error", "status", "extra"),
    [
        (InvalidRequest('bad "quote" \\ and \u00e9 and\nnewline'), 400, {}),
        (
            InvalidClient("nope"),
            401,
            {"WWW-Authenticate": 'Basic realm="ostiary", charset="UTF-8"'},
        ),
        (SlowDown("wait", retry_after=30), 429, {"Retry-After": "30"}),
        (OAuthError(), 400, {}),
    ],
)
def test_error_response_shape(error: OAuthError, status: int, extra: dict[str, str]) -> None:
    response = error_response(error)
    assert response.status == status
    assert response.headers == {"Cache-Control": "no-store", "Pragma": "no-cache", **extra}
    assert response.body["error"] == error.error
    description = response.body.get("error_description", "")
    # RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E only.
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in description)
    assert set(response.body) <= {"error", "error_description"}
