"""`SqlStore`, the `Store` contract on SQLAlchemy (SQLite or PostgreSQL), and `open_store`."""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import text
from sqlalchemy.engine import URL

from ._apis import SqlApiStore
from ._audit import SqlAuditLog
from ._clients import SqlClientStore
from ._codes import SqlCodeStore
from ._consents import SqlConsentStore
from ._database import DEFAULT_TIMEOUT_S, Database, connect, pool_status, sqlite_file_exists
from ._keys import SqlKeyStore
from ._logouts import SqlLogoutQueue
from ._migrate import current_revision, head_revision, upgrade
from ._penalties import SqlPenaltyStore
from ._rates import SqlRateCounters
from ._replay import SqlReplayStore
from ._sessions import SqlSessionStore
from ._throttle import SqlThrottleStore
from ._tokens import SqlTokenStore
from ._urls import is_sqlite_memory, parse_database_url
from ._users import SqlUserStore

if TYPE_CHECKING:
    from ostiary.oauth.store import Store

_PING: Final = text("SELECT 1")


class SqlStore:
    """Every store on one database; made by `open_store`, ended by `close()`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.clients = SqlClientStore(db)
        self.users = SqlUserStore(db)
        self.apis = SqlApiStore(db)
        self.codes = SqlCodeStore(db)
        self.tokens = SqlTokenStore(db)
        self.consents = SqlConsentStore(db)
        self.sessions = SqlSessionStore(db)
        self.logouts = SqlLogoutQueue(db)
        self.keys = SqlKeyStore(db)
        self.replay = SqlReplayStore(db)
        self.throttle = SqlThrottleStore(db)
        self.rates = SqlRateCounters(db)
        self.penalties = SqlPenaltyStore(db)
        self.audit = SqlAuditLog(db)

    @property
    def backend(self) -> str:
        """Which database this is: "sqlite" or "postgresql"."""
        return "postgresql" if self._db.is_postgresql else "sqlite"

    async def ping(self) -> None:
        """Return when the database answers a query; raise when it cannot be reached."""
        await self._db.read(lambda conn: conn.execute(_PING).scalar())

    def pool_status(self) -> dict[str, int]:
        """The connection pool right now: size, checked_out, checked_in, overflow."""
        return pool_status(self._db)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._db.close()

    async def __aenter__(self) -> SqlStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def open_store(
    database_url: str, *, pool_size: int = 10, timeout: float = DEFAULT_TIMEOUT_S
) -> StoreOpening:
    """A `SqlStore` on a migrated database (see `migrate`): `store = await open_store(url)`,
    or `async with open_store(url) as store:` to close it at the end of the block.

    `pool_size` connections at most (PostgreSQL); `timeout` seconds bound each connect,
    wait for a pooled connection and statement, past which an operation raises
    `ostiary.oauth.errors.DatabaseUnavailable`.

    `sqlite:///:memory:` is migrated here, as it lives only as long as the store. Raises
    `RuntimeError` when the schema is not the one this version of Ostiary needs.
    """
    if pool_size < 1:
        raise ValueError("pool_size must be at least 1")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    return StoreOpening(parse_database_url(database_url), pool_size=pool_size, timeout=timeout)


class StoreOpening(Coroutine[Any, Any, SqlStore]):
    """What `open_store` returns: a coroutine (await it, or hand it to `asyncio.run`) that
    is also an async context manager (closing the store at the end of the block)."""

    def __init__(self, url: URL, *, pool_size: int, timeout: float) -> None:
        self._url = url
        self._pool_size = pool_size
        self._timeout = timeout
        self._store: SqlStore | None = None
        self._opening: Coroutine[Any, Any, SqlStore] | None = None  # made when first run

    def __await__(self) -> Generator[Any, None, SqlStore]:
        return self._coroutine().__await__()

    def send(self, value: Any) -> Any:
        return self._coroutine().send(value)

    def throw(self, *args: Any) -> Any:
        return self._coroutine().throw(*args)

    def close(self) -> None:
        if self._opening is not None:
            self._opening.close()

    def _coroutine(self) -> Coroutine[Any, Any, SqlStore]:
        if self._opening is None:
            self._opening = self._open()
        return self._opening

    async def __aenter__(self) -> SqlStore:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()

    async def _open(self) -> SqlStore:
        url = self._url
        if not sqlite_file_exists(url):
            raise RuntimeError(f"no database at {url.database}: run `ostiary migrate` first")
        db = connect(url, pool_size=self._pool_size, timeout=self._timeout)
        try:
            if is_sqlite_memory(url):
                await upgrade(db)
            else:
                found = await current_revision(db)
                if found != head_revision():
                    raise RuntimeError(
                        f"the database schema is at revision {found or 'none'}, this Ostiary "
                        f"needs {head_revision()}: run `ostiary migrate`"
                    )
        except BaseException:
            await db.close()
            raise
        return SqlStore(db)


if TYPE_CHECKING:

    def _is_a_store(store: SqlStore) -> Store:
        return store  # mypy proves here that SqlStore implements every Protocol
