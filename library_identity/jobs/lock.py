"""One run of a job at a time: a session-level advisory lock per job."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from library_identity.db import require_migrated
from library_identity.errors import DatabaseError, RunLocked

# pg_advisory_lock keys, one per job, so a resolve and a rotation refresh may overlap;
# `migrate` holds its own (library_identity.migrate).
LOCK_KEYS = {"resolve": 0x4C49_0001, "rotation_refresh": 0x4C49_0002,
             "rotation_backfill": 0x4C49_0003, "migrate": 0x4C49_0004}
# Not a job's: the report views are rebuilt under this key held exclusively and read under
# it held shared, so two reports never build them at once, nor read them mid-build.
REPORT_VIEWS_LOCK_KEY = 0x4C49_0010


@dataclass
class RunLock:
    """A session-level advisory lock held on its own connection for the whole run."""

    conn: psycopg.Connection
    job: str

    def release(self) -> None:
        # Closing the session releases the lock too; unlock first to be explicit.
        try:
            if not self.conn.closed:
                self.conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEYS[self.job],))
        except psycopg.Error:
            pass
        finally:
            self.conn.close()


def acquire_lock(conn: psycopg.Connection, job: str) -> RunLock:
    """Take the job's lock on `conn` (autocommit) or raise RunLocked at once."""
    try:
        require_migrated(conn)
    except DatabaseError:
        conn.close()
        raise
    row = conn.execute("select pg_try_advisory_lock(%s)", (LOCK_KEYS[job],)).fetchone()
    if not row or not row[0]:
        holder = conn.execute(
            "select run_id, started_at from identity_loader.runs "
            "where job = %s and status = 'running' order by started_at desc limit 1",
            (job,)).fetchone()
        since = f" (run {holder[0]}, started {holder[1]:%Y-%m-%d %H:%M:%S %Z})" if holder else ""
        conn.close()
        raise RunLocked(f"another {job} run is in progress{since}; not starting a second one")
    return RunLock(conn=conn, job=job)
