"""The authorization endpoint (RFC 6749 §4.1.1-§4.1.2, OAuth 2.1 §4.1), sans-IO.

`parse_authorization_request` runs `AUTHORIZE_CHECKS` in order over the query parameters. The
client and its redirect URI come first: until both are verified an error is shown to the user
and never redirected (RFC 6749 §4.1.2.1); after that, every error is an
`AuthorizationRedirectError` the server sends back to the client. Once the user has signed in,
the server calls `needs_consent`, then `approve` or `deny`, each returning the redirect URL.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, urlencode

from .claims import CLAIM_DESCRIPTIONS, claims_for_scope
from .claims_request import individual_claims, parse_claims_request, required_subjects
from .config import ServerConfig
from .consent import consent_detail, has_consent, record_consent
from .context import Context
from .errors import (
    AccessDenied,
    InvalidRequest,
    LoginRequired,
    OAuthError,
    UnauthorizedClient,
    UnknownClient,
    UnregisteredRedirectUri,
    UnsupportedResponseType,
)
from .id_token import is_openid_request, read_id_token_hint
from .models import AuditEvent, AuthorizationCode, ClaimsRequest, Client, LoginSession
from .pkce import parse_code_challenge
from .redirect_uri import match_redirect_uri
from .resources import parse_resources, registered_apis, scope_for_apis
from .scopes import format_scope, narrow_scope, parse_scope
from .subject import subject_for
from .token_hash import hash_token, new_token_value

Params = Mapping[str, Sequence[str]]

MAX_CLIENT_ID_LENGTH: Final = 255
MAX_STATE_LENGTH: Final = 2048
MAX_NONCE_LENGTH: Final = 512
MAX_LOGIN_HINT_LENGTH: Final = 512
MAX_PARAMETERS: Final = 100  # values counted one by one, recognised or not

# OpenID Connect Core §3.1.2.1 prompt values; parsed here, acted on by the OIDC layer.
PROMPT_VALUES: Final = frozenset({"none", "login", "consent", "select_account"})
RESPONSE_MODES: Final = frozenset({"query", "form_post"})
MAX_UI_LOCALES_LENGTH: Final = 256

# RFC 6749 Appendix A: client_id and state are VSCHAR = %x20-7E.
_VSCHAR = re.compile(r"[\x20-\x7e]+")
# RFC 6749 §4.1.2.1: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_NOT_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_MAX_AGE = re.compile(r"[0-9]{1,9}")
_LOCALES = re.compile(r"[A-Za-z0-9\-]{1,35}( [A-Za-z0-9\-]{1,35})*")


@dataclass(frozen=True, kw_only=True)
class AuthorizationRequest:
    """A checked authorization request, ready for login, consent and `approve`/`deny`."""

    client: Client
    redirect_uri: str  # verified: exact match, or a loopback URI differing only in port
    scope: frozenset[str]  # requested ∩ the client's scopes (all of them when none asked)
    state: str | None
    code_challenge: str  # S256
    issuer: str  # sent back as `iss` (RFC 9207)
    resources: tuple[str, ...] = ()  # RFC 8707
    nonce: str | None = None
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    login_hint: str | None = None
    response_mode: str = "query"  # or "form_post" (OAuth 2.0 Form Post Response Mode)
    # the `sub` of a valid id_token_hint (OpenID Connect Core §3.1.2.1), as the client saw it
    hinted_subject: str | None = None
    claims: ClaimsRequest | None = None  # OpenID Connect Core §5.5; None: none asked for

    @property
    def required_subjects(self) -> frozenset[str] | None:
        """The only `sub` values this request may be answered for (Core §5.5.1), or None."""
        return required_subjects(self.claims)


class AuthorizationRedirectError(Exception):
    """An error to send to the client at its verified redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(
        self,
        error: OAuthError,
        redirect_uri: str,
        state: str | None,
        *,
        issuer: str,
        response_mode: str = "query",
    ) -> None:
        super().__init__(error.error)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state
        self.issuer = issuer
        self.response_mode = response_mode

    @property
    def location(self) -> str:
        """The URL to redirect the user agent to."""
        return error_redirect(self.redirect_uri, self.error, self.state, self.issuer)


@dataclass(kw_only=True)
class RequestDraft:
    """The request while `AUTHORIZE_CHECKS` run: each check fills in what it verified.

    Mutable on purpose, and never leaves this module: `parse_authorization_request` returns
    the frozen `AuthorizationRequest` built from it.
    """

    params: Params
    state: str | None  # echoed in error redirects only when well-formed
    client: Client | None = None
    redirect_uri: str | None = None
    scope: frozenset[str] = frozenset()
    code_challenge: str = ""
    resources: tuple[str, ...] = ()
    nonce: str | None = None
    prompt: frozenset[str] = field(default_factory=frozenset)
    max_age: int | None = None
    login_hint: str | None = None
    response_mode: str = "query"
    hinted_subject: str | None = None
    claims: ClaimsRequest | None = None

    def verified_client(self) -> Client:
        if self.client is None:
            raise RuntimeError("check_client must run first")
        return self.client

    def verified_redirect_uri(self) -> str:
        if self.redirect_uri is None:
            raise RuntimeError("check_redirect_uri must run first")
        return self.redirect_uri


Check = Callable[[RequestDraft, Context], Awaitable[None]]


def _single(params: Params, name: str, error: type[OAuthError] = InvalidRequest) -> str | None:
    """One parameter's value; None when absent or empty (RFC 6749 §3.1: no value = omitted)."""
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        # RFC 6749 §3.1: request parameters MUST NOT be included more than once.
        raise error(f"{name} must not be repeated")
    return values[0] or None


def _is_state(value: str) -> bool:
    return len(value) <= MAX_STATE_LENGTH and _VSCHAR.fullmatch(value) is not None


def _echo_state(params: Params) -> str | None:
    """The state to put in an error redirect: only a single, well-formed value."""
    values = params.get("state")
    if not values or len(values) != 1 or not _is_state(values[0]):
        return None
    return values[0]


async def check_client(draft: RequestDraft, ctx: Context) -> None:
    client_id = _single(draft.params, "client_id", UnknownClient)
    if client_id is None:
        raise UnknownClient("client_id is required")
    if len(client_id) > MAX_CLIENT_ID_LENGTH or _VSCHAR.fullmatch(client_id) is None:
        raise UnknownClient("client_id is not valid")
    client = await ctx.store.clients.get(client_id)
    if client is None:
        raise UnknownClient("unknown client_id")
    draft.client = client


async def check_redirect_uri(draft: RequestDraft, ctx: Context) -> None:
    requested = _single(draft.params, "redirect_uri", UnregisteredRedirectUri)
    draft.redirect_uri = match_redirect_uri(requested, draft.verified_client().redirect_uris)


async def check_response_type(draft: RequestDraft, ctx: Context) -> None:
    response_type = _single(draft.params, "response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required")
    # OAuth 2.1 keeps only the code flow: no implicit `token`, no hybrid combinations.
    if response_type != "code":
        raise UnsupportedResponseType("response_type must be code")


async def check_grant_type(draft: RequestDraft, ctx: Context) -> None:
    if "authorization_code" not in draft.verified_client().grant_types:
        raise UnauthorizedClient("this client may not use the authorization code grant")


async def check_scope(draft: RequestDraft, ctx: Context) -> None:
    requested = parse_scope(_single(draft.params, "scope"))
    draft.scope = narrow_scope(requested, draft.verified_client().scopes)


async def check_pkce(draft: RequestDraft, ctx: Context) -> None:
    draft.code_challenge = parse_code_challenge(
        _single(draft.params, "code_challenge"), _single(draft.params, "code_challenge_method")
    )


async def check_resource(draft: RequestDraft, ctx: Context) -> None:
    # RFC 8707 §2: the one parameter that may repeat.
    draft.resources = parse_resources([v for v in draft.params.get("resource", ()) if v])
    # Refused now rather than at the token endpoint, after the user has consented.
    scope_for_apis(draft.scope, await registered_apis(draft.resources, ctx))


async def check_state(draft: RequestDraft, ctx: Context) -> None:
    state = _single(draft.params, "state")
    if state is not None and not _is_state(state):
        raise InvalidRequest("state must be at most 2048 printable ASCII characters")


async def check_nonce(draft: RequestDraft, ctx: Context) -> None:
    nonce = _single(draft.params, "nonce")
    if nonce is not None and (len(nonce) > MAX_NONCE_LENGTH or _VSCHAR.fullmatch(nonce) is None):
        raise InvalidRequest("nonce must be at most 512 printable ASCII characters")
    draft.nonce = nonce


async def check_prompt(draft: RequestDraft, ctx: Context) -> None:
    prompt = _single(draft.params, "prompt")
    if prompt is None:
        return
    values = frozenset(prompt.split(" "))
    if not values <= PROMPT_VALUES:
        raise InvalidRequest("prompt has an unknown value")
    # OpenID Connect Core §3.1.2.1: `none` cannot be combined with any other value.
    if "none" in values and len(values) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values")
    draft.prompt = values


async def check_max_age(draft: RequestDraft, ctx: Context) -> None:
    max_age = _single(draft.params, "max_age")
    if max_age is None:
        return
    if _MAX_AGE.fullmatch(max_age) is None:
        raise InvalidRequest("max_age must be a non-negative number of seconds")
    draft.max_age = int(max_age)


async def check_login_hint(draft: RequestDraft, ctx: Context) -> None:
    login_hint = _single(draft.params, "login_hint")
    if login_hint is not None and (
        len(login_hint) > MAX_LOGIN_HINT_LENGTH or not login_hint.isprintable()
    ):
        raise InvalidRequest("login_hint is too long or not printable")
    draft.login_hint = login_hint


async def check_response_mode(draft: RequestDraft, ctx: Context) -> None:
    # OAuth 2.0 Multiple Response Types §2.1 and Form Post Response Mode §2; fragment
    # belongs to the implicit and hybrid flows, which are not offered.
    mode = _single(draft.params, "response_mode")
    if mode is None:
        return
    if mode not in RESPONSE_MODES:
        raise InvalidRequest("response_mode must be query or form_post")
    draft.response_mode = mode


async def check_ui_locales(draft: RequestDraft, ctx: Context) -> None:
    # OpenID Connect Core §3.1.2.1: a preference, honoured as far as the pages can (they
    # are in English); checked for shape only so that junk is not carried along.
    locales = _single(draft.params, "ui_locales")
    if locales is not None and (
        len(locales) > MAX_UI_LOCALES_LENGTH or _LOCALES.fullmatch(locales) is None
    ):
        raise InvalidRequest("ui_locales must be space-separated BCP 47 language tags")


async def check_id_token_hint(draft: RequestDraft, ctx: Context) -> None:
    # OpenID Connect Core §3.1.2.1: an ID token this server issued to this client, expired
    # or not; the session it names is checked by the server against the signed-in user.
    hint = _single(draft.params, "id_token_hint")
    if hint is None:
        return
    claims = await read_id_token_hint(hint, ctx)
    if claims is None or claims["aud"] != draft.verified_client().client_id:
        raise InvalidRequest("id_token_hint is not an ID token this server issued to you")
    draft.hinted_subject = claims["sub"]


async def check_claims(draft: RequestDraft, ctx: Context) -> None:
    # OpenID Connect Core §5.5: only for OpenID Connect requests; the scope was narrowed to
    # the client's, and so are the claims (see claims_request.py).
    text = _single(draft.params, "claims")
    if text is None:
        return
    client = draft.verified_client()
    request = parse_claims_request(text, client.scopes)
    if not is_openid_request(draft.scope) or not (request.userinfo or request.id_token):
        return
    draft.claims = request


async def check_size(draft: RequestDraft, ctx: Context) -> None:
    """Bound what unrecognised parameters may add: they are ignored (RFC 6749 §3.1), not free."""
    count = sum(len(values) for values in draft.params.values())
    size = sum(len(k) + sum(len(v) for v in vs) for k, vs in draft.params.items())
    if count > MAX_PARAMETERS or size > ctx.config.max_request_size:
        raise InvalidRequest("the request has too many or too large parameters")


AUTHORIZE_CHECKS: tuple[Check, ...] = (
    check_client,
    check_redirect_uri,  # first: decides whether later errors may redirect
    check_response_mode,  # next: decides how they are sent
    check_response_type,
    check_grant_type,
    check_scope,
    check_pkce,
    check_resource,
    check_state,
    check_nonce,
    check_prompt,
    check_max_age,
    check_login_hint,
    check_ui_locales,
    check_id_token_hint,
    check_claims,
    check_size,
)


async def parse_authorization_request(params: Params, ctx: Context) -> AuthorizationRequest:
    """Check an authorization request's query (or form) parameters.

    Raises `OAuthError` for errors to show on an error page (unknown client, unverified
    redirect URI), `AuthorizationRedirectError` for errors to send back to the client.
    """
    for name, values in params.items():
        if isinstance(values, str | bytes):
            raise TypeError(f"params[{name!r}] must be a sequence of values, not a string")
    draft = RequestDraft(params=params, state=_echo_state(params))
    for check in AUTHORIZE_CHECKS:
        try:
            await check(draft, ctx)
        except OAuthError as exc:
            if exc.redirectable and draft.redirect_uri is not None:
                raise AuthorizationRedirectError(
                    exc,
                    draft.redirect_uri,
                    draft.state,
                    issuer=ctx.config.issuer,
                    response_mode=draft.response_mode,
                ) from exc
            raise
    return AuthorizationRequest(
        client=draft.verified_client(),
        redirect_uri=draft.verified_redirect_uri(),
        scope=draft.scope,
        state=draft.state,
        code_challenge=draft.code_challenge,
        issuer=ctx.config.issuer,
        resources=draft.resources,
        nonce=draft.nonce,
        prompt=draft.prompt,
        max_age=draft.max_age,
        login_hint=draft.login_hint,
        response_mode=draft.response_mode,
        hinted_subject=draft.hinted_subject,
        claims=draft.claims,
    )


async def needs_consent(req: AuthorizationRequest, user_id: str, ctx: Context) -> bool:
    """True when the user must be asked: the request wants more than they approved before."""
    return not await has_consent(
        user_id, req.client.client_id, req.scope, ctx=ctx, claims=individual_claims(req.claims)
    )


def is_requested_subject(req: AuthorizationRequest, user_id: str, config: ServerConfig) -> bool:
    """False when the `claims` parameter names a `sub` and this user is not it (Core §5.5.1:
    the server must not answer with tokens for a different user)."""
    accepted = req.required_subjects
    return accepted is None or subject_for(req.client, user_id, config) in accepted


async def approve(
    req: AuthorizationRequest,
    user_id: str,
    *,
    auth_time: int,
    ctx: Context,
    remember: bool = True,
    scope: frozenset[str] | None = None,
    session: LoginSession | None = None,
) -> str:
    """Issue an authorization code for the signed-in user; return the redirect URL.

    `scope` is what the user approved when the consent page let them leave some out; the code
    carries the request's scope narrowed to it. `remember` keeps the approval for next time.
    `session`, the login session the user is in, is told the client took part (so the client
    hears when it ends) and lends the code, and the tokens it buys, its `sid`.
    """
    granted = req.scope if scope is None else req.scope & scope
    client_id = req.client.client_id
    if not is_requested_subject(req, user_id, ctx.config):
        return other_subject(req)
    claims = individual_claims(req.claims)
    if remember:
        await record_consent(user_id, client_id, granted, ctx=ctx, claims=claims)
    now = ctx.now()
    if session is not None:
        await ctx.store.sessions.join(session.session_hash, client_id, now=now)
    if not remember:
        await ctx.store.audit.record(
            AuditEvent(
                event="consent.granted",
                at=now,
                client_id=client_id,
                user_id=user_id,
                detail=consent_detail(granted, claims, remembered=False),
            )
        )
    value = new_token_value()
    code = AuthorizationCode(
        code_hash=hash_token(value),
        grant_id=new_token_value(16),
        client_id=client_id,
        user_id=user_id,
        redirect_uri=req.redirect_uri,
        scope=granted,
        code_challenge=req.code_challenge,
        resources=req.resources,
        nonce=req.nonce,
        auth_time=auth_time,
        created_at=now,
        expires_at=now + ctx.config.code_ttl,
        claims=req.claims,
        sid=session.sid if session is not None else None,
    )
    if not await ctx.store.codes.put(code):
        # the session ended (logout in another tab, say) while this request was answered
        ended = LoginRequired("the login session ended; sign in again")
        return error_redirect(req.redirect_uri, ended, req.state, req.issuer)
    await ctx.store.audit.record(
        AuditEvent(
            event="code.issued",
            at=now,
            client_id=client_id,
            user_id=user_id,
            grant_id=code.grant_id,
            detail={"scope": format_scope(granted), "resources": list(req.resources)},
        )
    )
    # RFC 6749 §4.1.2 code and state; RFC 9207 §2 iss.
    return _with_query(req.redirect_uri, {"code": value, "state": req.state, "iss": req.issuer})


def other_subject(req: AuthorizationRequest) -> str:
    """The redirect URL refusing a request whose `claims` parameter names another user than
    the one signed in (OpenID Connect Core §5.5.1: no tokens for a different user)."""
    refused = AccessDenied("the signed-in user is not the one the claims parameter names")
    return error_redirect(req.redirect_uri, refused, req.state, req.issuer)


def deny(req: AuthorizationRequest) -> str:
    """The redirect URL telling the client the user refused (RFC 6749 §4.1.2.1)."""
    error = AccessDenied("the user denied the request")
    return error_redirect(req.redirect_uri, error, req.state, req.issuer)


def error_redirect(redirect_uri: str, error: OAuthError, state: str | None, issuer: str) -> str:
    """An error response at a verified redirect URI: error, description, state and iss."""
    description = _NOT_DESCRIPTION.sub("", error.description) or None
    return _with_query(
        redirect_uri,
        {"error": error.error, "error_description": description, "state": state, "iss": issuer},
    )


def describe_scopes(scope: frozenset[str], config: ServerConfig) -> list[tuple[str, str]]:
    """(scope, plain-words description) for the consent page, known scopes first."""
    known = [(s, text) for s, text in config.scope_descriptions.items() if s in scope]
    unknown = sorted(scope - config.scope_descriptions.keys())
    other = [(s, f'Use the "{s}" permission') for s in unknown]
    return known + other


def describe_claims(req: AuthorizationRequest) -> list[tuple[str, str]]:
    """(claim, plain words) for the claims asked for one by one that the scopes shown on the
    consent page do not already cover."""
    extra = individual_claims(req.claims) - claims_for_scope(req.scope)
    return [(name, CLAIM_DESCRIPTIONS.get(name, f'Your "{name}"')) for name in sorted(extra)]


def _with_query(uri: str, params: Mapping[str, str | None]) -> str:
    """`uri` with `params` added to its query, which is kept as registered (RFC 6749 §3.1.2)."""
    query = urlencode([(k, v) for k, v in params.items() if v is not None])
    if "?" not in uri:
        return f"{uri}?{query}"
    return f"{uri}{query}" if uri.endswith(("?", "&")) else f"{uri}&{query}"


def response_fields(location: str, redirect_uri: str) -> list[tuple[str, str]]:
    """The response parameters of a redirect `location` built for `redirect_uri` (by
    `approve`, `deny` or `error_redirect`), to send as a form post instead (Form Post Response
    Mode §2): the form's action is `redirect_uri` itself, with its registered query."""
    if not location.startswith(redirect_uri):
        raise ValueError("location was not built for this redirect_uri")
    query = location[len(redirect_uri) :].lstrip("?&")
    return parse_qsl(query, keep_blank_values=True)
