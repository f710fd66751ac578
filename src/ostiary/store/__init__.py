"""Ostiary's storage: the `ostiary.oauth` `Store` contract on SQLAlchemy 2 (async), on a
SQLite file by default or on PostgreSQL, with Alembic migrations.

```python
from ostiary.store import migrate, open_store

await migrate("sqlite:///ostiary.db")           # or postgresql://user@host:5432/ostiary
store = await open_store("sqlite:///ostiary.db")
client = await store.clients.get("c_123")
await store.close()
```
"""

from __future__ import annotations

from ._audit import AuditFilter, write_audit_lines_with
from ._migrate import migrate
from ._sql_store import SqlStore, open_store
from ._urls import DEFAULT_DATABASE_URL, engine_url

__all__ = [
    "DEFAULT_DATABASE_URL",
    "AuditFilter",
    "SqlStore",
    "engine_url",
    "migrate",
    "open_store",
    "write_audit_lines_with",
]
