"""Schema migrations (plain SQL in migrations/), applied with yoyo-migrations.

One `migrate` at a time, and a lock that heals: yoyo's lock is a row (pid and time) in
identity_loader.yoyo_lock, which a `migrate` killed mid-run leaves behind, and which then
stops every later one. Each `migrate` also holds a session-level advisory lock on the
connection yoyo applies the migrations with; Postgres releases it when that session ends,
however the process ended. So a `migrate` that holds it knows no other is running, and
clears a lock row left behind (saying whose it was) before taking yoyo's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from yoyo import get_backend, read_migrations
from yoyo.exceptions import LockTimeout

from library_identity import dbt_builds
from library_identity.db import LOADER_SCHEMA, Database
from library_identity.errors import DatabaseError, RunLocked
from library_identity.jobs.lock import LOCK_KEYS
from library_identity.paths import MIGRATIONS_DIR

log = logging.getLogger(__name__)

APPLICATION_NAME = "library-identity:migrate"
# How long a `migrate` waits for another one to finish before it gives up (exit 4).
LOCK_WAIT_S = 30.0
_LOCK_POLL_S = 0.25
_LOCK_TABLE = f"{LOADER_SCHEMA}.yoyo_lock"


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]


@contextmanager
def _backend(db: Database) -> Iterator[Any]:
    """yoyo's backend for the database; its connection is closed on leaving, not when
    collected (a session left open blocks copying the database, or dropping it)."""
    # yoyo keeps its bookkeeping in the connection's schema: ours, not public.
    # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
    # exists; a station role has its schema made by the DBA and no such privilege.
    with db.connect(autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_namespace where nspname = %s",
                              (LOADER_SCHEMA,)).fetchone()
        if not exists:
            conn.execute(f"create schema {LOADER_SCHEMA}")
    uri = f"{db.yoyo_uri(LOADER_SCHEMA)}&{urlencode({'application_name': APPLICATION_NAME})}"
    backend = get_backend(uri)
    try:
        yield backend
    finally:
        backend.connection.close()


def status(db: Database, migrations_dir: Path = MIGRATIONS_DIR) -> MigrationStatus:
    with _backend(db) as backend:
        migrations = read_migrations(str(migrations_dir))
        pending = {m.id for m in backend.to_apply(migrations)}
    return MigrationStatus(
        applied=[m.id for m in migrations if m.id not in pending],
        pending=[m.id for m in migrations if m.id in pending],
    )


def apply(db: Database, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns their ids (empty when up to date)."""
    with _backend(db) as backend:
        migrations = read_migrations(str(migrations_dir))
        with migration_lock(backend):
            todo = backend.to_apply(migrations)
            backend.apply_migrations(todo)
    if todo:
        # What dbt deployed read the tables as they were: the next resolve builds again.
        with db.connect() as conn:
            dbt_builds.forget_all(conn)
            conn.commit()
    return [m.id for m in todo]


def rollback(db: Database, count: int | None = None,
             migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Roll back the last `count` applied migrations (all when None)."""
    with _backend(db) as backend:
        migrations = read_migrations(str(migrations_dir))
        with migration_lock(backend):
            todo = backend.to_rollback(migrations)
            if count is not None:
                todo = todo[:count]
            backend.rollback_migrations(todo)
    return [m.id for m in todo]


@contextmanager
def migration_lock(backend: Any) -> Iterator[None]:
    """The role may migrate (DatabaseError naming what it lacks, at once); no other
    `migrate` runs (waits up to LOCK_WAIT_S, then RunLocked naming the session that holds
    the lock and how to end it); a lock row left by a `migrate` that is gone is cleared;
    then yoyo's own lock, held while the block runs."""
    conn = backend.connection  # autocommit outside yoyo's transactions
    _require_privileges(conn)
    key = LOCK_KEYS["migrate"]
    deadline = time.monotonic() + LOCK_WAIT_S
    while not conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
        if time.monotonic() >= deadline:
            raise RunLocked(_held_by(conn, key))
        time.sleep(_LOCK_POLL_S)
    try:
        _clear_stale_lock(conn)
        try:
            with backend.lock(timeout=5):
                yield
        except LockTimeout:
            # Only a `migrate` that takes no advisory lock (an older version) gets here.
            raise RunLocked(f"another process holds the migration lock ({_LOCK_TABLE}); "
                            f"if no `migrate` is running, clear it: delete from "
                            f"{_LOCK_TABLE};") from None
    finally:
        if not conn.closed:
            conn.execute("select pg_advisory_unlock(%s)", (key,))


def _require_privileges(conn: Any) -> None:
    """What taking yoyo's lock and applying needs; without it yoyo would retry its insert
    for ten seconds and end with a LockTimeout that says nothing of privileges."""
    schema_create, insert, delete = conn.execute(
        "select has_schema_privilege(%(schema)s, 'create'), "
        "to_regclass(%(table)s) is null or has_table_privilege(%(table)s, 'insert'), "
        "to_regclass(%(table)s) is null or has_table_privilege(%(table)s, 'delete')",
        {"schema": LOADER_SCHEMA, "table": _LOCK_TABLE}).fetchone()
    missing = [what for what, held in (
        (f"CREATE on schema {LOADER_SCHEMA}", schema_create),
        (f"INSERT on {_LOCK_TABLE}", insert), (f"DELETE on {_LOCK_TABLE}", delete)) if not held]
    if missing:
        raise DatabaseError(
            f"the database user lacks a privilege: `migrate` needs {', '.join(missing)}; run "
            f"it as the owner of schema {LOADER_SCHEMA} (`library-identity grants ROLE` "
            "prints what a station role needs)")


def _clear_stale_lock(conn: Any) -> None:
    """Delete yoyo lock rows: with the advisory lock held, no `migrate` holds them."""
    if conn.execute("select to_regclass(%s)", (_LOCK_TABLE,)).fetchone()[0] is None:
        return
    for pid, since in conn.execute(f"delete from {_LOCK_TABLE} returning pid, ctime"):
        log.warning("cleared a migration lock left by process %s (taken %s UTC): that "
                    "`migrate` no longer runs", pid, f"{since:%Y-%m-%d %H:%M:%S}" if since
                    else "at an unknown time")


def _held_by(conn: Any, key: int) -> str:
    """Who holds the advisory lock, and how to end that session if it is a leftover."""
    row = conn.execute(
        "select a.pid, a.application_name, a.backend_start from pg_locks l "
        "join pg_stat_activity a on a.pid = l.pid where l.locktype = 'advisory' "
        "and l.granted and l.database = (select oid from pg_database "
        "where datname = current_database()) and l.objid = %s::bigint & 4294967295 "
        "and l.classid = %s::bigint >> 32 limit 1", (key, key)).fetchone()
    if row is None:
        return "another `migrate` is applying migrations; run it again when that one ends"
    pid, app, since = row
    return (f"another `migrate` is applying migrations (server process {pid}, "
            f"{app or 'no application name'}, connected {since:%Y-%m-%d %H:%M:%S %Z}); "
            f"wait for it, or if no `migrate` is running, end that session: "
            f"select pg_terminate_backend({pid});")
