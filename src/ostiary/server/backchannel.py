"""Posting the logout tokens the store has queued (Back-Channel Logout 1.0 §2.5), in the
background of `ostiary serve`: a person's logout never waits on a client.

`LogoutSender.run` claims due deliveries (one process per delivery, even with several on
PostgreSQL), signs and posts each, and deletes it once the client answers 200 or 204 (audit
`logout.backchannel_sent`). A failure is tried again later, the pause doubling each time;
after the last attempt, or at once when the client answers 400 (§2.8: it refused the token),
the delivery is given up (audit `logout.backchannel_given_up`). Now and then it also ends the
login sessions that expired, which queues their logout tokens too. Only what registration
allowed is ever contacted: https URIs, or http on a loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final, Literal

import httpx

from ostiary.oauth.backchannel_logout import logout_token, retry_delay
from ostiary.oauth.context import Context
from ostiary.oauth.errors import DatabaseUnavailable
from ostiary.oauth.models import AuditEvent, PendingLogout

log = logging.getLogger("ostiary.server")

TIMEOUT: Final = 5.0
LEASE: Final = 60  # seconds a claimed delivery is hidden from other processes (> TIMEOUT)
BATCH: Final = 20
Outcome = Literal["sent", "refused", "failed", "gone"]


@dataclass(frozen=True, kw_only=True)
class DeliveryPolicy:
    attempts: int = 10  # at most this many posts of one logout token
    first_delay: int = 5  # seconds before the second attempt; doubled after each failure
    interval: float = 2.0  # look for due deliveries this often (seconds); 0: never by itself
    sweep_interval: float = 60.0  # end expired sessions this often (seconds); 0: never


class LogoutSender:
    """Sends queued logout tokens; one per server process, started by the app's lifespan."""

    def __init__(
        self,
        ctx: Context,
        policy: DeliveryPolicy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._ctx = ctx
        self._policy = policy
        self._http = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, transport=transport)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for due deliveries now (this process has just queued some)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; a database or network error waits for the next round."""
        policy = self._policy
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            self._wake.clear()
            try:
                if policy.sweep_interval and loop.time() >= next_sweep:
                    next_sweep = loop.time() + policy.sweep_interval
                    await self.sweep()
                while await self.deliver_due() == BATCH:
                    pass  # a full batch: more may be due
            except asyncio.CancelledError:
                raise
            except DatabaseUnavailable as exc:  # expected while the database is away: no trace
                log.warning(
                    "back-channel logout round failed; trying again: %s (%s)", exc, exc.detail
                )
            except Exception:  # the sender outlives a round that failed for any other reason
                log.warning("back-channel logout round failed; trying again", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=policy.interval)

    async def sweep(self) -> int:
        """End the sessions that expired (queuing their logout tokens); return how many."""
        ended = 0
        while True:
            count = await self._ctx.store.sessions.end_expired(now=self._ctx.now(), limit=100)
            ended += count
            if count < 100:
                return ended

    async def deliver_due(self) -> int:
        """Claim the deliveries due now and try each once; return how many were claimed."""
        store = self._ctx.store
        claimed = await store.logouts.claim(now=self._ctx.now(), lease=LEASE, limit=BATCH)
        if claimed:
            await asyncio.gather(*(self._deliver(delivery) for delivery in claimed))
        return len(claimed)

    async def close(self) -> None:
        await self._http.aclose()

    async def _deliver(self, delivery: PendingLogout) -> None:
        ctx = self._ctx
        client = await ctx.store.clients.get(delivery.client_id)
        uri = client.oidc.backchannel_logout_uri if client is not None else None
        outcome: Outcome = "gone"
        if client is not None and uri is not None:
            token = await logout_token(delivery, client, ctx)
            outcome = await self._post(uri, token, delivery)
        now = ctx.now()
        if outcome == "failed" and delivery.attempts < self._policy.attempts:
            delay = retry_delay(delivery.attempts, first=self._policy.first_delay)
            await ctx.store.logouts.retry(delivery.delivery_id, at=now + delay)
            return
        await ctx.store.logouts.finish(delivery.delivery_id)
        detail: dict[str, object] = {"attempts": delivery.attempts, "reason": delivery.reason}
        if outcome != "sent":
            detail["why"] = {
                "refused": "the client answered 400",
                "failed": "no attempt succeeded",
                "gone": "the client or its back-channel logout URI is gone",
            }[outcome]
        await ctx.store.audit.record(
            AuditEvent(
                event="logout.backchannel_sent"
                if outcome == "sent"
                else "logout.backchannel_given_up",
                at=now,
                client_id=delivery.client_id,
                user_id=delivery.user_id,
                detail=detail,
            )
        )

    async def _post(self, uri: str, token: str, delivery: PendingLogout) -> Outcome:
        try:
            response = await self._http.post(
                uri, data={"logout_token": token}, headers={"Cache-Control": "no-store"}
            )
        except httpx.HTTPError as exc:
            log.info(
                "back-channel logout to client %s failed (attempt %d): %s",
                delivery.client_id,
                delivery.attempts,
                type(exc).__name__,
            )
            return "failed"
        if response.status_code in (200, 204):  # §2.8
            return "sent"
        if response.status_code == 400:  # §2.8: the client refused it; again will not help
            return "refused"
        log.info(
            "back-channel logout to client %s answered %d (attempt %d)",
            delivery.client_id,
            response.status_code,
            delivery.attempts,
        )
        return "failed"
