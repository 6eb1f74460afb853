"""Schema migrations (plain SQL in migrations/), applied with yoyo-migrations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yoyo import get_backend, read_migrations

from library_identity.db import LOADER_SCHEMA, Database
from library_identity.paths import MIGRATIONS_DIR


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]


def _backend(db: Database):
    # yoyo keeps its bookkeeping in the connection's schema: ours, not public.
    # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
    # exists; a station role has its schema made by the DBA and no such privilege.
    with db.connect(autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_namespace where nspname = %s",
                              (LOADER_SCHEMA,)).fetchone()
        if not exists:
            conn.execute(f"create schema {LOADER_SCHEMA}")
    return get_backend(db.yoyo_uri(LOADER_SCHEMA))


def status(db: Database, migrations_dir: Path = MIGRATIONS_DIR) -> MigrationStatus:
    backend = _backend(db)
    migrations = read_migrations(str(migrations_dir))
    pending = {m.id for m in backend.to_apply(migrations)}
    return MigrationStatus(
        applied=[m.id for m in migrations if m.id not in pending],
        pending=[m.id for m in migrations if m.id in pending],
    )


def apply(db: Database, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns their ids (empty when up to date)."""
    backend = _backend(db)
    migrations = read_migrations(str(migrations_dir))
    with backend.lock():
        todo = backend.to_apply(migrations)
        backend.apply_migrations(todo)
    return [m.id for m in todo]


def rollback(db: Database, count: int | None = None,
             migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Roll back the last `count` applied migrations (all when None)."""
    backend = _backend(db)
    migrations = read_migrations(str(migrations_dir))
    with backend.lock():
        todo = backend.to_rollback(migrations)
        if count is not None:
            todo = todo[:count]
        backend.rollback_migrations(todo)
    return [m.id for m in todo]
