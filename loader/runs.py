"""Run records (identity_loader.runs) and the one-run-at-a-time advisory lock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

# pg_advisory_lock keys, one per job, so a resolve and a rotation refresh may overlap.
LOCK_KEYS = {"resolve": 0x4C49_0001, "rotation_refresh": 0x4C49_0002,
             "rotation_backfill": 0x4C49_0003}


class RunLocked(RuntimeError):
    """Another run of the same job holds the lock."""


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


def mark_abandoned(conn: psycopg.Connection, job: str) -> int:
    """Runs left 'running' by a killed process become 'interrupted'. Only call with the lock
    held: then no live run of this job can exist."""
    cur = conn.execute(
        "update identity_loader.runs set status = 'interrupted', finished_at = now(), "
        "error = coalesce(error, 'process ended without finishing the run') "
        "where job = %s and status = 'running'", (job,))
    return cur.rowcount


def start_run(conn: psycopg.Connection, job: str, mode: str | None,
              options: dict[str, Any]) -> uuid.UUID:
    run_id = uuid.uuid4()
    conn.execute(
        "insert into identity_loader.runs (run_id, job, mode, options) values (%s, %s, %s, %s)",
        (run_id, job, mode, Jsonb(options)))
    return run_id


def save_counters(conn: psycopg.Connection, run_id: uuid.UUID, counters: dict[str, Any]) -> None:
    conn.execute("update identity_loader.runs set counters = %s where run_id = %s",
                 (Jsonb(counters), run_id))


def finish_run(conn: psycopg.Connection, run_id: uuid.UUID, status: str,
               counters: dict[str, Any], error: str | None = None) -> None:
    conn.execute(
        "update identity_loader.runs set status = %s, finished_at = now(), counters = %s, "
        "error = %s where run_id = %s", (status, Jsonb(counters), error, run_id))
