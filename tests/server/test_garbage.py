"""Garbage to every route: no request ever gets a 500 (or an exception out of the app).

The transport re-raises anything the app does not handle, so a crash fails the test even
where Starlette would have answered 500. Runs on SQLite and PostgreSQL: a value one database
swallows (a NUL byte, a lone surrogate) may break the other.
"""

from __future__ import annotations

import random
import string
from urllib.parse import quote_from_bytes

import httpx
import pytest
from server_app import ISSUER, Pkce, Served, authorize_params, form_of

pytestmark = pytest.mark.anyio

Headers = list[tuple[bytes, bytes]]

PATHS = [
    "/authorize",
    "/login",
    "/consent",
    "/token",
    "/revoke",
    "/introspect",
    "/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
    "/userinfo",
    "/register",
    "/register/c_unknown",
    "/logout",
    "/static/ostiary.css",
    "/static/../settings.py",
    "/static/%2e%2e/app.py",
    "//authorize",
    "/authorize/",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-16",
    "application/json",
    "multipart/form-data; boundary=zz",
    "text/plain",
    "",
    "\u00ff/\u00fe",
]
NASTY_VALUES = [
    "",
    "\x00",
    "a\x00b",
    "%00",
    "\ud800",
    "%ed%a0%80",
    "%ff",
    "é",
    "😀" * 50,
    "a" * 5000,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "null",
    "[]",
    "{}",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "a.b.c",
    "a.b.c.d.e",
    "Basic",
    " ",
    "\r\nX-Injected: 1",
]
PARAMETERS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "nonce",
    "resource",
    "login_hint",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "token",
    "token_type_hint",
    "username",
    "password",
    "csrf_token",
    "pending",
    "decision",
]


def garbage_pairs(rng: random.Random, extra: list[str]) -> list[tuple[str, str]]:
    names = PARAMETERS + extra
    pairs = []
    for _ in range(rng.randint(0, 8)):
        name = rng.choice(names) if rng.random() < 0.8 else rng.choice(NASTY_VALUES)
        pairs.append((name, rng.choice([*NASTY_VALUES, random_text(rng)])))
    return pairs


def encode_pairs(pairs: list[tuple[str, str]]) -> bytes:
    """urlencode, but lone surrogates go out as the (invalid) UTF-8 bytes they would be."""

    def part(text: str) -> str:
        return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")

    return "&".join(f"{part(k)}={part(v)}" for k, v in pairs).encode("ascii")


def random_text(rng: random.Random) -> str:
    alphabet = string.printable + "éß€\u202e\ufeff"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def random_body(rng: random.Random, pairs: list[tuple[str, str]]) -> bytes:
    kind = rng.random()
    if kind < 0.5:
        return encode_pairs(pairs)
    if kind < 0.7:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
    if kind < 0.85:  # raw, unescaped text with surrogates escaped away
        return "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")
    return b"&".join(quote_from_bytes(bytes([rng.getrandbits(8)])).encode() for _ in range(9))


def random_headers(rng: random.Random) -> Headers:
    headers: Headers = []
    choices = [
        (b"authorization", b"Basic " + bytes(rng.getrandbits(8) for _ in range(12))),
        (b"authorization", b"Basic Og=="),  # ":" only
        (b"authorization", b"Basic " + b"QQ" * 3000),
        (b"authorization", b"Bearer \xff"),
        (b"cookie", b"ostiary_session=" + random_text(rng).encode("utf-8")),
        (b"cookie", b"ostiary_csrf=" + b"A" * 43 + b"; ostiary_session=a.b.c"),
        (b"cookie", b"\xff\xfe=\x00"),
        (b"origin", random_text(rng).encode("utf-8")),
        (b"origin", b"null"),
        (b"content-type", rng.choice(CONTENT_TYPES).encode("utf-8")),
        (b"host", b"evil.example"),
        (b"x-forwarded-for", b"1.2.3.4"),
    ]
    for _ in range(rng.randint(0, 4)):
        headers.append(rng.choice(choices))
    return headers


async def send(
    served: Served, method: str, path: str, *, query: bytes, body: bytes, headers: Headers
) -> httpx.Response:
    request = httpx.Request(
        method, httpx.URL(ISSUER + path, query=query), content=body, headers=headers
    )
    return await served.http.send(request)


def check(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    assert "Traceback" not in response.text, what


async def test_random_requests_never_crash(served: Served) -> None:
    client, _ = await served.add_client()
    await served.add_user("alice")
    rng = random.Random(20261129)  # fixed: a failure reproduces
    extra = [client.client_id]
    for index in range(600):
        method = rng.choices(METHODS, weights=[35, 45, 2, 2, 2, 2, 2])[0]
        path = rng.choice(PATHS[:6]) if rng.random() < 0.8 else rng.choice(PATHS)
        pairs = garbage_pairs(rng, extra)
        query = encode_pairs(pairs) if rng.random() < 0.6 else b""
        body = random_body(rng, garbage_pairs(rng, extra)) if method != "GET" else b""
        headers = random_headers(rng)
        response = await send(served, method, path, query=query, body=body, headers=headers)
        check(response, f"#{index} {method} {path}?{query[:200]!r} body={body[:200]!r}")


@pytest.mark.parametrize("value", NASTY_VALUES)
async def test_nasty_values_in_every_parameter_of_a_valid_request(
    served: Served, value: str
) -> None:
    """One good request per endpoint, each parameter in turn replaced by a nasty value."""
    client, secret = await served.add_client()
    await served.add_user("bob")
    auth = httpx.BasicAuth(client.client_id, secret or "")
    base_requests = {
        "/authorize": authorize_params(client, Pkce.new()),
        "/token": {"grant_type": "client_credentials", "scope": "read"},
        "/revoke": {"token": "abc", "token_type_hint": "access_token"},
        "/introspect": {"token": "abc"},
    }
    for path, params in base_requests.items():
        for name in params:
            changed = {**params, name: value}
            if path == "/authorize":
                response = await served.http.get(path, params=_encodable(changed))
            else:
                response = await served.http.post(path, data=_encodable(changed), auth=auth)
            check(response, f"{path} {name}={value!r}")
    # the login and consent forms, with a real CSRF token and pending request
    page = await served.http.get("/authorize", params=base_requests["/authorize"])
    form = form_of(page).inputs
    for name in ["username", "password", "pending", "csrf_token"]:
        data = {**form, "username": "bob", "password": "pw", name: value}
        check(await served.http.post("/login", data=_encodable(data)), f"login {name}")
    for name in ["pending", "csrf_token", "decision"]:
        data = {**form, "decision": "allow", name: value}
        check(await served.http.post("/consent", data=_encodable(data)), f"consent {name}")


def _encodable(params: dict[str, str]) -> dict[str, str]:
    # httpx encodes str as UTF-8, which a lone surrogate cannot be: send its replacement
    return {k: v.encode("utf-8", "replace").decode("utf-8") for k, v in params.items()}


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/authorize", b"client_id=%00&redirect_uri=%00"),
        ("/login", b"username=a%00b&password=x&csrf_token=x"),
        ("/token", b"grant_type=client_credentials&client_id=a%00b&client_secret=x"),
        ("/token", b"grant_type=password&username=%00&password=%00"),
        ("/introspect", b"token=%ed%a0%80"),
    ],
)
async def test_nul_and_surrogates_never_reach_the_database(
    served: Served, path: str, raw: bytes
) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if path == "/authorize":
        response = await served.http.get(f"{path}?{raw.decode()}")
    else:
        response = await served.http.post(path, content=raw, headers=headers)
    check(response, path)
