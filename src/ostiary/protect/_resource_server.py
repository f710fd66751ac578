"""`ResourceServer`: verify the access tokens an API receives, configured by issuer URL alone."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

import httpx
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Scope

from ostiary.jose import (
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidIssuer,
    InvalidType,
    JoseError,
    MissingClaim,
    jwt,
)
from ostiary.jose.dpop import DPOP_ALGORITHMS

from ._credentials import Credentials, from_authorization, from_parameter, only_one
from ._discovery import ASYMMETRIC_ALGORITHMS, IssuerMetadata, check_issuer_url, discover
from ._dpop import ReplayCache, check_proof
from ._errors import (
    InsufficientScope,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    ProtectError,
    Unavailable,
    challenges,
)
from ._fetch import FetchError
from ._introspection import Introspector
from ._jwks import RemoteJWKSet
from ._refetch import Refetcher

log = logging.getLogger("ostiary.protect")

Claims = dict[str, Any]
Dependency = Callable[[Request], Awaitable[Claims]]

# RFC 9068 §2.2: the claims every JWT access token carries (exp, iss and aud checked apart).
REQUIRED_CLAIMS: Final = ("sub", "client_id", "iat", "jti")
# Verified JWTs remembered by their exact text, so a client reusing its token (the usual
# case) costs no signature check until the token expires or the issuer's keys change.
VERIFIED_CACHE_SIZE: Final = 4096
STATE_KEY: Final = "token_claims"  # `request.state.token_claims`, set by ProtectMiddleware

_FORM: Final = "application/x-www-form-urlencoded"


class ResourceServer:
    """Accepts the issuer's access tokens for one API.

    ```python
    api = ResourceServer(issuer="https://auth.example", audience="https://notes.example")

    @app.get("/notes")
    async def notes(claims: dict = Depends(api.require_scopes("notes:read"))): ...
    ```

    JWT access tokens (RFC 9068) are checked locally against the issuer's JWKS. Opaque ones
    are introspected (RFC 7662) when `client_id` and `client_secret` are given. Tokens are
    read from the `Authorization` header only, unless `token_in_query` / `token_in_form`.
    DPoP-bound tokens (RFC 9449) are accepted with their proof (`dpop=False` to refuse the
    scheme, `dpop_required=True` to refuse plain bearer tokens); `public_url` is the API's
    external origin when a proxy changes what the app sees, for the proofs' `htu`.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] | None = None,
        leeway: float = 10,
        client_id: str | None = None,
        client_secret: str | None = None,
        introspection_cache_ttl: float = 30,
        token_in_query: bool = False,
        token_in_form: bool = False,
        realm: str | None = None,
        dpop: bool = True,
        dpop_required: bool = False,
        public_url: str | None = None,
        refetch_interval: float = 30,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_issuer_url(issuer)
        if not audience:
            raise ValueError("audience is this API's identifier, e.g. https://notes.example")
        if (client_id is None) != (client_secret is None):
            raise ValueError("introspection needs both client_id and client_secret")
        if algorithms is not None:
            refused = set(algorithms) - set(ASYMMETRIC_ALGORITHMS)
            if refused or not algorithms:
                raise ValueError(
                    f"algorithms must be asymmetric signature algorithms, not {sorted(refused)}"
                )
        if not 0 <= leeway <= 300:
            raise ValueError("leeway is a few seconds of clock skew, at most 300")
        if dpop_required and not dpop:
            raise ValueError("dpop_required needs dpop")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.realm = realm
        self.token_in_query = token_in_query
        self.token_in_form = token_in_form
        self.dpop = dpop
        self.dpop_required = dpop_required
        self.public_url = public_url.rstrip("/") if public_url else None
        self._replay = ReplayCache()
        self._algorithms = tuple(algorithms) if algorithms is not None else None
        self._client = (client_id, client_secret) if client_id and client_secret else None
        self._introspection_cache_ttl = introspection_cache_ttl
        self._refetch_interval = refetch_interval
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        self._clock = clock
        self._metadata: IssuerMetadata | None = None
        self._discovery = Refetcher(self._discover, interval=refetch_interval, clock=clock)
        self._jwks: RemoteJWKSet | None = None
        self._introspector: Introspector | None = None
        self._allowed: tuple[str, ...] = ()
        self._verified: dict[str, tuple[Claims, int, float]] = {}  # token -> claims, gen, exp

    # -- configuration from the issuer -----------------------------------------------------

    async def _discover(self) -> bool:
        try:
            metadata = await discover(self.issuer, self._http)
        except FetchError as exc:
            log.warning("issuer discovery failed: %s", exc)
            return False
        allowed = metadata.algorithms
        if self._algorithms is not None:
            allowed = tuple(alg for alg in self._algorithms if alg in allowed)
        if not allowed:
            log.warning("the issuer signs with none of the algorithms this API accepts")
            return False
        self._allowed = allowed
        self._jwks = RemoteJWKSet(
            metadata.jwks_uri,
            http=self._http,
            refetch_interval=self._refetch_interval,
            clock=self._clock,
        )
        if self._client is not None and metadata.introspection_endpoint is not None:
            self._introspector = Introspector(
                metadata.introspection_endpoint,
                client_id=self._client[0],
                client_secret=self._client[1],
                http=self._http,
                cache_ttl=self._introspection_cache_ttl,
                clock=self._clock,
            )
        self._metadata = metadata
        return True

    async def metadata(self) -> IssuerMetadata:
        """The issuer's metadata, discovered on first use; `Unavailable` while it cannot be."""
        if self._metadata is None and not await self._discovery.run():
            raise Unavailable(
                "the issuer's metadata cannot be fetched; try again later",
                retry_after=max(1, math.ceil(self._refetch_interval)),
            )
        assert self._metadata is not None  # noqa: S101 - set by a successful _discover
        return self._metadata

    # -- verification ----------------------------------------------------------------------

    async def verify(
        self, credentials: Credentials, *, method: str = "GET", url: str | None = None
    ) -> Claims:
        """The claims of a valid access token for this API; a `ProtectError` otherwise.

        A DPoP request's proof is checked against `method` and `url` (the request's own).
        """
        try:
            return await self._verify(credentials, method, url)
        except ProtectError as exc:
            if credentials.scheme == "DPoP":
                exc.scheme = "DPoP"
            raise

    async def _verify(self, credentials: Credentials, method: str, url: str | None) -> Claims:
        scheme = credentials.scheme
        if scheme == "DPoP" and not self.dpop:
            raise InvalidRequest("this API accepts Bearer tokens")
        if scheme == "Bearer" and self.dpop_required:
            raise InvalidToken("this API accepts only DPoP-bound tokens, with their proof")
        token = credentials.token
        if token.count(".") == 2:
            claims = await self._verify_jwt(token)
        else:
            claims = await self._introspect(token)
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if scheme == "Bearer":
            if jkt is not None:
                # RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused.
                raise InvalidToken("the access token is bound to a DPoP key; send it with DPoP")
            return claims
        if not isinstance(jkt, str):
            raise InvalidToken("the access token is not DPoP-bound; send it as a Bearer token")
        if credentials.dpop_headers > 1:
            # RFC 9449 §4.3 check 1, "not more than one DPoP HTTP request header field": a
            # proof that fails §4.3 is invalid_dpop_proof, 401 in the DPoP challenge (§7.1),
            # as the token endpoint answers it invalid_dpop_proof in its JSON body (§5)
            raise InvalidDPoPProof("send one DPoP header")
        if credentials.dpop_proof is None:
            raise InvalidDPoPProof("a DPoP request needs a DPoP header with a proof")
        if url is None:
            raise ValueError("verify() needs the request's url to check a DPoP proof")
        check_proof(
            credentials.dpop_proof,
            jkt=jkt,
            access_token=token,
            method=method,
            url=url,
            replay=self._replay,
            clock=self._clock,
        )
        return claims

    async def _verify_jwt(self, token: str) -> Claims:
        jwks = self._jwks
        cached = self._verified.get(token)
        if cached is not None and jwks is not None:
            claims, generation, exp = cached
            # the signature, iss, aud and typ are properties of the exact text, checked once;
            # time is not, and neither is the key's still being published
            if self._clock() - self.leeway < exp and jwks.is_current(generation):
                return dict(claims)
            del self._verified[token]
        await self.metadata()
        jwks = self._jwks
        assert jwks is not None  # noqa: S101 - set with the metadata
        generation = jwks.generation
        claims = await self._decode_jwt(token, jwks)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[token] = (claims, generation, claims["exp"])
        return dict(claims)

    async def _decode_jwt(self, token: str, jwks: RemoteJWKSet) -> Claims:
        try:
            header = jwt.unverified_header(token)
        except JoseError:
            raise InvalidToken("the access token is malformed") from None
        alg = header.get("alg")
        if alg not in self._allowed:
            raise InvalidToken("the access token is signed with an algorithm this API refuses")
        kid = header.get("kid")
        if kid is not None:
            if type(kid) is not str:
                raise InvalidToken("the access token is malformed")
            key = await jwks.key(kid)
            if key is None:
                raise InvalidToken(
                    "the access token is signed by a key the issuer does not publish"
                )
            keys: Any = key
        else:
            keys = await jwks.keyset()
        try:
            return jwt.decode(
                token,
                keys,
                algorithms=self._allowed,
                audience=self.audience,
                issuer=self.issuer,
                typ="at+jwt",  # RFC 9068 §4: never accept an ID token or another JWT here
                leeway=self.leeway,
                required=REQUIRED_CLAIMS,
                now=self._clock(),
            )
        except JoseError as exc:
            raise InvalidToken(_describe(exc)) from None

    async def _introspect(self, token: str) -> Claims:
        await self.metadata()
        if self._introspector is None:
            raise InvalidToken("the access token is not a JWT, and this API only accepts JWTs")
        answer = await self._introspector.introspect(token)
        if answer is None:
            raise InvalidToken("the access token is not active")
        now = self._clock()
        exp = answer.get("exp")
        if type(exp) is int and now - self.leeway >= exp:
            raise InvalidToken("the access token has expired")
        if answer.get("iss", self.issuer) != self.issuer:
            raise InvalidToken("the access token was issued by another issuer")
        aud = answer.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self.audience not in audiences:
            raise InvalidToken("the access token is not meant for this API")
        return answer

    # -- requests --------------------------------------------------------------------------

    async def credentials(self, request: Request) -> Credentials | None:
        """The token of a request: the Authorization header, or where explicitly enabled."""
        found: dict[str, Credentials | None] = {
            "Authorization header": header_credentials(request.scope)
        }
        if not self.token_in_query and not self.token_in_form:
            return found["Authorization header"]
        if self.token_in_query:
            found["query"] = from_parameter(request.query_params.getlist("access_token"), "query")
        if self.token_in_form and request.method not in ("GET", "HEAD"):
            content_type = request.headers.get("content-type", "").partition(";")[0].strip()
            if content_type.lower() == _FORM:
                form = await request.form()
                values = [v for v in form.getlist("access_token") if isinstance(v, str)]
                found["form body"] = from_parameter(values, "form body")
        return only_one(found)

    async def authenticate(self, request: Request, scopes: Iterable[str] = ()) -> Claims:
        """The verified claims of a request's token, holding every scope in `scopes`.

        Raises `ProtectError`; `headers()` gives its response headers (the dependencies and
        the middleware answer for you).
        """
        state = request.scope.get("state")
        claims = state.get(STATE_KEY) if isinstance(state, dict) else None
        if not isinstance(claims, dict):
            found = await self.credentials(request)
            if found is None:
                raise InvalidToken()  # no credentials: the bare challenge (RFC 6750 §3.1)
            url = self.request_url(request) if found.scheme == "DPoP" else None
            claims = await self.verify(found, method=request.method, url=url)
        require_scopes(claims, scopes)
        return claims

    def request_url(self, request: Request) -> str:
        """The URL a DPoP proof's `htu` must name: `public_url` + path, or the request's."""
        if self.public_url is not None:
            return self.public_url + request.url.path
        return str(request.url.replace(query=None, fragment=None))

    def require_scopes(self, *scopes: str) -> Dependency:
        """A FastAPI dependency: the verified claims, or a 400/401/403/503 `HTTPException`.

        `Depends(api.require_scopes())` asks for any valid token.
        """

        async def dependency(request: Request) -> Claims:
            try:
                return await self.authenticate(request, scopes)
            except ProtectError as exc:
                raise HTTPException(
                    exc.status, detail=exc.description or exc.error, headers=self.headers(exc)
                ) from None

        return dependency

    def headers(self, error: ProtectError) -> dict[str, str]:
        """The response headers for a refusal: the RFC 6750 challenge, or Retry-After."""
        if isinstance(error, Unavailable):
            return {"Retry-After": str(error.retry_after), "Cache-Control": "no-store"}
        shown = error if error.description or not isinstance(error, InvalidToken) else None
        algs = DPOP_ALGORITHMS if self.dpop else ()
        return {"WWW-Authenticate": challenges(shown, realm=self.realm, dpop_algs=algs)}

    async def aclose(self) -> None:
        """Stop background fetches and close the HTTP client this object made."""
        await self._discovery.aclose()
        if self._jwks is not None:
            await self._jwks.aclose()
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> ResourceServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.shield(self.aclose())


def scopes_of(claims: Claims) -> frozenset[str]:
    """The scope tokens of a token's `scope` claim (RFC 9068 §2.2.3, RFC 8693 §4.2)."""
    scope = claims.get("scope")
    return frozenset(scope.split()) if isinstance(scope, str) else frozenset()


def header_credentials(scope: Scope) -> Credentials | None:
    """The token of a request's Authorization header (and its DPoP proof), or None."""
    # ASGI header names are lower case; reading them raw skips building a Headers object
    authorization: list[str] = []
    dpop: list[str] = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization.append(value.decode("latin-1"))
        elif name == b"dpop":
            dpop.append(value.decode("latin-1"))
    return from_authorization(authorization, dpop)


def require_scopes(claims: Claims, scopes: Iterable[str]) -> None:
    """`InsufficientScope` naming what is missing, unless the token has every scope."""
    needed = tuple(scopes)
    if needed and not set(needed) <= scopes_of(claims):
        error = InsufficientScope(needed)
        if isinstance(claims.get("cnf"), dict):
            error.scheme = "DPoP"  # a bound token came with DPoP: answer in that challenge
        raise error


def _describe(exc: JoseError) -> str:
    # Say which check failed, never what the token holds: the caller sent it and knows.
    if isinstance(exc, ExpiredToken):
        return "the access token has expired"
    if isinstance(exc, ImmatureToken):
        return "the access token is not valid yet"
    if isinstance(exc, InvalidAudience):
        return "the access token is not meant for this API"
    if isinstance(exc, InvalidIssuer):
        return "the access token was issued by another issuer"
    if isinstance(exc, InvalidType):
        return "the token is not an access token (typ must be at+jwt)"
    if isinstance(exc, MissingClaim) and exc.claim in (*REQUIRED_CLAIMS, "exp", "iss", "aud"):
        return f"the access token has no {exc.claim} claim"
    return "the access token could not be verified"
