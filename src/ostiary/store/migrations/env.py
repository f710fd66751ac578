"""Alembic's entry point. It runs only inside `ostiary.store.migrate`, which opens the
connection, takes the migration lock and begins the transaction this runs in."""

from __future__ import annotations

from alembic import context

from ostiary.store._schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Ostiary's migrations run through `ostiary migrate` or ostiary.store.migrate(url), "
        "which hold the lock that lets several processes start at once"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transactional_ddl=True,  # SQLite too: SQLAlchemy emits BEGIN, so its DDL is transactional
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
