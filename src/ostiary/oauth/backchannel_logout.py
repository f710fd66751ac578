"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0), sans-IO: the logout tokens
to send when a person's session at this server ends.

Every client the person approved (a remembered consent) that registered a
`backchannel_logout_uri` gets one logout token naming the person by the `sub` that client
knows (§2.4). The server has no per-session ids, so tokens carry `sub` and no `sid`, and
clients that require a `sid` (`backchannel_logout_session_required`) cannot register. The
server posts them after answering the person, with retries (`server/backchannel.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ostiary.jose import jwt

from .context import Context
from .subject import subject_for
from .token_hash import new_token_value

LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE: Final = "logout+jwt"  # §2.4, as the 2023 errata recommend
LOGOUT_TOKEN_TTL: Final = 120


@dataclass(frozen=True)
class LogoutDelivery:
    client_id: str
    uri: str
    logout_token: str


async def logout_deliveries(user_id: str, ctx: Context) -> list[LogoutDelivery]:
    """One signed logout token (§2.4) per client of this user with a back-channel URI."""
    deliveries = []
    now = ctx.now()
    for consent in await ctx.store.consents.list_for_user(user_id):
        client = await ctx.store.clients.get(consent.client_id)
        if client is None or client.oidc.backchannel_logout_uri is None:
            continue
        alg = client.oidc.id_token_signed_response_alg
        claims = {
            "iss": ctx.config.issuer,
            "sub": subject_for(client, user_id, ctx.config),
            "aud": client.client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": new_token_value(16),
            "events": {LOGOUT_EVENT: {}},
        }
        key = await ctx.keys.signing_key(alg)
        token = jwt.encode(claims, key, alg=alg, headers={"typ": LOGOUT_TOKEN_TYPE})
        deliveries.append(
            LogoutDelivery(client.client_id, client.oidc.backchannel_logout_uri, token)
        )
    return deliveries
