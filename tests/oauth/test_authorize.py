"""The authorization endpoint core: ordered checks, safe error redirects, codes, consent."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
from core_context import ISSUER, ApiFactory, ClientFactory, Clock, make_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostiary.oauth import authorize
from ostiary.oauth.authorize import (
    AUTHORIZE_CHECKS,
    AuthorizationRedirectError,
    AuthorizationRequest,
    RequestDraft,
    approve,
    deny,
    describe_scopes,
    error_redirect,
    needs_consent,
    parse_authorization_request,
)
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.consent import revoke_consent
from ostiary.oauth.context import Context
from ostiary.oauth.errors import (
    InvalidRequest,
    OAuthError,
    SlowDown,
    UnknownClient,
    UnregisteredRedirectUri,
)
from ostiary.oauth.memory import MemoryStore
from ostiary.oauth.models import Client, LoginSession
from ostiary.oauth.pkce import verify_code_verifier
from ostiary.oauth.token_hash import hash_token

pytestmark = pytest.mark.anyio

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
CALLBACK = "https://app.example/callback"
NATIVE = "http://127.0.0.1/native"
WITH_QUERY = "https://app.example/cb?tenant=acme"
NOTES = "https://notes.example"

Overrides = str | list[str] | None


def query(**overrides: Overrides) -> dict[str, list[str]]:
    """A valid authorization request for client `app`; `name=None` drops a parameter."""
    params: dict[str, Overrides] = {
        "client_id": "app",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "read",
        "state": "xyz",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v if isinstance(v, list) else [v] for k, v in params.items() if v is not None}


@pytest.fixture
async def app(client_factory: ClientFactory) -> Client:
    return await client_factory(
        client_id="app",
        name="Notes App",
        redirect_uris=(CALLBACK, NATIVE, WITH_QUERY),
        scopes=frozenset({"openid", "read", "write"}),
    )


async def redirect_error(
    params: dict[str, list[str]], ctx: Context
) -> tuple[AuthorizationRedirectError, dict[str, list[str]]]:
    with pytest.raises(AuthorizationRedirectError) as caught:
        await parse_authorization_request(params, ctx)
    return caught.value, parse_qs(urlsplit(caught.value.location).query)


async def parsed(ctx: Context, **overrides: Overrides) -> AuthorizationRequest:
    return await parse_authorization_request(query(**overrides), ctx)


# --- a good request -------------------------------------------------------------------------


async def test_valid_request_parsed(ctx: Context, app: Client) -> None:
    req = await parsed(ctx, nonce="n-0S6", prompt="login consent", max_age="300", login_hint="ali")
    assert req.client == app
    assert req.redirect_uri == CALLBACK
    assert req.scope == {"read"}
    assert req.state == "xyz"
    assert req.code_challenge == CHALLENGE
    assert req.issuer == ISSUER
    assert req.resources == ()
    assert (req.nonce, req.prompt, req.max_age, req.login_hint) == (
        "n-0S6",
        frozenset({"login", "consent"}),
        300,
        "ali",
    )


async def test_no_scope_requested_gets_client_scopes(ctx: Context, app: Client) -> None:
    assert (await parsed(ctx, scope=None)).scope == app.scopes


async def test_empty_values_are_treated_as_omitted(ctx: Context, app: Client) -> None:
    # RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    req = await parsed(ctx, scope="", state="", nonce="", resource=[""])
    assert (req.scope, req.state, req.nonce, req.resources) == (app.scopes, None, None, ())


async def test_unrecognized_parameters_ignored(ctx: Context, app: Client) -> None:
    req = await parsed(ctx, foo=["1", "2"], request_uri="urn:x", response_mode="query")
    assert req.redirect_uri == CALLBACK


async def test_resources_may_repeat(ctx: Context, app: Client, api_factory: ApiFactory) -> None:
    await api_factory(NOTES, "https://billing.example")
    req = await parsed(ctx, resource=[NOTES, "https://billing.example", NOTES])
    assert req.resources == (NOTES, "https://billing.example")


async def test_loopback_port_chosen_at_run_time_accepted(ctx: Context, app: Client) -> None:
    req = await parsed(ctx, redirect_uri="http://127.0.0.1:51234/native")
    assert req.redirect_uri == "http://127.0.0.1:51234/native"


async def test_missing_redirect_uri_allowed_for_single_registered(
    ctx: Context, client_factory: ClientFactory
) -> None:
    await client_factory(client_id="solo", redirect_uris=(CALLBACK,))
    req = await parsed(ctx, client_id="solo", redirect_uri=None)
    assert req.redirect_uri == CALLBACK


async def test_scope_escalation_beyond_client_dropped(ctx: Context, app: Client) -> None:
    assert (await parsed(ctx, scope="read admin")).scope == {"read"}


# --- errors that must never be redirected -------------------------------------------------


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param(None, id="missing"),
        pytest.param(["app", "app"], id="repeated"),
        pytest.param(["app", "other"], id="repeated-different"),
        pytest.param("nobody", id="unknown"),
        pytest.param("app" * 1000, id="oversized"),
        pytest.param("app\n", id="control-char"),
        pytest.param("\u0430pp", id="homoglyph"),
    ],
)
async def test_bad_client_shown_on_error_page_not_redirected(
    ctx: Context, app: Client, client_id: Overrides
) -> None:
    with pytest.raises(UnknownClient) as caught:
        await parse_authorization_request(query(client_id=client_id), ctx)
    assert not caught.value.redirectable


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("https://evil.example/callback", id="foreign"),
        pytest.param(CALLBACK + "/../evil", id="path-traversal"),
        pytest.param(CALLBACK + "#frag", id="fragment"),
        pytest.param("http://app.example/callback", id="http-when-registered-https"),
        pytest.param("https://app.example:8443/callback", id="port-change-not-loopback"),
        pytest.param("http://localhost:5000/native", id="localhost-for-loopback"),
        pytest.param("/callback", id="relative"),
        pytest.param([CALLBACK, CALLBACK], id="repeated-even-if-registered"),
        pytest.param([CALLBACK, "https://evil.example"], id="repeated-second-foreign"),
        pytest.param(None, id="missing-with-several-registered"),
        pytest.param(CALLBACK + "x" * 5000, id="oversized"),
    ],
)
async def test_unverified_redirect_uri_never_redirected(
    ctx: Context, app: Client, redirect_uri: Overrides
) -> None:
    # Even with every later parameter wrong, the error page is shown: no open redirector.
    params = query(redirect_uri=redirect_uri, response_type="token", code_challenge=None)
    with pytest.raises(UnregisteredRedirectUri) as caught:
        await parse_authorization_request(params, ctx)
    assert not caught.value.redirectable


async def test_redirect_uri_of_another_client_rejected(
    ctx: Context, app: Client, client_factory: ClientFactory
) -> None:
    await client_factory(client_id="other", redirect_uris=("https://other.example/cb",))
    with pytest.raises(UnregisteredRedirectUri):
        await parsed(ctx, redirect_uri="https://other.example/cb")


async def test_client_checked_before_redirect_uri(ctx: Context, app: Client) -> None:
    with pytest.raises(UnknownClient):
        await parsed(ctx, client_id="nobody", redirect_uri="https://evil.example")


def test_string_instead_of_value_list_is_a_programmer_error() -> None:
    ctx = make_context()
    with pytest.raises(TypeError, match="sequence of values"):
        anyio.run(parse_authorization_request, {"client_id": "app"}, ctx)


# --- errors sent back to the client --------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"response_type": None}, "invalid_request", id="response_type-missing"),
        pytest.param({"response_type": ["code", "code"]}, "invalid_request", id="rt-repeated"),
        pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
        pytest.param({"response_type": "code id_token"}, "unsupported_response_type", id="hybrid"),
        pytest.param({"response_type": "CODE"}, "unsupported_response_type", id="rt-case"),
        pytest.param({"scope": "read  write"}, "invalid_scope", id="scope-double-space"),
        pytest.param({"scope": 're"ad'}, "invalid_scope", id="scope-quote"),
        pytest.param({"scope": "admin"}, "invalid_scope", id="scope-only-forbidden"),
        pytest.param({"scope": "a" * 3000}, "invalid_scope", id="scope-oversized"),
        pytest.param({"scope": ["read", "write"]}, "invalid_request", id="scope-repeated"),
        pytest.param({"code_challenge": None}, "invalid_request", id="pkce-missing"),
        pytest.param({"code_challenge_method": None}, "invalid_request", id="pkce-method-missing"),
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="pkce-plain"),
        pytest.param(
            {"code_challenge_method": "plain", "code_challenge": VERIFIER},
            "invalid_request",
            id="pkce-plain-with-verifier-as-challenge",
        ),
        pytest.param({"code_challenge_method": "s256"}, "invalid_request", id="pkce-method-case"),
        pytest.param({"code_challenge": "short"}, "invalid_request", id="pkce-short"),
        pytest.param({"code_challenge": "A" * 5000}, "invalid_request", id="pkce-oversized"),
        pytest.param(
            {"code_challenge": [CHALLENGE, CHALLENGE]}, "invalid_request", id="pkce-repeated"
        ),
        pytest.param(
            {"code_challenge_method": ["S256", "plain"]}, "invalid_request", id="method-repeated"
        ),
        pytest.param({"resource": NOTES + "#x"}, "invalid_target", id="resource-fragment"),
        pytest.param({"resource": "/notes"}, "invalid_target", id="resource-relative"),
        pytest.param(
            {"resource": [f"https://r{i}.example" for i in range(11)]},
            "invalid_target",
            id="resource-too-many",
        ),
        pytest.param({"nonce": "n" * 513}, "invalid_request", id="nonce-oversized"),
        pytest.param({"nonce": "n\x00"}, "invalid_request", id="nonce-control-char"),
        pytest.param({"nonce": ["a", "b"]}, "invalid_request", id="nonce-repeated"),
        pytest.param({"prompt": "none login"}, "invalid_request", id="prompt-none-combined"),
        pytest.param({"prompt": "sudo"}, "invalid_request", id="prompt-unknown"),
        pytest.param({"prompt": "login  consent"}, "invalid_request", id="prompt-double-space"),
        pytest.param({"max_age": "-1"}, "invalid_request", id="max_age-negative"),
        pytest.param({"max_age": "1e3"}, "invalid_request", id="max_age-not-integer"),
        pytest.param({"max_age": "9" * 10}, "invalid_request", id="max_age-oversized"),
        pytest.param({"max_age": "\u0663"}, "invalid_request", id="max_age-arabic-digit"),
        pytest.param({"login_hint": "x" * 513}, "invalid_request", id="login_hint-oversized"),
        pytest.param({"login_hint": "a\r\nb"}, "invalid_request", id="login_hint-crlf"),
        pytest.param({"junk": ["x"] * 200}, "invalid_request", id="too-many-parameters"),
        pytest.param({"junk": "x" * 70_000}, "invalid_request", id="oversized-unknown-parameter"),
    ],
)
async def test_bad_parameter_redirected_with_error_state_and_iss(
    ctx: Context, app: Client, overrides: dict[str, Overrides], error: str
) -> None:
    caught, response = await redirect_error(query(**overrides), ctx)
    assert caught.error.error == error
    assert caught.redirect_uri == CALLBACK
    assert caught.location.startswith(CALLBACK + "?")
    assert response["error"] == [error]
    assert response["state"] == ["xyz"]
    assert response["iss"] == [ISSUER]
    assert "code" not in response


async def test_client_without_code_grant_gets_unauthorized_client(
    ctx: Context, client_factory: ClientFactory
) -> None:
    await client_factory(
        client_id="service",
        redirect_uris=(CALLBACK,),
        grant_types=frozenset({"client_credentials"}),
    )
    _, response = await redirect_error(query(client_id="service"), ctx)
    assert response["error"] == ["unauthorized_client"]


@pytest.mark.parametrize(
    "state",
    [
        pytest.param("s" * 2049, id="oversized"),
        pytest.param("abc\r\nLocation: https://evil.example", id="header-injection"),
        pytest.param("caf\u00e9", id="non-ascii"),
        pytest.param(["one", "two"], id="repeated"),
    ],
)
async def test_bad_state_rejected_and_not_echoed(
    ctx: Context, app: Client, state: Overrides
) -> None:
    caught, response = await redirect_error(query(state=state), ctx)
    assert response["error"] == ["invalid_request"]
    assert "state" not in response
    assert caught.state is None


async def test_bad_state_not_echoed_in_earlier_errors(ctx: Context, app: Client) -> None:
    _, response = await redirect_error(query(state="a\nb", response_type="token"), ctx)
    assert response["error"] == ["unsupported_response_type"]
    assert "state" not in response


async def test_state_at_length_limit_accepted(ctx: Context, app: Client) -> None:
    assert (await parsed(ctx, state="s" * 2048)).state == "s" * 2048


async def test_error_redirect_keeps_registered_query(ctx: Context, app: Client) -> None:
    caught, _ = await redirect_error(query(redirect_uri=WITH_QUERY, response_type="token"), ctx)
    assert caught.location.startswith(WITH_QUERY + "&error=unsupported_response_type")


async def test_error_redirect_to_loopback_keeps_its_port(ctx: Context, app: Client) -> None:
    caught, _ = await redirect_error(
        query(redirect_uri="http://127.0.0.1:4000/native", code_challenge=None), ctx
    )
    assert caught.location.startswith("http://127.0.0.1:4000/native?error=invalid_request")


async def test_checks_run_in_order(ctx: Context, app: Client) -> None:
    # response_type before scope before PKCE before resource: the first failure is reported.
    bad = {"scope": "admin", "code_challenge": None, "resource": "x"}
    first, _ = await redirect_error(query(response_type="token", **bad), ctx)
    assert first.error.error == "unsupported_response_type"
    second, _ = await redirect_error(query(**bad), ctx)
    assert second.error.error == "invalid_scope"
    third, _ = await redirect_error(query(**{**bad, "scope": "read"}), ctx)
    assert "code_challenge" in third.error.description


async def test_non_redirectable_error_never_redirected_even_after_redirect_uri_check(
    ctx: Context, app: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A check added later (say, throttling) that raises a non-redirectable error must reach
    # the error page, not the client.
    async def check_throttle(draft: RequestDraft, ctx: Context) -> None:
        raise SlowDown("too many requests")

    monkeypatch.setattr(authorize, "AUTHORIZE_CHECKS", (*AUTHORIZE_CHECKS, check_throttle))
    with pytest.raises(SlowDown):
        await parsed(ctx)


def test_error_description_limited_to_rfc6749_charset() -> None:
    error = InvalidRequest('bad "value" \\ caf\u00e9\n')
    location = error_redirect(CALLBACK, error, None, ISSUER)
    assert parse_qs(urlsplit(location).query)["error_description"] == ["bad value  caf"]


def test_error_redirect_without_description_or_state() -> None:
    location = error_redirect(CALLBACK, OAuthError(), None, ISSUER)
    assert parse_qs(urlsplit(location).query) == {"error": ["invalid_request"], "iss": [ISSUER]}


# --- approve, deny, consent ----------------------------------------------------------------


async def test_approve_issues_single_use_code_bound_to_request(
    ctx: Context, app: Client, store: MemoryStore, clock: Clock, api_factory: ApiFactory
) -> None:
    await api_factory(NOTES)
    req = await parsed(ctx, scope="openid read", nonce="n1", resource=NOTES)
    location = await approve(req, "user-1", auth_time=clock.now - 5, ctx=ctx)
    response = parse_qs(urlsplit(location).query)
    assert location.startswith(CALLBACK + "?")
    assert response["state"] == ["xyz"]
    assert response["iss"] == [ISSUER]
    (value,) = response["code"]
    assert len(value) >= 43

    first = await store.codes.consume(hash_token(value), now=clock.now)
    code = first.code
    assert code is not None
    assert not first.replayed
    assert (code.client_id, code.user_id, code.redirect_uri) == ("app", "user-1", CALLBACK)
    assert code.scope == {"openid", "read"}
    assert code.resources == (NOTES,)
    assert code.nonce == "n1"
    assert code.auth_time == clock.now - 5
    assert (code.created_at, code.expires_at) == (clock.now, clock.now + 60)
    verify_code_verifier(VERIFIER, code.code_challenge)
    assert (await store.codes.consume(hash_token(value), now=clock.now)).replayed


async def test_code_stored_only_as_hash(ctx: Context, app: Client, store: MemoryStore) -> None:
    req = await parsed(ctx)
    location = await approve(req, "user-1", auth_time=0, ctx=ctx)
    (value,) = parse_qs(urlsplit(location).query)["code"]
    assert (await store.codes.consume(value, now=ctx.now())).code is None


async def test_code_expires_after_code_ttl(
    ctx: Context, app: Client, store: MemoryStore, clock: Clock
) -> None:
    req = await parsed(ctx)
    location = await approve(req, "user-1", auth_time=0, ctx=ctx)
    (value,) = parse_qs(urlsplit(location).query)["code"]
    clock.advance(60)
    assert (await store.codes.consume(hash_token(value), now=clock.now)).code is None


async def test_each_approval_is_a_new_code_and_grant(
    ctx: Context, app: Client, store: MemoryStore
) -> None:
    req = await parsed(ctx)
    first = parse_qs(urlsplit(await approve(req, "u", auth_time=0, ctx=ctx)).query)["code"][0]
    second = parse_qs(urlsplit(await approve(req, "u", auth_time=0, ctx=ctx)).query)["code"][0]
    assert first != second
    grants = {e.grant_id for e in store.audit.events if e.event == "code.issued"}
    assert len(grants) == 2


async def test_a_session_ended_while_answering_gets_no_code(
    ctx: Context, app: Client, store: MemoryStore, clock: Clock
) -> None:
    """Logged out in another tab while this request was answered: no code of the ended
    session is ever issued (Back-Channel Logout 1.0 §2.7 ends its grants)."""
    session = LoginSession(
        session_hash="h1",
        user_id="user-1",
        auth_time=clock.now,
        created_at=clock.now,
        expires_at=clock.now + 3600,
        sid="sid-1",
    )
    await store.sessions.add(session)
    req = await parsed(ctx)
    assert await store.sessions.end("h1", now=clock.now) is True
    location = await approve(req, "user-1", auth_time=clock.now, ctx=ctx, session=session)
    response = parse_qs(urlsplit(location).query)
    assert response == {
        "error": ["login_required"],
        "error_description": ["the login session ended; sign in again"],
        "state": ["xyz"],
        "iss": [ISSUER],
    }
    assert not [e for e in store.audit.events if e.event == "code.issued"]


async def test_approve_keeps_registered_query_and_encodes_state(ctx: Context, app: Client) -> None:
    req = await parsed(ctx, redirect_uri=WITH_QUERY, state="a b&c=d?e#")
    location = await approve(req, "user-1", auth_time=0, ctx=ctx)
    assert location.startswith(WITH_QUERY + "&code=")
    response = parse_qs(urlsplit(location).query)
    assert response["tenant"] == ["acme"]
    assert response["state"] == ["a b&c=d?e#"]
    assert urlsplit(location).fragment == ""


async def test_approve_without_state_sends_no_state(ctx: Context, app: Client) -> None:
    req = await parsed(ctx, state=None)
    response = parse_qs(urlsplit(await approve(req, "user-1", auth_time=0, ctx=ctx)).query)
    assert set(response) == {"code", "iss"}


async def test_approve_to_loopback_uses_requested_port(ctx: Context, app: Client) -> None:
    req = await parsed(ctx, redirect_uri="http://127.0.0.1:7000/native")
    location = await approve(req, "user-1", auth_time=0, ctx=ctx)
    assert location.startswith("http://127.0.0.1:7000/native?code=")


async def test_consent_needed_first_then_remembered(ctx: Context, app: Client) -> None:
    req = await parsed(ctx, scope="read")
    assert await needs_consent(req, "user-1", ctx)
    await approve(req, "user-1", auth_time=0, ctx=ctx)
    assert not await needs_consent(req, "user-1", ctx)
    assert await needs_consent(req, "user-2", ctx)
    assert await needs_consent(await parsed(ctx, scope="read write"), "user-1", ctx)


async def test_revoked_consent_asked_again(ctx: Context, app: Client) -> None:
    req = await parsed(ctx)
    await approve(req, "user-1", auth_time=0, ctx=ctx)
    await revoke_consent("user-1", "app", ctx=ctx)
    assert await needs_consent(req, "user-1", ctx)


async def test_approve_once_without_remembering(
    ctx: Context, app: Client, store: MemoryStore
) -> None:
    req = await parsed(ctx)
    await approve(req, "user-1", auth_time=0, ctx=ctx, remember=False)
    assert await needs_consent(req, "user-1", ctx)
    consent_events = [e for e in store.audit.events if e.event == "consent.granted"]
    assert [e.detail["remembered"] for e in consent_events] == [False]


async def test_user_may_grant_less_than_requested(
    ctx: Context, app: Client, store: MemoryStore
) -> None:
    req = await parsed(ctx, scope="read write")
    # The user unticks "write"; "admin" was never requested and cannot sneak in.
    location = await approve(
        req, "user-1", auth_time=0, ctx=ctx, scope=frozenset({"read", "admin"})
    )
    (value,) = parse_qs(urlsplit(location).query)["code"]
    code = (await store.codes.consume(hash_token(value), now=ctx.now())).code
    assert code is not None
    assert code.scope == {"read"}
    assert await needs_consent(req, "user-1", ctx)
    assert not await needs_consent(await parsed(ctx, scope="read"), "user-1", ctx)


async def test_audit_records_consent_and_code_without_secrets(
    ctx: Context, app: Client, store: MemoryStore
) -> None:
    req = await parsed(ctx, scope="openid read")
    location = await approve(req, "user-1", auth_time=0, ctx=ctx)
    (value,) = parse_qs(urlsplit(location).query)["code"]
    assert [e.event for e in store.audit.events] == ["consent.granted", "code.issued"]
    issued = store.audit.events[1]
    assert (issued.client_id, issued.user_id) == ("app", "user-1")
    assert issued.grant_id
    assert issued.detail["scope"] == "openid read"
    logged = repr(store.audit.events)
    assert value not in logged
    assert hash_token(value) not in logged
    assert CHALLENGE not in logged


async def test_deny_redirects_access_denied(ctx: Context, app: Client, store: MemoryStore) -> None:
    req = await parsed(ctx)
    response = parse_qs(urlsplit(deny(req)).query)
    assert response["error"] == ["access_denied"]
    assert response["state"] == ["xyz"]
    assert response["iss"] == [ISSUER]
    assert "code" not in response


def test_describe_scopes_in_plain_words_known_first() -> None:
    config = ServerConfig(issuer=ISSUER)
    described = describe_scopes(frozenset({"write", "openid", "email", "read"}), config)
    assert described == [
        ("openid", "Sign you in with your account"),
        ("email", "See your email address"),
        ("read", 'Use the "read" permission'),
        ("write", 'Use the "write" permission'),
    ]
    assert describe_scopes(frozenset(), config) == []


def test_describe_scopes_uses_configured_words() -> None:
    config = ServerConfig(issuer=ISSUER, scope_descriptions={"read": "Read your notes"})
    assert describe_scopes(frozenset({"read"}), config) == [("read", "Read your notes")]


# --- any input at all ----------------------------------------------------------------------

NAMES = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "nonce",
    "prompt",
    "max_age",
    "login_hint",
]
INTERESTING = [
    "app",
    CALLBACK,
    NATIVE,
    "http://127.0.0.1:9/native",
    "code",
    "token",
    "read",
    "read write",
    CHALLENGE,
    "S256",
    "plain",
    NOTES,
    "none",
    "login",
    "0",
    "",
]
values = st.one_of(st.sampled_from(INTERESTING), st.text(max_size=40))
param_sets = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), st.text(max_size=10)),
    st.lists(values, max_size=3),
    max_size=14,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(param_sets, st.booleans())
def test_random_requests_raise_only_oauth_errors(
    params: dict[str, list[str]], start_valid: bool
) -> None:
    if start_valid:
        params = {**query(), **params}
    ctx = make_context()

    async def run() -> None:
        await ctx.store.clients.add(
            Client(
                client_id="app",
                name="App",
                auth_method="none",
                redirect_uris=(CALLBACK, NATIVE),
                scopes=frozenset({"read", "write"}),
            )
        )
        try:
            req = await parse_authorization_request(params, ctx)
        except AuthorizationRedirectError as exc:
            assert is_registered(exc.redirect_uri, (CALLBACK, NATIVE))
            assert exc.location.startswith(exc.redirect_uri + "?error=")
        except OAuthError as exc:
            # Only the client and redirect URI checks fail without a verified place to go.
            assert isinstance(exc, UnknownClient | UnregisteredRedirectUri)
            assert not exc.redirectable
        else:
            assert is_registered(req.redirect_uri, (CALLBACK, NATIVE))
            assert req.scope <= {"read", "write"}
            assert params["response_type"] == ["code"]
            assert params["code_challenge_method"] == ["S256"]

    anyio.run(run)


def is_registered(uri: str, registered: Sequence[str]) -> bool:
    return uri in registered or (
        uri.startswith("http://127.0.0.1:") and uri.endswith("/native") and NATIVE in registered
    )
