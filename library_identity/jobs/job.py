"""One run of a job from lock to record, and the rule that stops a run when LML keeps
failing."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import psycopg

from library_identity import secrets, telemetry
from library_identity.db import Database, Writer
from library_identity.errors import (
    DatabaseError,
    InvariantViolation,
    LMLUnavailable,
    RunLocked,
    note_saved,
)
from library_identity.jobs.diagnostics import Diagnostics
from library_identity.jobs.lock import RunLock, acquire_lock
from library_identity.jobs.records import finish_run, mark_abandoned, save_counters, start_run
from library_identity.lml.client import LMLClient

log = logging.getLogger(__name__)


class Counters(Protocol):
    def check_invariant(self) -> None: ...

    def as_dict(self) -> dict[str, Any]: ...


def run_saved(run_id: uuid.UUID | None, status: str, *, recorded: bool = True,
              dry_run: bool = False) -> str:
    """What a run that ended early kept, as a failure's last line says it."""
    if dry_run:
        return "nothing (a dry run writes nothing)"
    if run_id is None:
        return "nothing was written"
    if not recorded:
        return (f"everything run {run_id} committed before the database went away (its "
                "record still says running; the next run marks it interrupted)")
    return f"run {run_id} is recorded as {status}, with everything it landed"


class JobRun:
    """One run of a job from lock to record: the job's advisory lock, its stop event, the
    run record (none for a dry run) with its counters, the Sentry transaction and, however
    the run ends, its final status and error.

    Use as a context manager. Call `begin()` once the job's own checks have passed and
    `settle()` once its work is done; errors leaving the block set status failed (or
    interrupted for KeyboardInterrupt) and go to Sentry tagged with the step, and a lost
    database connection becomes a DatabaseError with a re-run hint.
    """

    def __init__(self, db: Database, job: str, *, statement_timeout_ms: int,
                 dry_run: bool = False, stop: threading.Event | None = None,
                 client: LMLClient | None = None) -> None:
        self.db = db
        self.job = job
        self.dry_run = dry_run
        self.statement_timeout_ms = statement_timeout_ms
        self.stop = stop or threading.Event()
        if client is not None:  # the client's retry waits end when the run is stopped
            client.stop = self.stop
        self.started = time.perf_counter()
        self.writer = Writer(db, statement_timeout_ms=statement_timeout_ms)
        self.run_id: uuid.UUID | None = None
        # The id the run record gets; the job's log lines carry it from the lock on.
        self.planned_id = uuid.uuid4()
        self.recorded = False  # the end of the run is on its record
        self.status = "failed"
        self.error: str | None = None
        self.counters: Callable[[], dict[str, Any]] = dict
        self.diagnostics = Diagnostics()
        self._lock: RunLock | None = None

    def __enter__(self) -> JobRun:
        try:
            self._lock = acquire_lock(
                self.db.connect(autocommit=True, application_name="library-identity:lock"),
                self.job)
        except RunLocked as exc:
            note_saved(exc, "nothing: this run did not start")
            raise
        telemetry.set_run(self.job, "dry-run" if self.dry_run else str(self.planned_id))
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
                return start_run(conn, self.job, mode, options, self.planned_id)

        self.run_id = self.writer.run(start)
        return self.run_id

    def reader(self) -> psycopg.Connection:
        """A connection to read the job's candidates on, under the job's statement timeout."""
        return self.db.connect(statement_timeout_ms=self.statement_timeout_ms,
                               application_name="library-identity:reader")

    def checkpoint(self, counters: dict[str, Any]) -> None:
        """Put the counters so far on the run record (a dry run has none)."""
        run_id = self.run_id
        if run_id is None:
            return

        def save(conn: psycopg.Connection) -> None:
            with conn.transaction():
                save_counters(conn, run_id, counters)

        self.writer.run(save)

    @contextlib.contextmanager
    def traced(self, op: str, name: str, data: Callable[[], dict[str, float]] | None = None,
               **tags: str) -> Iterator[Any]:
        """The run's Sentry transaction, tagged with the run id; `data()` (the counters as
        they stand) is set on it however the block ends."""
        with telemetry.sentry().start_transaction(op=op, name=name) as txn:
            txn.set_tag("run_id", str(self.run_id or "dry-run"))
            for key, value in tags.items():
                txn.set_tag(key, value)
            try:
                yield txn
            finally:
                for key, value in (data() if data else {}).items():
                    txn.set_data(key, value)

    def settle(self, counters: Counters, status: str = "succeeded") -> str:
        """Check that the counters account for every row; the run ends with `status`, or
        interrupted if it was stopped."""
        counters.check_invariant()
        self.status = "interrupted" if self.stop.is_set() else status
        return self.status

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        try:
            self.diagnostics.summarise(log)
            if exc is not None:
                self._failed(exc)
        finally:
            self._record()
            self.writer.close()
            if self._lock is not None:
                self._lock.release()
            telemetry.set_run(None, None)
        replaced: BaseException | None = None
        if isinstance(exc, psycopg.OperationalError):
            replaced = DatabaseError("lost the database connection during the run; what was "
                                     "committed is safe, re-run to continue")
        elif isinstance(exc, psycopg.errors.InsufficientPrivilege):
            replaced = DatabaseError(f"the database user lacks a privilege the {self.job} job "
                                     f"needs: {secrets.scrub(str(exc)).splitlines()[0]}")
        if exc is not None:
            note_saved(replaced or exc, self.saved())
        if replaced is not None:
            raise replaced from None

    def saved(self) -> str:
        """What this run kept, for the last line of its failure."""
        return run_saved(self.run_id, self.status, recorded=self.recorded,
                         dry_run=self.dry_run)

    def _failed(self, exc: BaseException) -> None:
        self.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        if isinstance(exc, psycopg.OperationalError):
            self.error = f"database connection lost: {type(exc).__name__}"
            return
        self.error = secrets.scrub(f"{type(exc).__name__}: {exc}")
        with telemetry.sentry().new_scope() as scope:
            scope.set_tag("step", "invariant" if isinstance(exc, InvariantViolation)
                          else "failed")
            scope.set_tag("run_id", str(self.run_id))
            telemetry.sentry().capture_exception(exc)

    def _record(self) -> None:
        if self.run_id is None:
            return
        run_id, status, counters, error = self.run_id, self.status, self.counters(), self.error

        def finish(conn: psycopg.Connection) -> None:
            with conn.transaction():
                finish_run(conn, run_id, status, counters, error)

        try:
            self.writer.run(finish)
            self.recorded = True
        except (psycopg.Error, DatabaseError) as exc:
            log.error("could not record the end of run %s: %s", run_id, type(exc).__name__)


class FailureStreak:
    """LML calls that failed in a row: at `limit` LML counts as unavailable and the run
    stops (exit 3) rather than spend its whole candidate list on a service that is down."""

    def __init__(self, limit: int, calls: str) -> None:
        self.limit = limit
        self.calls = calls  # what the message calls them, e.g. "batches"
        self.count = 0

    def succeeded(self) -> None:
        self.count = 0

    def failed(self, reason: str) -> None:
        self.count += 1
        if self.count >= self.limit:
            raise LMLUnavailable(f"LML failed {self.count} {self.calls} in a row "
                                 f"(last: {reason}); stopping")
