"""Run records (identity_loader.runs) and the one-run-at-a-time advisory lock."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import sentry_sdk
from psycopg.types.json import Jsonb

from loader import secrets
from loader.db import Database, Writer, require_migrated
from loader.errors import DatabaseError, InvariantViolation, RunLocked

log = logging.getLogger(__name__)

# pg_advisory_lock keys, one per job, so a resolve and a rotation refresh may overlap.
LOCK_KEYS = {"resolve": 0x4C49_0001, "rotation_refresh": 0x4C49_0002,
             "rotation_backfill": 0x4C49_0003}
ERROR_MAX_CHARS = 2000


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
    # Scrubbed before it is cut, so no piece of a secret survives the cut.
    error = None if error is None else secrets.scrub(error)[:ERROR_MAX_CHARS]
    conn.execute(
        "update identity_loader.runs set status = %s, finished_at = now(), counters = %s, "
        "error = %s where run_id = %s", (status, Jsonb(counters), error, run_id))


class JobRun:
    """One run of a job from lock to record: the job's advisory lock, the run record (none
    for a dry run) and, however the run ends, its final status, counters and error.

    Use as a context manager; call `begin()` once the job's own checks have passed, set
    `status` (and `error`) before leaving normally. Errors leaving the block set status
    failed (or interrupted for KeyboardInterrupt), go to Sentry tagged with the step, and a
    lost database connection becomes a DatabaseError with a re-run hint.
    """

    def __init__(self, db: Database, job: str, *, statement_timeout_ms: int,
                 dry_run: bool = False) -> None:
        self.db = db
        self.job = job
        self.dry_run = dry_run
        self.writer = Writer(db, statement_timeout_ms=statement_timeout_ms)
        self.run_id: uuid.UUID | None = None
        self.status = "failed"
        self.error: str | None = None
        self.counters: Callable[[], dict[str, Any]] = dict
        self._lock: RunLock | None = None

    def __enter__(self) -> JobRun:
        self._lock = acquire_lock(
            self.db.connect(autocommit=True, application_name="library-identity:lock"),
            self.job)
        return self

    def begin(self, mode: str | None, options: dict[str, Any]) -> uuid.UUID | None:
        """Mark runs a killed process left 'running' as interrupted, and record this one."""
        if self.dry_run:
            return None
        with self.db.connect(autocommit=True) as conn:
            if mark_abandoned(conn, self.job):
                log.warning("marked abandoned %s runs as interrupted", self.job)

        def start(conn: psycopg.Connection) -> uuid.UUID:
            with conn.transaction():
                return start_run(conn, self.job, mode, options)

        self.run_id = self.writer.run(start)
        return self.run_id

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        try:
            if exc is not None:
                self._failed(exc)
        finally:
            self._record()
            self.writer.close()
            if self._lock is not None:
                self._lock.release()
        if isinstance(exc, psycopg.OperationalError):
            raise DatabaseError("lost the database connection during the run; what was "
                                "committed is safe, re-run to continue") from None
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            raise DatabaseError(f"the database user lacks a privilege the {self.job} job "
                                f"needs: {secrets.scrub(str(exc)).splitlines()[0]}") from None

    def _failed(self, exc: BaseException) -> None:
        self.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        if isinstance(exc, psycopg.OperationalError):
            self.error = f"database connection lost: {type(exc).__name__}"
            return
        self.error = secrets.scrub(f"{type(exc).__name__}: {exc}")
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("step", "invariant" if isinstance(exc, InvariantViolation)
                          else "failed")
            scope.set_tag("run_id", str(self.run_id))
            sentry_sdk.capture_exception(exc)

    def _record(self) -> None:
        if self.run_id is None:
            return
        run_id, status, counters, error = self.run_id, self.status, self.counters(), self.error

        def finish(conn: psycopg.Connection) -> None:
            with conn.transaction():
                finish_run(conn, run_id, status, counters, error)

        try:
            self.writer.run(finish)
        except (psycopg.Error, DatabaseError) as exc:
            log.error("could not record the end of run %s: %s", run_id, type(exc).__name__)
