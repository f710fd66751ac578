"""`GET /openapi.json` describes exactly the app's routes. That every response the server
tests see matches it is checked on each of them (server_app.py hooks openapi_check into the
test client); Schemathesis fuzzes a live server with it in tests/e2e/test_schemathesis.py."""

from __future__ import annotations

import httpx
import jsonschema_rs
import pytest
import schemathesis
from openapi_check import check_response, description, resolve
from server_app import ISSUER, Served
from starlette.routing import Mount, Route

from ostiary.server.app import create_app
from ostiary.server.openapi import openapi_document
from ostiary.server.settings import Settings

pytestmark = pytest.mark.anyio

METHODS = ("get", "post", "put", "patch", "delete", "options", "head", "trace")


def app_operations(settings: Settings) -> set[tuple[str, str]]:
    operations: set[tuple[str, str]] = set()
    for route in create_app(settings).routes:
        if isinstance(route, Mount):
            # a mounted folder of files: one GET operation for any path below it
            operations.add((f"{route.path}/{{path}}", "get"))
        else:
            assert isinstance(route, Route), route
            for method in route.methods or ():
                if method != "HEAD":  # Starlette adds HEAD to every GET route itself
                    operations.add((route.path, method.lower()))
    return operations


def described_operations() -> set[tuple[str, str]]:
    doc = description()
    return {(path, m) for path, item in doc["paths"].items() for m in item if m in METHODS}


def test_every_route_is_described_and_every_description_is_a_route(settings: Settings) -> None:
    routes = app_operations(settings)
    described = described_operations()
    assert routes - described == set(), "routes the description leaves out"
    assert described - routes == set(), "described operations the app does not have"


def test_the_description_is_openapi_3_1_that_schemathesis_loads() -> None:
    doc = openapi_document(ISSUER)
    assert doc["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(doc)
    loaded = {(op.path, op.method.lower()) for op in (r.ok() for r in schema.get_all_operations())}
    assert loaded == described_operations()
    for name, item in doc["components"]["schemas"].items():
        jsonschema_rs.validator_for(resolve(item, doc))  # raises on a broken schema
        assert "type" in item, name
    ids = [item[m]["operationId"] for item in doc["paths"].values() for m in item]
    assert len(ids) == len(set(ids))


async def test_served_at_openapi_json_with_this_issuer(served: Served) -> None:
    response = await served.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["servers"] == [{"url": ISSUER}]
    assert document == openapi_document(ISSUER)


def _response(method: str, path: str, status: int, **kwargs: object) -> httpx.Response:
    request = httpx.Request(method, f"{ISSUER}{path}")
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "status", "body", "fragment"),
    [
        ("POST", "/token", 418, {"error": "x"}, "status not described"),
        ("POST", "/token", 200, {"token_type": "Bearer"}, "access_token"),
        ("POST", "/token", 400, {"error": 'bad"quote'}, "does not match"),
        ("GET", "/jwks.json", 200, {"keys": [{"kty": "oct", "kid": "a", "k": "c2VjcmV0"}]}, "not"),
        ("GET", "/nowhere", 200, {}, "not described"),
        ("DELETE", "/token", 200, {}, "method not described"),
    ],
    ids=[
        "unknown-status",
        "token-without-access-token",
        "bad-error-chars",
        "secret-jwk",
        "path",
        "method",
    ],
)
def test_the_checker_refuses_what_the_description_does_not_allow(
    method: str, path: str, status: int, body: dict[str, object], fragment: str
) -> None:
    response = _response(method, path, status, json=body)
    with pytest.raises(AssertionError, match=fragment):
        check_response(response)
