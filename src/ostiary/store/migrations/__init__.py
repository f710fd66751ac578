"""Alembic's environment and revisions for Ostiary's schema; run by `ostiary.store.migrate`."""
