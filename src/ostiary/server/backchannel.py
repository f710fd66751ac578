"""Posting logout tokens to clients' back-channel logout URIs (Back-Channel Logout 1.0 §2.5),
after the person has their answer: a slow or failing client never delays the logout page.

Each token is tried a few times with growing pauses; a client that still fails is written
to the audit log (never the token). Only what registration allowed is ever contacted: https
URIs, or http on a loopback address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import httpx

from ostiary.oauth.backchannel_logout import LogoutDelivery
from ostiary.oauth.models import AuditEvent
from ostiary.oauth.store import AuditLog

log = logging.getLogger("ostiary.server")

ATTEMPTS: Final = 3
FIRST_PAUSE: Final = 0.5  # seconds; doubled after each failed attempt
TIMEOUT: Final = 5.0


async def deliver_logout_tokens(
    deliveries: Sequence[LogoutDelivery],
    audit: AuditLog,
    *,
    now: int,
    user_id: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Post each logout token (§2.5: form field `logout_token`); 200 or 204 is success."""
    if not deliveries:
        return
    async with httpx.AsyncClient(
        timeout=TIMEOUT, follow_redirects=False, transport=transport
    ) as http:
        results = await asyncio.gather(*(_deliver(http, d) for d in deliveries))
    for delivery, ok in zip(deliveries, results, strict=True):
        await audit.record(
            AuditEvent(
                event="logout.backchannel_sent" if ok else "logout.backchannel_failed",
                at=now,
                client_id=delivery.client_id,
                user_id=user_id,
                detail={"attempts_max": ATTEMPTS},
            )
        )


async def _deliver(http: httpx.AsyncClient, delivery: LogoutDelivery) -> bool:
    pause = FIRST_PAUSE
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = await http.post(
                delivery.uri,
                data={"logout_token": delivery.logout_token},
                headers={"Cache-Control": "no-store"},
            )
            if response.status_code in (200, 204):
                return True
            # §2.8: 400 means the client refused the token; trying again will not help
            if response.status_code == 400:
                return False
        except httpx.HTTPError as exc:
            log.info(
                "back-channel logout to client %s failed (attempt %d): %s",
                delivery.client_id,
                attempt,
                type(exc).__name__,
            )
        if attempt < ATTEMPTS:
            await asyncio.sleep(pause)  # a pause between retries, not a timed test
            pause *= 2
    return False
