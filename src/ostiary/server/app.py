"""`create_app`: the ASGI application. Routes translate HTTP to the core and back.

```python
app = create_app(Settings())               # migrates and opens OSTIARY_DATABASE_URL on start
app = create_app(settings, store=MemoryStore(), clock=lambda: 1_900_000_000)  # tests
```
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ostiary.oauth import throttling
from ostiary.oauth.context import Context
from ostiary.oauth.errors import DatabaseUnavailable, TemporarilyUnavailable
from ostiary.oauth.metadata import (
    AUTHORIZATION_PATH,
    END_SESSION_PATH,
    INTROSPECTION_PATH,
    JWKS_PATH,
    METADATA_PATH,
    OPENID_CONFIGURATION_PATH,
    REGISTRATION_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    USERINFO_PATH,
)
from ostiary.oauth.store import PenaltyStore, RateCounterStore, Store, ThrottleStore
from ostiary.store import migrate, open_store

from . import metrics, render
from .backchannel import DeliveryPolicy, LogoutSender
from .body_limit import BodyLimit
from .cors import CLIENT_METHODS, PUBLIC_PATHS, ClientOrigins
from .csrf import CsrfProtection
from .health import DatabaseHealth
from .key_secret import derive_key, load_key_secret, with_derived_keys
from .keyring import DbKeyRing, ensure_signing_keys, server_algorithms
from .openapi import HEALTH_PATH, METRICS_PATH, OPENAPI_PATH
from .pages import STATIC, Pages
from .passwords import Argon2PasswordHasher
from .purge import Purger
from .rate_limit import CLIENT_AUTH_MEMORY, SharedClientAuthLimiter, SharedRateLimiter
from .redis_counters import (
    REDIS_ERRORS,
    RedisPenaltyStore,
    RedisRateCounters,
    RedisThrottleStore,
)
from .routes_authorize import authorize
from .routes_consent import consent
from .routes_login import login_page_or_form
from .routes_logout import logout
from .routes_metadata import cors_preflight, jwks, metadata, openid_provider_metadata
from .routes_operations import health, openapi
from .routes_operations import metrics as metrics_endpoint
from .routes_registration import manage_client, register_client
from .routes_select_account import select_account
from .routes_token import introspect, revoke, token
from .routes_userinfo import userinfo
from .runtime import Runtime
from .security_headers import SecurityHeaders
from .sessions import CookiePolicy
from .settings import Settings
from .signed_values import ValueSigner
from .throttle import LoginThrottle

log = logging.getLogger("ostiary.server")


def _now() -> int:
    return int(time.time())


@dataclass(frozen=True, kw_only=True)
class _Options:
    settings: Settings
    store: Store | None
    clock: Callable[[], int]
    passwords: Argon2PasswordHasher | None
    pages: Pages


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Callable[[], int] | None = None,
    passwords: Argon2PasswordHasher | None = None,
) -> Starlette:
    """The authorization server as an ASGI app.

    On start it reads (or on first start creates) the key-encryption secret, migrates and
    opens `settings.database_url` unless `store` is given, and makes sure a signing key
    exists; on stop it closes the store it opened. `passwords` defaults to Argon2id with
    RFC 9106 parameters.
    """
    pages = Pages()
    options = _Options(
        settings=settings,
        store=store,
        clock=clock or _now,
        passwords=passwords,
        pages=pages,
    )

    def refuse(scope: Scope, status: int) -> Response:
        return render.refusal(pages, scope, status)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        response = render.refusal(pages, request.scope, status)
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    async def crashed(request: Request, exc: Exception) -> Response:
        return render.server_error(pages, request, exc)

    async def unavailable(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, TemporarilyUnavailable):  # registered for that class only
            return render.server_error(pages, request, exc)
        return render.unavailable(pages, request, exc)

    back_channel = {TOKEN_PATH: token, REVOCATION_PATH: revoke, INTROSPECTION_PATH: introspect}
    routes = [
        Route(AUTHORIZATION_PATH, authorize, methods=["GET", "POST"]),
        Route("/login", login_page_or_form, methods=["GET", "POST"]),
        Route("/consent", consent, methods=["POST"]),
        Route("/select-account", select_account, methods=["POST"]),
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route(REVOCATION_PATH, revoke, methods=["POST"]),
        Route(INTROSPECTION_PATH, introspect, methods=["POST"]),
        Route(JWKS_PATH, jwks, methods=["GET"]),
        Route(METADATA_PATH, metadata, methods=["GET"]),
        Route(OPENID_CONFIGURATION_PATH, openid_provider_metadata, methods=["GET"]),
        Route(USERINFO_PATH, userinfo, methods=["GET", "POST"]),
        Route(END_SESSION_PATH, logout, methods=["GET", "POST"]),
        Route(REGISTRATION_PATH, register_client, methods=["POST"]),
        Route(REGISTRATION_PATH + "/{client_id}", manage_client, methods=["GET", "PUT", "DELETE"]),
        Route(METRICS_PATH, metrics_endpoint, methods=["GET"]),
        Route(HEALTH_PATH, health, methods=["GET"]),
        Route(OPENAPI_PATH, openapi, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        # CORS preflights (cors.py): discovery for anyone, the rest for registered clients
        *(
            Route(path, cors_preflight, methods=["OPTIONS"])
            for path in sorted(PUBLIC_PATHS | CLIENT_METHODS.keys())
        ),
    ]
    return _App(
        back_channel,
        routes=routes,
        middleware=[
            Middleware(metrics.RequestMetrics),
            Middleware(SecurityHeaders, hsts=settings.effective_issuer.startswith("https://")),
            Middleware(BodyLimit, max_size=settings.max_request_size, refuse=refuse),
        ],
        exception_handlers={
            HTTPException: not_found,
            TemporarilyUnavailable: unavailable,
            Exception: crashed,
        },
        lifespan=lambda app: _lifespan(app, options),
    )


class _App(Starlette):
    """Starlette, except that a POST to a back-channel endpoint goes straight to it.

    Those endpoints are plain ASGI apps that do their own body limit, security headers and
    error handling (see `routes_token.py`); the token endpoint is the server's hottest path,
    and Starlette's middleware stack and router cost more than minting a token.
    """

    def __init__(self, back_channel: Mapping[str, ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._back_channel = back_channel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._back_channel.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette, options: _Options) -> AsyncIterator[None]:
    settings = options.settings
    secret = load_key_secret(settings.key_path, create=settings.key_file is None)
    config = with_derived_keys(settings.server_config(), secret)
    if settings.dpop_nonces:
        nonce_secret = derive_key(secret, "ostiary dpop nonce")
        config = dataclasses.replace(config, dpop_nonce_secret=nonce_secret)
    async with contextlib.AsyncExitStack() as stack:
        store: Store
        if options.store is not None:
            store = options.store
        else:
            await migrate(settings.database_url)
            sql_store = await open_store(
                settings.database_url,
                pool_size=settings.database_pool_size,
                timeout=settings.database_timeout,
            )
            stack.push_async_callback(sql_store.close)
            store = sql_store
            metrics.watch_pool(sql_store.pool_status)
            stack.callback(_stop_watching_pool, sql_store.pool_status)
            if metrics.is_sharing():  # a worker of `serve --workers N`: the others read these
                publishing = asyncio.get_running_loop().create_task(metrics.keep_pool_published())
                stack.push_async_callback(_cancel, publishing)
        await ensure_signing_keys(
            store, secret, server_algorithms(config.signing_alg), options.clock()
        )
        keyring = DbKeyRing(
            store,
            secret,
            clock=options.clock,
            refresh_interval=settings.key_refresh_interval,
            default_alg=config.signing_alg,
        )
        penalties, errors = _penalty_store(settings, store, stack)
        token_limits = _token_limits(
            settings, store, penalties, errors, stack=stack, clock=options.clock
        )
        client_auth_limits = await _client_auth_limits(
            settings, penalties, errors, stack=stack, clock=options.clock
        )
        throttle: ThrottleStore = store.throttle
        if settings.redis_url is not None:
            redis_throttle = RedisThrottleStore(
                settings.redis_url,
                prefix=f"{settings.redis_prefix}:throttle",
                timeout=settings.database_timeout,
            )
            stack.push_async_callback(redis_throttle.close)
            throttle = redis_throttle
        passwords = options.passwords or Argon2PasswordHasher()
        cookies = CookiePolicy(secure=not settings.is_local)
        ctx = Context(
            config=config,
            store=store,
            keys=keyring,
            passwords=passwords,
            clock=options.clock,
            token_limits=token_limits,
            client_auth_limits=client_auth_limits,
            throttle=throttle,
        )
        app.state.runtime = Runtime(
            settings=settings,
            ctx=ctx,
            keyring=keyring,
            passwords=passwords,
            signer=ValueSigner(secret),
            cookies=cookies,
            csrf=CsrfProtection(secret, cookies, issuer=config.issuer),
            pages=options.pages,
            throttle=LoginThrottle(store=throttle, config=config),
            origins=ClientOrigins(store.clients),
            health=DatabaseHealth(
                store.ping,
                timeout=settings.health_timeout,
                interval=settings.health_interval,
                clock=options.clock,
            ),
            logouts=_logout_sender(settings, ctx, stack),
        )
        if settings.purge_interval > 0:
            purger = Purger(
                store,
                interval=settings.purge_interval,
                clock=options.clock,
                throttle_memory=throttling.memory(config),
            )
            purging = asyncio.get_running_loop().create_task(purger.run())
            stack.push_async_callback(_cancel, purging)
        yield


Errors = tuple[type[BaseException], ...]


def _penalty_store(
    settings: Settings, store: Store, stack: contextlib.AsyncExitStack
) -> tuple[PenaltyStore, Errors]:
    """Where the limits' penalties are shared: Redis when configured, else the database;
    and what a failed share through it may raise besides `DatabaseUnavailable`."""
    if settings.redis_url is None:
        return store.penalties, ()
    penalties = RedisPenaltyStore(
        settings.redis_url,
        prefix=f"{settings.redis_prefix}:penalty",
        timeout=settings.database_timeout,
    )
    stack.push_async_callback(penalties.close)
    return penalties, REDIS_ERRORS


def _token_limits(
    settings: Settings,
    store: Store,
    penalties: PenaltyStore,
    errors: Errors,
    *,
    stack: contextlib.AsyncExitStack,
    clock: Callable[[], int],
) -> SharedRateLimiter | None:
    """The per-client token endpoint limit, sharing its counts in the background until the
    app stops (then once more, so the other processes count what this one admitted)."""
    if settings.token_rate_limit == 0:
        return None
    counters: RateCounterStore = store.rates
    if settings.redis_url is not None:
        redis_counters = RedisRateCounters(
            settings.redis_url,
            prefix=f"{settings.redis_prefix}:rate",
            timeout=settings.database_timeout,
        )
        stack.push_async_callback(redis_counters.close)
        counters = redis_counters
    limiter = SharedRateLimiter(
        counters,
        penalties,
        name="token",
        limit=settings.token_rate_limit,
        window=settings.token_rate_window,
        sync_interval=settings.rate_limit_sync_interval,
        backoff_cap=settings.token_rate_backoff_cap,
        errors=errors,
        clock=clock,
    )
    sharing = asyncio.get_running_loop().create_task(limiter.run())
    stack.push_async_callback(limiter.close)
    stack.push_async_callback(_cancel, sharing)  # first: no share runs during the last one
    return limiter


async def _client_auth_limits(
    settings: Settings,
    penalties: PenaltyStore,
    errors: Errors,
    *,
    stack: contextlib.AsyncExitStack,
    clock: Callable[[], int],
) -> SharedClientAuthLimiter | None:
    """The failed client authentication limit, learning the other processes' waits in the
    background until the app stops."""
    if settings.client_auth_max_failures == 0:
        return None
    limiter = SharedClientAuthLimiter(
        penalties,
        max_failures=settings.client_auth_max_failures,
        max_clients=settings.client_auth_max_clients,
        backoff=settings.client_auth_backoff,
        backoff_cap=settings.client_auth_backoff_cap,
        memory=CLIENT_AUTH_MEMORY * settings.client_auth_backoff_cap,
        sync_interval=settings.rate_limit_sync_interval,
        errors=errors,
        clock=clock,
    )
    with contextlib.suppress(DatabaseUnavailable, *errors):
        await limiter.refresh()  # a process that starts knows the waits already in force
    refreshing = asyncio.get_running_loop().create_task(limiter.run())
    stack.push_async_callback(_cancel, refreshing)
    return limiter


def _logout_sender(
    settings: Settings, ctx: Context, stack: contextlib.AsyncExitStack
) -> LogoutSender:
    """The back-channel logout sender, running in the background until the app stops unless
    `logout_delivery_interval` is 0 (then deliveries wait for a process that runs one)."""
    sender = LogoutSender(
        ctx,
        DeliveryPolicy(
            attempts=settings.logout_delivery_attempts,
            first_delay=settings.logout_retry_delay,
            interval=settings.logout_delivery_interval,
            sweep_interval=settings.session_sweep_interval,
        ),
    )
    stack.push_async_callback(sender.close)
    if settings.logout_delivery_interval > 0:
        sending = asyncio.get_running_loop().create_task(sender.run())
        stack.push_async_callback(_cancel, sending)
    return sender


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _stop_watching_pool(stats: metrics.PoolStats) -> None:
    if metrics.is_watching_pool(stats):  # another app in this process may have taken over
        metrics.watch_pool(None)
