"""The resource owner password credentials grant (RFC 6749 §4.3): legacy, opt-in per client.

OAuth 2.1 and RFC 9700 §2.4 drop it: the client sees the user's password. It exists only for
clients registered with `legacy_password_grant=True` (and the grant type), and failed attempts
are throttled per user and per address like failed logins.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import unicodedata
from typing import Any, Final

from .. import throttling
from ..context import Context
from ..errors import InvalidGrant, InvalidRequest, SlowDown, UnauthorizedClient
from ..models import AuditEvent
from ..resources import audience_for, parse_resources, registered_apis, scope_for_apis
from ..scopes import narrow_scope, parse_scope
from ..token_hash import new_token_value
from .issuance import (
    GrantRequest,
    issue_tokens,
    may_refresh,
    new_refresh_token,
    refresh_binding,
    require_grant_type,
)

GRANT_TYPE: Final = "password"
MAX_USERNAME_LENGTH: Final = 256


def throttle_key(kind: str, value: str) -> str:
    """The throttle counter of a username or address: the login page's counters, so the two
    doors share one budget of guesses. Hashed: bounded size, and no usernames or addresses
    in the throttle table."""
    digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:40]
    return f"login:{kind}:{digest}"


async def exchange_password(request: GrantRequest, ctx: Context) -> dict[str, Any]:
    """Check a user's password and issue tokens for them."""
    client = request.client
    form = request.form
    if not client.legacy_password_grant:
        raise UnauthorizedClient("this client may not use the password grant")
    require_grant_type(client, GRANT_TYPE)
    username = unicodedata.normalize("NFC", form.require("username"))  # stored NFC
    password = form.require("password")
    if len(username) > MAX_USERNAME_LENGTH:
        raise InvalidRequest("username is too long")
    scope = narrow_scope(parse_scope(form.get("scope")), client.scopes)
    resources = parse_resources(form.resources)
    apis = await registered_apis(resources, ctx)
    token_scope = scope_for_apis(scope, apis)  # RFC 8707: only the named APIs' scopes
    config = ctx.config
    now = ctx.now()
    keys = [throttle_key("user", username.casefold())]
    if request.address:
        keys.append(throttle_key("address", request.address))
    # Charged before the slow hash (see `throttling`); a success gives the attempt back.
    wait = await throttling.take_attempt(ctx.throttles, keys, now=now, config=config)
    if wait:
        raise SlowDown(
            "too many failed attempts; try again later", retry_after=wait, limit="password"
        )
    user = await ctx.store.users.by_username(username)
    if user is None:
        # Spend what a real check spends, so timing does not tell which usernames exist.
        with contextlib.suppress(ValueError):
            await asyncio.to_thread(ctx.passwords.hash, password)
        verified = False
    else:
        # Password hashing is deliberately slow: keep it off the event loop.
        verified = await asyncio.to_thread(ctx.passwords.verify, user.password_hash, password)
    if user is None or not verified:
        await ctx.store.audit.record(
            AuditEvent(
                event="login.failed",
                at=now,
                client_id=client.client_id,
                user_id=user.user_id if user is not None else None,
                address=request.address,
                detail={"grant_type": GRANT_TYPE},
            )
        )
        raise InvalidGrant("the username or password is wrong")
    await ctx.throttles.reset(keys[0])
    for key in keys[1:]:  # the address keeps its failures, not this success
        await throttling.forgive(ctx.throttles, key, now=now)
    grant_id = new_token_value(16)
    refresh_value = None
    if may_refresh(client):
        refresh_value, refresh = new_refresh_token(
            ctx,
            client=client,
            grant_id=grant_id,
            user_id=user.user_id,
            scope=scope,
            resources=resources,
            auth_time=now,
            jkt=refresh_binding(request),
        )
        await ctx.store.tokens.add_refresh(refresh)
    return await issue_tokens(
        ctx,
        request,
        grant_type=GRANT_TYPE,
        subject=user.user_id,
        user_id=user.user_id,
        scope=token_scope,
        audience=audience_for(resources, config),
        grant_id=grant_id,
        refresh_token=refresh_value,
        auth_time=now,
    )
