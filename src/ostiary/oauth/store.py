"""The storage contract the protocol core needs: data access only, no policy.

Every method is atomic on its own. `ostiary.store.SqlStore` implements it on SQLite and
PostgreSQL; `ostiary.oauth.memory.MemoryStore` in memory, for tests and one-process use.
Times are integer Unix seconds passed in by the caller; stores never read the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from .models import (
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


class ClientStore(Protocol):
    async def get(self, client_id: str) -> Client | None: ...
    async def add(self, client: Client) -> None:
        """Insert; `ValueError` if the client_id exists."""

    async def update(self, client: Client) -> bool:
        """Replace every field but `created_at` of `client.client_id`; False if unknown."""

    async def list(self) -> Sequence[Client]: ...
    async def delete(self, client_id: str) -> bool:
        """Remove the client and everything issued to it; False if unknown."""


class ApiStore(Protocol):
    async def get(self, identifier: str) -> Api | None: ...
    async def add(self, api: Api) -> None:
        """Insert; `ValueError` if the identifier exists."""

    async def list(self) -> Sequence[Api]:
        """Every API, by identifier."""

    async def delete(self, identifier: str) -> bool:
        """Remove the API; False if unknown. Tokens already issued for it stay as they are."""


class UserStore(Protocol):
    async def get(self, user_id: str) -> User | None: ...
    async def by_username(self, username: str) -> User | None: ...
    async def add(self, user: User) -> None:
        """Insert; `ValueError` if the username or user_id exists."""

    async def update(self, user: User) -> bool:
        """Replace the password hash and claims of `user.user_id`; False if unknown."""

    async def list(self) -> Sequence[User]: ...
    async def delete(self, user_id: str) -> bool: ...


class CodeStore(Protocol):
    async def put(self, code: AuthorizationCode) -> bool:
        """Store a new code; False, storing nothing, if the login session named by its `sid`
        has ended (perhaps while the code was made: the end then revokes it or it is
        refused, never neither). `ValueError` if it exists or names an unknown client or user.
        """

    async def consume(self, code_hash: str, *, now: int) -> CodeConsumption:
        """Mark used and return it atomically.

        First redemption of a live code: `CodeConsumption(code=..., replayed=False)`.
        A code already redeemed (and not yet purged): `CodeConsumption(code=..., replayed=True)`.
        Unknown or expired: `CodeConsumption(code=None)`.
        """

    async def peek(self, code_hash: str) -> AuthorizationCode | None:
        """The stored code whether used or expired (until purged), or None; changes nothing.

        Lets the token endpoint check client, redirect_uri and PKCE before `consume`, so a
        request that fails those checks leaves the code as it was.
        """


class TokenStore(Protocol):
    async def add_refresh(self, token: RefreshToken) -> None: ...
    async def rotate_refresh(
        self,
        token_hash: str,
        replacement: RefreshToken,
        *,
        now: int,
        issuance: Issuance | None = None,
    ) -> Rotation:
        """In one transaction: if `token_hash` is live, mark it rotated, store `replacement`
        and record `issuance` (its access token, its audit event); see `Rotation` for the
        outcomes. Nothing is written unless the token rotates. The caller has already checked
        that `replacement` belongs to the same family and client."""

    async def find_refresh(self, token_hash: str, *, now: int) -> RefreshToken | None:
        """A live (not rotated, not revoked, not expired) refresh token, or None."""

    async def peek_refresh(self, token_hash: str) -> RefreshToken | None:
        """The stored refresh token whatever its state (live, rotated, revoked, expired), or
        None; changes nothing. Lets the refresh grant check the client and scope, and build
        the replacement, before `rotate_refresh` (which also detects reuse)."""

    async def add_access(self, token: IssuedAccessToken) -> None: ...
    async def find_access(self, token_id: str) -> IssuedAccessToken | None:
        """A recorded access token whether or not it is live; see `is_revoked`."""

    async def revoke_access(self, token_id: str, *, expires_at: int, now: int) -> None:
        """Mark one access token revoked (recording the jti if it was never stored)."""

    async def revoke_refresh(self, token_hash: str, *, now: int) -> RefreshToken | None:
        """Revoke one refresh token; return it (None if unknown)."""

    async def revoke_grant(self, grant_id: str, *, now: int) -> int:
        """Revoke every refresh and access token of a grant (a family); return how many."""

    async def revoke_for_user_client(self, user_id: str, client_id: str, *, now: int) -> int:
        """Revoke every grant of this user at this client: each refresh token, each recorded
        access token, and the grants themselves (for good, as `revoke_grant`); their
        authorization codes are deleted, so one still in flight is never redeemed. Return how
        many tokens were revoked."""

    async def is_revoked(self, token_id: str, grant_id: str | None) -> bool:
        """True when the access token, or its grant, was revoked."""

    async def purge_expired(
        self, *, before: int, limit: int = 1000, throttle_before: int | None = None
    ) -> Purged:
        """One bounded step of the purge: of each table in `PURGED_TABLES`, delete up to
        `limit` rows that expired at or before `before` and that the protocol no longer
        needs; call again while `Purged.more`. Audit events are never purged.

        Kept although expired: a refresh token while any token of its family (`grant_id`)
        has not expired, so the reuse of a rotated one still revokes the family (RFC 9700
        §4.14.2); a redeemed code while a refresh or access token of its grant has not
        expired, so its replay still revokes them (RFC 6749 §4.1.2); a revoked grant while
        a code, refresh or access token of it has not expired, and for good when it was
        revoked by deleting its client or user (`revoked_at` None); a login session until
        it was ended (its logout tokens queued). Throttle hits go when recorded at or before
        `throttle_before` (None: none go). Each row is judged on its own, so a purge may
        stop anywhere and be run by several processes at once.
        """


class SessionStore(Protocol):
    async def add(self, session: LoginSession) -> None: ...
    async def get(self, session_hash: str, *, now: int) -> LoginSession | None:
        """The session if it is live (not ended, not expired), else None."""

    async def join(self, session_hash: str, client_id: str, *, now: int) -> None:
        """Record that the client was issued a code in this session (once per client);
        `ValueError` if the session or client is unknown."""

    async def clients_of(self, session_hash: str) -> Sequence[str]:
        """The ids of the clients that joined the session and are still registered, in the
        order they joined; ended sessions keep theirs until they are purged."""

    async def end(self, session_hash: str, *, now: int, reason: str = "logout") -> bool:
        """End one live session; False if it was unknown or already over.

        Ending a session queues, in the same transaction, one `PendingLogout` (for `reason`)
        per client that joined it and registered a back-channel logout URI; and revokes, as
        `TokenStore.revoke_grant` does, every grant whose code or refresh tokens carry its
        `sid` unless `backchannel_logout.outlives_session` keeps it (Back-Channel Logout 1.0
        §2.7), deleting its code if not yet redeemed, and records one `session_end_event`
        with the counts. So do the two methods
        below. A token written by a request racing the end is revoked all the same."""

    async def end_for_user(self, user_id: str, *, now: int, reason: str = "sign-out") -> int:
        """End every live session of the user; return how many."""

    async def end_expired(self, *, now: int, limit: int = 100) -> int:
        """End up to `limit` sessions that expired and were never ended (reason "expired");
        return how many. Concurrent callers never end, or queue for, the same session."""


class LogoutQueue(Protocol):
    """Logout tokens owed to clients (Back-Channel Logout 1.0 §2.5), until sent or given up."""

    async def claim(self, *, now: int, lease: int, limit: int) -> Sequence[PendingLogout]:
        """Take up to `limit` deliveries due at `now`, oldest first: each counts one more
        attempt and is not due again for `lease` seconds. Concurrent callers (other
        processes) never take the same delivery while its lease runs."""

    async def finish(self, delivery_id: int) -> None:
        """Remove a delivery: sent, or given up."""

    async def retry(self, delivery_id: int, *, at: int) -> None:
        """Make a claimed delivery due again at `at`."""

    async def pending(self) -> Sequence[PendingLogout]:
        """Every delivery still queued, oldest first."""


class ConsentStore(Protocol):
    async def get(self, user_id: str, client_id: str) -> Consent | None: ...
    async def put(self, consent: Consent) -> None:
        """Insert or replace the consent of (user_id, client_id)."""

    async def revoke(self, user_id: str, client_id: str) -> bool: ...
    async def list_for_user(self, user_id: str) -> Sequence[Consent]: ...


class KeyStore(Protocol):
    async def add(self, key: SigningKey) -> None: ...
    async def list(self) -> Sequence[SigningKey]:
        """Every key, newest first, including retired and expired ones."""

    async def update(self, key: SigningKey) -> None:
        """Replace the row with this kid (to set `retires_at` / `expires_at`)."""


class ReplayStore(Protocol):
    async def first_use(self, key: str, *, expires_at: int, now: int) -> bool:
        """Atomically record `key` (e.g. a client assertion jti); False if already seen."""


class ThrottleStore(Protocol):
    async def hit(self, key: str, *, now: int, window: int) -> int:
        """Record one failure for `key`; return failures within the last `window` seconds."""

    async def count(self, key: str, *, now: int, window: int) -> int: ...
    async def recent(self, key: str, *, now: int, window: int) -> tuple[int, int | None]:
        """Failures within the last `window` seconds, and when the latest was (None: none)."""

    async def forgive(self, key: str, *, at: int) -> None:
        """Remove one failure of `key` recorded at `at`, if there is one."""

    async def reset(self, key: str) -> None: ...


class RateCounterStore(Protocol):
    async def add(
        self, window: int, counts: Mapping[str, int], *, expires_at: int, now: int
    ) -> dict[str, int]:
        """Add `counts` to each key's counter for fixed window number `window`, atomically
        per key, and return each key's new total over every caller. Counters may be dropped
        once `expires_at` has passed; `now` lets the store drop expired ones meanwhile."""


class PenaltyStore(Protocol):
    """The `Penalty` of each key past a shared limit (`ostiary.oauth.rate_limits`)."""

    async def update(
        self, key: str, change: Callable[[Penalty | None], Penalty], *, now: int
    ) -> Penalty:
        """Replace the penalty of `key` by `change(current)`, with no other update of that
        key in between (every process), and return it. `current` is None when there is
        none or it was forgotten (`forget_at <= now`)."""

    async def active(self, prefix: str, *, now: int, waiting: bool = False) -> dict[str, Penalty]:
        """Every penalty not yet forgotten whose key starts with `prefix`, by key; with
        `waiting`, only those that still refuse (`until > now`)."""

    async def forget(self, key: str) -> None: ...


class AuditLog(Protocol):
    async def record(self, event: AuditEvent) -> None: ...
    async def tail(self, limit: int = 50) -> Sequence[AuditEvent]: ...


class Store(Protocol):
    """Everything the core stores, grouped by what it is."""

    @property
    def clients(self) -> ClientStore: ...
    @property
    def users(self) -> UserStore: ...
    @property
    def apis(self) -> ApiStore: ...
    @property
    def codes(self) -> CodeStore: ...
    @property
    def tokens(self) -> TokenStore: ...
    @property
    def consents(self) -> ConsentStore: ...
    @property
    def sessions(self) -> SessionStore: ...
    @property
    def logouts(self) -> LogoutQueue: ...
    @property
    def keys(self) -> KeyStore: ...
    @property
    def replay(self) -> ReplayStore: ...
    @property
    def throttle(self) -> ThrottleStore: ...
    @property
    def rates(self) -> RateCounterStore: ...
    @property
    def penalties(self) -> PenaltyStore: ...
    @property
    def audit(self) -> AuditLog: ...

    async def ping(self) -> None:
        """Return when the storage answers; raise when it cannot be reached (health checks)."""
