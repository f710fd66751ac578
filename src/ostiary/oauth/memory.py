"""`MemoryStore`: the `Store` contract in memory, for tests and a single process.

Each method runs without awaiting inside, so on one event loop every method is atomic.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Mapping, Sequence

from .backchannel_logout import outlives_session, session_end_event
from .models import (
    PURGED_TABLES,
    Api,
    AuditEvent,
    AuthorizationCode,
    Client,
    CodeConsumption,
    Consent,
    Issuance,
    IssuedAccessToken,
    LoginSession,
    PendingLogout,
    Purged,
    RefreshToken,
    Rotation,
    SigningKey,
    User,
)
from .rate_limits import Penalty


class MemoryClientStore:
    def __init__(self, forget: Callable[[str], None] = lambda client_id: None) -> None:
        self._rows: dict[str, Client] = {}
        self._forget = forget  # removes what was issued to a deleted client

    async def get(self, client_id: str) -> Client | None:
        return self._rows.get(client_id)

    async def add(self, client: Client) -> None:
        if client.client_id in self._rows:
            raise ValueError(f"client {client.client_id!r} exists")
        self._rows[client.client_id] = client

    async def update(self, client: Client) -> bool:
        stored = self._rows.get(client.client_id)
        if stored is None:
            return False
        self._rows[client.client_id] = dataclasses.replace(client, created_at=stored.created_at)
        return True

    async def list(self) -> Sequence[Client]:
        return sorted(self._rows.values(), key=lambda c: (c.created_at, c.client_id))

    async def delete(self, client_id: str) -> bool:
        if self._rows.pop(client_id, None) is None:
            return False
        self._forget(client_id)
        return True


class MemoryApiStore:
    def __init__(self) -> None:
        self._rows: dict[str, Api] = {}

    async def get(self, identifier: str) -> Api | None:
        return self._rows.get(identifier)

    async def add(self, api: Api) -> None:
        if api.identifier in self._rows:
            raise ValueError(f"API {api.identifier!r} exists")
        self._rows[api.identifier] = api

    async def list(self) -> Sequence[Api]:
        return sorted(self._rows.values(), key=lambda a: a.identifier)

    async def delete(self, identifier: str) -> bool:
        return self._rows.pop(identifier, None) is not None


class MemoryUserStore:
    def __init__(self, forget: Callable[[str], None] = lambda user_id: None) -> None:
        self._rows: dict[str, User] = {}
        self._forget = forget  # ends a deleted user's grants

    async def get(self, user_id: str) -> User | None:
        return self._rows.get(user_id)

    async def by_username(self, username: str) -> User | None:
        return next((u for u in self._rows.values() if u.username == username), None)

    async def add(self, user: User) -> None:
        if user.user_id in self._rows or await self.by_username(user.username):
            raise ValueError(f"user {user.username!r} exists")
        self._rows[user.user_id] = user

    async def update(self, user: User) -> bool:
        stored = self._rows.get(user.user_id)
        if stored is None:
            return False
        self._rows[user.user_id] = dataclasses.replace(
            stored, password_hash=user.password_hash, claims=dict(user.claims)
        )
        return True

    async def list(self) -> Sequence[User]:
        return sorted(self._rows.values(), key=lambda u: u.username)

    async def delete(self, user_id: str) -> bool:
        if self._rows.pop(user_id, None) is None:
            return False
        self._forget(user_id)
        return True


class MemoryCodeStore:
    def __init__(self, sessions: MemorySessionStore | None = None) -> None:
        self._rows: dict[str, tuple[AuthorizationCode, bool]] = {}
        self._sessions = sessions  # whose ended sessions get no more codes

    async def put(self, code: AuthorizationCode) -> bool:
        sessions = self._sessions
        if code.sid is not None and sessions is not None and sessions.has_ended(code.sid):
            return False
        self._rows[code.code_hash] = (code, False)
        return True

    async def peek(self, code_hash: str) -> AuthorizationCode | None:
        row = self._rows.get(code_hash)
        return None if row is None else row[0]

    async def consume(self, code_hash: str, *, now: int) -> CodeConsumption:
        row = self._rows.get(code_hash)
        if row is None:
            return CodeConsumption(code=None)
        code, used = row
        if used:
            return CodeConsumption(code=code, replayed=True)
        if now >= code.expires_at:
            return CodeConsumption(code=None)
        self._rows[code_hash] = (code, True)
        return CodeConsumption(code=code)

    def purge(self, *, before: int, live_grants: set[str]) -> int:
        """Drop the codes that expired at or before `before`, but a redeemed one while its
        grant has a token left (`live_grants`): its replay must still revoke it."""
        gone = [
            key
            for key, (code, used) in self._rows.items()
            if code.expires_at <= before and not (used and code.grant_id in live_grants)
        ]
        for key in gone:
            del self._rows[key]
        return len(gone)

    def has_unexpired(self, grant_id: str, *, before: int) -> bool:
        return any(
            code.grant_id == grant_id and code.expires_at > before
            for code, _ in self._rows.values()
        )

    def forget(self, *, client_id: str | None, user_id: str | None) -> set[str]:
        """Drop the codes of a deleted client or user; return their grant ids."""
        gone = [
            key
            for key, (code, _) in self._rows.items()
            if _is_owned(code.client_id, code.user_id, client_id=client_id, user_id=user_id)
        ]
        return {self._rows.pop(key)[0].grant_id for key in gone}

    def grants_of(self, sid: str) -> dict[str, frozenset[str]]:
        """The grants of the codes issued in the session `sid`, with their scope."""
        return {code.grant_id: code.scope for code, _ in self._rows.values() if code.sid == sid}

    def forget_unused(self, grant_ids: set[str]) -> None:
        """Drop the codes of these grants that were never redeemed."""
        for key in [
            k for k, (c, used) in self._rows.items() if c.grant_id in grant_ids and not used
        ]:
            del self._rows[key]

    def forget_user_client(self, user_id: str, client_id: str) -> set[str]:
        """Drop the codes of this user at this client; return their grant ids."""
        gone = [
            key
            for key, (code, _) in self._rows.items()
            if code.user_id == user_id and code.client_id == client_id
        ]
        return {self._rows.pop(key)[0].grant_id for key in gone}


class MemoryTokenStore:
    def __init__(
        self,
        *,
        codes: MemoryCodeStore | None = None,
        replay: MemoryReplayStore | None = None,
        audit: MemoryAuditLog | None = None,
        sessions: MemorySessionStore | None = None,
        throttle: MemoryThrottleStore | None = None,
        rates: MemoryRateCounters | None = None,
        penalties: MemoryPenaltyStore | None = None,
    ) -> None:
        # purged with the tokens (TokenStore.purge_expired)
        self._codes = codes
        self._replay = replay
        self._sessions = sessions
        self._throttle = throttle
        self._rates = rates
        self._penalties = penalties
        self._audit = audit or MemoryAuditLog()  # where a rotation's issuance is audited
        # hash -> (token, state) with state "live", "rotated" or "revoked"
        self._refresh: dict[str, tuple[RefreshToken, str]] = {}
        self._access: dict[str, IssuedAccessToken] = {}
        self._revoked_access: dict[str, int] = {}
        self._revoked_grants: dict[str, int | None] = {}  # -> revoked_at (RevokedGrant)

    async def add_refresh(self, token: RefreshToken) -> None:
        self._refresh[token.token_hash] = (token, "live")

    async def rotate_refresh(
        self,
        token_hash: str,
        replacement: RefreshToken,
        *,
        now: int,
        issuance: Issuance | None = None,
    ) -> Rotation:
        row = self._refresh.get(token_hash)
        if row is None:
            return Rotation(status="invalid")
        token, state = row
        if state == "rotated":
            return Rotation(status="reused", previous=token)
        if state == "revoked" or now >= token.expires_at or token.grant_id in self._revoked_grants:
            return Rotation(status="invalid", previous=token)
        recorded = None if issuance is None else issuance.access
        if replacement.token_hash in self._refresh or (
            recorded is not None and recorded.token_id in self._access
        ):
            raise ValueError("the replacement refresh token or access token exists")
        self._refresh[token_hash] = (token, "rotated")
        self._refresh[replacement.token_hash] = (replacement, "live")
        if issuance is not None:
            if issuance.access is not None:
                self._access[issuance.access.token_id] = issuance.access
            await self._audit.record(issuance.event)
        return Rotation(status="rotated", previous=token)

    async def find_refresh(self, token_hash: str, *, now: int) -> RefreshToken | None:
        row = self._refresh.get(token_hash)
        if row is None or row[1] != "live" or now >= row[0].expires_at:
            return None
        return None if row[0].grant_id in self._revoked_grants else row[0]

    async def peek_refresh(self, token_hash: str) -> RefreshToken | None:
        row = self._refresh.get(token_hash)
        return None if row is None else row[0]

    async def add_access(self, token: IssuedAccessToken) -> None:
        self._access[token.token_id] = token

    async def find_access(self, token_id: str) -> IssuedAccessToken | None:
        return self._access.get(token_id)

    async def revoke_access(self, token_id: str, *, expires_at: int, now: int) -> None:
        self._revoked_access[token_id] = expires_at

    async def revoke_refresh(self, token_hash: str, *, now: int) -> RefreshToken | None:
        row = self._refresh.get(token_hash)
        if row is None:
            return None
        self._refresh[token_hash] = (row[0], "revoked")
        return row[0]

    async def revoke_grant(self, grant_id: str, *, now: int) -> int:
        self._revoked_grants.setdefault(grant_id, now)
        count = 0
        for key, (token, state) in list(self._refresh.items()):
            if token.grant_id == grant_id and state != "revoked":
                self._refresh[key] = (token, "revoked")
                count += 1
        for token_id, access in self._access.items():
            if access.grant_id == grant_id and token_id not in self._revoked_access:
                self._revoked_access[token_id] = access.expires_at
                count += 1
        return count

    def revoke_session_grants(self, sid: str, *, now: int) -> tuple[int, int, int]:
        """Revoke the grants made in the session `sid` that do not outlive it, as
        `revoke_grant` does (ostiary/store/_session_grants.py); return how many grants were
        revoked, how many tokens with them, how many grants were kept."""
        grants = {} if self._codes is None else self._codes.grants_of(sid)
        grants |= {t.grant_id: t.scope for t, _ in self._refresh.values() if t.sid == sid}
        live = {g: scope for g, scope in grants.items() if g not in self._revoked_grants}
        revoked = [g for g, scope in live.items() if not outlives_session(scope)]
        if self._codes is not None:
            self._codes.forget_unused(set(revoked))
        tokens = 0
        for grant_id in revoked:
            self._revoked_grants.setdefault(grant_id, now)
            for key, (token, state) in list(self._refresh.items()):
                if token.grant_id == grant_id and state != "revoked":
                    self._refresh[key] = (token, "revoked")
                    tokens += 1
            for token_id, access in self._access.items():
                if access.grant_id == grant_id and token_id not in self._revoked_access:
                    self._revoked_access[token_id] = access.expires_at
                    tokens += 1
        return len(revoked), tokens, len(live) - len(revoked)

    async def revoke_for_user_client(self, user_id: str, client_id: str, *, now: int) -> int:
        grants: set[str] = set()
        if self._codes is not None:
            grants = self._codes.forget_user_client(user_id, client_id)
        count = 0
        for key, (token, state) in list(self._refresh.items()):
            if token.user_id == user_id and token.client_id == client_id:
                grants.add(token.grant_id)
                if state != "revoked":
                    self._refresh[key] = (token, "revoked")
                    count += 1
        for token_id, access in self._access.items():
            if (
                access.grant_id is not None
                and access.subject == user_id
                and access.client_id == client_id
            ):
                grants.add(access.grant_id)
                if token_id not in self._revoked_access:
                    self._revoked_access[token_id] = access.expires_at
                    count += 1
        for grant_id in grants:
            self._revoked_grants.setdefault(grant_id, now)
        return count

    async def is_revoked(self, token_id: str, grant_id: str | None) -> bool:
        return token_id in self._revoked_access or (
            grant_id is not None and grant_id in self._revoked_grants
        )

    async def purge_expired(
        self, *, before: int, limit: int = 1000, throttle_before: int | None = None
    ) -> Purged:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        counts = dict.fromkeys(PURGED_TABLES, 0)
        # the same rules as ostiary/store/_purge.py, all in one go
        live_refresh = {t.grant_id for t, _ in self._refresh.values() if t.expires_at > before}
        live_access = {
            t.grant_id for t in self._access.values() if t.grant_id and t.expires_at > before
        }
        refresh = [k for k, (t, _) in self._refresh.items() if t.grant_id not in live_refresh]
        access = [k for k, t in self._access.items() if t.expires_at <= before]
        revoked = [k for k, exp in self._revoked_access.items() if exp <= before]
        for key in refresh:
            del self._refresh[key]
        for key in access:
            del self._access[key]
        for key in revoked:
            del self._revoked_access[key]
        counts["refresh_tokens"] = len(refresh)
        counts["access_tokens"] = len(access)
        counts["revoked_access_tokens"] = len(revoked)
        live_grants = live_refresh | live_access
        if self._codes is not None:
            counts["authorization_codes"] = self._codes.purge(
                before=before, live_grants=live_grants
            )
        grants = [
            grant_id
            for grant_id, revoked_at in self._revoked_grants.items()
            if revoked_at is not None
            and revoked_at <= before
            and grant_id not in live_grants
            and not (self._codes is not None and self._codes.has_unexpired(grant_id, before=before))
        ]
        for grant_id in grants:
            del self._revoked_grants[grant_id]
        counts["revoked_grants"] = len(grants)
        if self._replay is not None:
            counts["replay_entries"] = self._replay.purge(before=before)
        if self._sessions is not None:
            counts["login_sessions"] = self._sessions.purge(before=before)
        if self._throttle is not None and throttle_before is not None:
            counts["throttle_hits"] = self._throttle.purge(before=throttle_before)
        if self._rates is not None:
            counts["rate_counters"] = self._rates.purge(before=before)
        if self._penalties is not None:
            counts["rate_penalties"] = self._penalties.purge(before=before)
        return Purged(counts=counts)

    def forget(self, *, client_id: str | None, user_id: str | None, grants: set[str]) -> None:
        """Drop the tokens of a deleted client or user and revoke their grants for good."""
        grants = set(grants)
        for key, (token, _) in list(self._refresh.items()):
            if _is_owned(token.client_id, token.user_id, client_id=client_id, user_id=user_id):
                grants.add(token.grant_id)
                del self._refresh[key]
        for key, access in list(self._access.items()):
            if access.grant_id is not None and user_id is not None and access.subject == user_id:
                grants.add(access.grant_id)
            if client_id is not None and access.client_id == client_id:
                if access.grant_id is not None:
                    grants.add(access.grant_id)
                del self._access[key]
        for grant_id in grants:
            self._revoked_grants[grant_id] = None  # for good, also if revoked before


class MemoryConsentStore:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Consent] = {}

    async def get(self, user_id: str, client_id: str) -> Consent | None:
        return self._rows.get((user_id, client_id))

    async def put(self, consent: Consent) -> None:
        self._rows[(consent.user_id, consent.client_id)] = consent

    async def revoke(self, user_id: str, client_id: str) -> bool:
        return self._rows.pop((user_id, client_id), None) is not None

    async def list_for_user(self, user_id: str) -> Sequence[Consent]:
        found = [c for (uid, _), c in self._rows.items() if uid == user_id]
        return sorted(found, key=lambda c: c.client_id)

    def forget(self, *, client_id: str | None, user_id: str | None) -> None:
        for key, consent in list(self._rows.items()):
            if _is_owned(consent.client_id, consent.user_id, client_id=client_id, user_id=user_id):
                del self._rows[key]


class MemoryKeyStore:
    def __init__(self) -> None:
        self._rows: dict[str, SigningKey] = {}

    async def add(self, key: SigningKey) -> None:
        if key.kid in self._rows:
            raise ValueError(f"key {key.kid!r} exists")
        self._rows[key.kid] = key

    async def list(self) -> Sequence[SigningKey]:
        return sorted(self._rows.values(), key=lambda k: (k.created_at, k.kid), reverse=True)

    async def update(self, key: SigningKey) -> None:
        if key.kid not in self._rows:
            raise ValueError(f"key {key.kid!r} does not exist")
        self._rows[key.kid] = key


class MemoryReplayStore:
    def __init__(self) -> None:
        self._rows: dict[str, int] = {}

    async def first_use(self, key: str, *, expires_at: int, now: int) -> bool:
        seen = self._rows.get(key)
        if seen is not None and seen > now:
            return False
        self._rows[key] = expires_at
        return True

    def purge(self, *, before: int) -> int:
        gone = [key for key, expires_at in self._rows.items() if expires_at <= before]
        for key in gone:
            del self._rows[key]
        return len(gone)


class MemoryThrottleStore:
    def __init__(self) -> None:
        self._hits: dict[str, list[int]] = {}

    async def hit(self, key: str, *, now: int, window: int) -> int:
        hits = [t for t in self._hits.get(key, []) if t > now - window]
        hits.append(now)
        self._hits[key] = hits
        return len(hits)

    async def count(self, key: str, *, now: int, window: int) -> int:
        return sum(1 for t in self._hits.get(key, []) if t > now - window)

    async def recent(self, key: str, *, now: int, window: int) -> tuple[int, int | None]:
        hits = [t for t in self._hits.get(key, []) if t > now - window]
        return len(hits), max(hits, default=None)

    async def forgive(self, key: str, *, at: int) -> None:
        hits = self._hits.get(key, [])
        if at in hits:
            hits.remove(at)

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def purge(self, *, before: int) -> int:
        gone = 0
        for key, hits in list(self._hits.items()):
            kept = [t for t in hits if t > before]
            gone += len(hits) - len(kept)
            if kept:
                self._hits[key] = kept
            else:
                del self._hits[key]
        return gone


class MemoryRateCounters:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], tuple[int, int]] = {}  # -> (count, expires_at)

    async def add(
        self, window: int, counts: Mapping[str, int], *, expires_at: int, now: int
    ) -> dict[str, int]:
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        totals: dict[str, int] = {}
        for key, n in counts.items():
            if n > 0:
                count = self._counts.get((key, window), (0, expires_at))[0] + n
                self._counts[(key, window)] = (count, expires_at)
                totals[key] = count
        return totals

    def purge(self, *, before: int) -> int:
        kept = {k: v for k, v in self._counts.items() if v[1] > before}
        gone = len(self._counts) - len(kept)
        self._counts = kept
        return gone


class MemoryPenaltyStore:
    def __init__(self) -> None:
        self._rows: dict[str, Penalty] = {}

    async def update(
        self, key: str, change: Callable[[Penalty | None], Penalty], *, now: int
    ) -> Penalty:
        current = self._rows.get(key)
        if current is not None and current.forget_at <= now:
            current = None
        self._rows[key] = penalty = change(current)
        return penalty

    async def active(self, prefix: str, *, now: int, waiting: bool = False) -> dict[str, Penalty]:
        self._rows = {k: p for k, p in self._rows.items() if p.forget_at > now}
        return {
            k: p
            for k, p in self._rows.items()
            if k.startswith(prefix) and (not waiting or p.until > now)
        }

    async def forget(self, key: str) -> None:
        self._rows.pop(key, None)

    def purge(self, *, before: int) -> int:
        gone = [key for key, penalty in self._rows.items() if penalty.forget_at <= before]
        for key in gone:
            del self._rows[key]
        return len(gone)


class MemoryAuditLog:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.events.append(dataclasses.replace(event, detail=dict(event.detail)))

    async def tail(self, limit: int = 50) -> Sequence[AuditEvent]:
        return self.events[-limit:] if limit > 0 else []


class MemorySessionStore:
    def __init__(
        self,
        clients: MemoryClientStore,
        logouts: MemoryLogoutQueue | None = None,
        *,
        tokens: Callable[[], MemoryTokenStore] | None = None,
        audit: MemoryAuditLog | None = None,
    ) -> None:
        self._rows: dict[str, tuple[LoginSession, bool]] = {}  # hash -> (session, ended)
        self._joined: dict[str, list[str]] = {}  # hash -> client ids, in joining order
        self._clients = clients
        self._logouts = logouts or MemoryLogoutQueue()
        self._tokens = tokens  # whose grants made in a session end with it
        self._audit = audit or MemoryAuditLog()

    async def add(self, session: LoginSession) -> None:
        if session.session_hash in self._rows:
            raise ValueError("session exists")
        if session.sid is not None and any(s.sid == session.sid for s, _ in self._rows.values()):
            raise ValueError("session exists")
        self._rows[session.session_hash] = (session, False)

    async def get(self, session_hash: str, *, now: int) -> LoginSession | None:
        row = self._rows.get(session_hash)
        if row is None or row[1] or now >= row[0].expires_at:
            return None
        return row[0]

    def has_ended(self, sid: str) -> bool:
        return any(s.sid == sid and ended for s, ended in self._rows.values())

    async def join(self, session_hash: str, client_id: str, *, now: int) -> None:
        if session_hash not in self._rows or client_id not in self._clients._rows:
            raise ValueError("no such session or client")
        joined = self._joined.setdefault(session_hash, [])
        if client_id not in joined:
            joined.append(client_id)

    async def clients_of(self, session_hash: str) -> Sequence[str]:
        if session_hash not in self._rows:
            return []
        joined = self._joined.get(session_hash, [])
        return [client_id for client_id in joined if client_id in self._clients._rows]

    async def end(self, session_hash: str, *, now: int, reason: str = "logout") -> bool:
        if await self.get(session_hash, now=now) is None:
            return False
        self._end(session_hash, now=now, reason=reason)
        return True

    async def end_for_user(self, user_id: str, *, now: int, reason: str = "sign-out") -> int:
        live = [h for h, (s, _) in self._rows.items() if s.user_id == user_id]
        return sum([await self.end(h, now=now, reason=reason) for h in live])

    async def end_expired(self, *, now: int, limit: int = 100) -> int:
        expired = sorted(
            (s.expires_at, h)
            for h, (s, ended) in self._rows.items()
            if not ended and s.expires_at <= now
        )[:limit]
        for _, session_hash in expired:
            self._end(session_hash, now=now, reason="expired")
        return len(expired)

    def _end(self, session_hash: str, *, now: int, reason: str) -> None:
        session = self._rows[session_hash][0]
        self._rows[session_hash] = (session, True)
        for client_id in self._joined.get(session_hash, []):
            client = self._clients._rows.get(client_id)
            if client is not None and client.oidc.backchannel_logout_uri is not None:
                self._logouts.add(client_id, session, now=now, reason=reason)
        revoked, tokens, kept = 0, 0, 0
        if self._tokens is not None and session.sid is not None:
            revoked, tokens, kept = self._tokens().revoke_session_grants(session.sid, now=now)
        event = session_end_event(
            session.user_id,
            at=now,
            reason=reason,
            revoked_grants=revoked,
            revoked_tokens=tokens,
            kept_grants=kept,
        )
        self._audit.events.append(event)

    def purge(self, *, before: int) -> int:
        """Drop the sessions that expired at or before `before` and were ended."""
        gone = [h for h, (s, ended) in self._rows.items() if ended and s.expires_at <= before]
        for key in gone:
            del self._rows[key]
            self._joined.pop(key, None)
        return len(gone)

    def forget(self, user_id: str) -> None:
        for key in [h for h, (s, _) in self._rows.items() if s.user_id == user_id]:
            del self._rows[key]
            self._joined.pop(key, None)

    def forget_client(self, client_id: str) -> None:
        for joined in self._joined.values():
            if client_id in joined:
                joined.remove(client_id)
        self._logouts.forget_client(client_id)


class MemoryLogoutQueue:
    def __init__(self) -> None:
        self._rows: dict[int, tuple[PendingLogout, int]] = {}  # id -> (delivery, due at)
        self._next_id = 1

    def add(self, client_id: str, session: LoginSession, *, now: int, reason: str) -> None:
        delivery = PendingLogout(
            delivery_id=self._next_id,
            client_id=client_id,
            user_id=session.user_id,
            sid=session.sid,
            jti=secrets.token_urlsafe(16),
            reason=reason,
            created_at=now,
            attempts=0,
        )
        self._rows[self._next_id] = (delivery, now)
        self._next_id += 1

    async def claim(self, *, now: int, lease: int, limit: int) -> Sequence[PendingLogout]:
        if limit < 1 or lease < 1:
            raise ValueError("limit and lease must be positive")
        due = sorted((at, i) for i, (_, at) in self._rows.items() if at <= now)[:limit]
        claimed = []
        for _, delivery_id in due:
            delivery = self._rows[delivery_id][0]
            delivery = dataclasses.replace(delivery, attempts=delivery.attempts + 1)
            self._rows[delivery_id] = (delivery, now + lease)
            claimed.append(delivery)
        return sorted(claimed, key=lambda d: d.delivery_id)

    async def finish(self, delivery_id: int) -> None:
        self._rows.pop(delivery_id, None)

    async def retry(self, delivery_id: int, *, at: int) -> None:
        if delivery_id in self._rows:
            self._rows[delivery_id] = (self._rows[delivery_id][0], at)

    async def pending(self) -> Sequence[PendingLogout]:
        return [self._rows[i][0] for i in sorted(self._rows)]

    def forget_client(self, client_id: str) -> None:
        for delivery_id in [i for i, (d, _) in self._rows.items() if d.client_id == client_id]:
            del self._rows[delivery_id]


class MemoryStore:
    """Every store in memory."""

    def __init__(self) -> None:
        self.clients = MemoryClientStore(forget=lambda client_id: self._forget(client_id, None))
        self.users = MemoryUserStore(forget=lambda user_id: self._forget(None, user_id))
        self.apis = MemoryApiStore()
        self.replay = MemoryReplayStore()
        self.audit = MemoryAuditLog()
        self.logouts = MemoryLogoutQueue()
        self.sessions = MemorySessionStore(
            self.clients, self.logouts, tokens=lambda: self.tokens, audit=self.audit
        )
        self.codes = MemoryCodeStore(self.sessions)
        self.throttle = MemoryThrottleStore()
        self.rates = MemoryRateCounters()
        self.penalties = MemoryPenaltyStore()
        self.tokens = MemoryTokenStore(
            codes=self.codes,
            replay=self.replay,
            audit=self.audit,
            sessions=self.sessions,
            throttle=self.throttle,
            rates=self.rates,
            penalties=self.penalties,
        )
        self.consents = MemoryConsentStore()
        self.keys = MemoryKeyStore()

    async def ping(self) -> None:
        """Memory always answers."""

    def _forget(self, client_id: str | None, user_id: str | None) -> None:
        """A deleted client or user takes what was issued to it along (as SqlStore's
        ON DELETE CASCADE does), and its grants stay revoked for introspection."""
        grants = self.codes.forget(client_id=client_id, user_id=user_id)
        self.tokens.forget(client_id=client_id, user_id=user_id, grants=grants)
        self.consents.forget(client_id=client_id, user_id=user_id)
        if user_id is not None:
            self.sessions.forget(user_id)
        if client_id is not None:
            self.sessions.forget_client(client_id)


def _is_owned(
    owner_client: str, owner_user: str | None, *, client_id: str | None, user_id: str | None
) -> bool:
    return (client_id is not None and owner_client == client_id) or (
        user_id is not None and owner_user == user_id
    )
