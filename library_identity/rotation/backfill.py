"""`rotation backfill`: give active rotation rows that have a Discogs release id but no LML
release identity their `lml_identity_id`, through LML's identity/resolve.

The write is guarded: it lands only if the row still has no identity and still has the
release id that was sent. A row another writer changed meanwhile keeps that writer's
values and counts as `raced`.

It keeps out of the way while the station is on air: before each LML call it looks for a
track logged in the on-air log (wxyc_schema.flowsheet) within the lookback and, while there
is one, pauses and looks again, up to a ceiling after which the run fails.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from pydantic import ValidationError

from library_identity import telemetry
from library_identity.db import Database
from library_identity.errors import (
    DatabaseError,
    LMLAuthError,
    LMLError,
    LMLInterrupted,
    NoOnAirLog,
    StationLive,
)
from library_identity.jobs.calls import Call, CallLoop, traced_call
from library_identity.jobs.job import FailureStreak, JobRun
from library_identity.jobs.outcome import Shortfall, shortfall
from library_identity.jobs.records import save_counters
from library_identity.lml.client import LMLClient
from library_identity.lml.contract import ReleaseIdentityResolveResponse
from library_identity.lml.gate import check_health
from library_identity.lml.outage import Outage
from library_identity.rotation.counters import BackfillCounters
from library_identity.rotation.options import ACTIVE_ROTATION, STATEMENT_TIMEOUT_MS, BackfillOptions

log = logging.getLogger(__name__)

JOB = "rotation_backfill"
SOURCE = "discogs_release"
DRY_RUN_REPORT_VERSION = 1

_CANDIDATES_SQL = (
    "select id, discogs_release_id from wxyc_schema.rotation "
    f"where {ACTIVE_ROTATION} and lml_identity_id is null and discogs_release_id is not null "
    "order by id")
# Handles LML no longer knows: the latest cache refresh of the handle an active row holds
# answered not_found. The row's release id is resolved again for a current identity.
_STALE_CANDIDATES_SQL = (
    "select r.id, r.discogs_release_id, r.lml_identity_id from wxyc_schema.rotation r "
    "join lateral (select status from identity_loader.rotation_refresh_results x "
    "where x.identity_id = r.lml_identity_id order by refreshed_at desc, result_id desc "
    "limit 1) latest on true "
    f"where {ACTIVE_ROTATION.replace('kill_date', 'r.kill_date')} "
    "and r.discogs_release_id is not null and latest.status = 'not_found' order by r.id")
_ON_AIR_SQL = (
    "select exists (select 1 from wxyc_schema.flowsheet where entry_type = 'track' "
    "and add_time > now() - %s * interval '1 second')")
_GUARDED_UPDATE_SQL = (
    "update wxyc_schema.rotation set lml_identity_id = %s "
    "where id = %s and lml_identity_id is null and discogs_release_id = %s")
# A stale handle is replaced only while the row still holds it.
_GUARDED_REPLACE_SQL = (
    "update wxyc_schema.rotation set lml_identity_id = %s "
    "where id = %s and lml_identity_id = %s and discogs_release_id = %s")


@dataclass(frozen=True)
class Row:
    rotation_id: int
    discogs_release_id: int
    stale_identity_id: int | None = None  # the handle to replace (--stale-handles)


@dataclass(kw_only=True)
class _Call(Call):
    row: Row
    outcome: str = "lml_error"  # resolved | unresolved | lml_error
    identity_id: int | None = None
    minted: bool = False
    invalid: bool = False  # LML answered, but not with an identity the row can hold


@dataclass
class BackfillResult:
    run_id: uuid.UUID | None
    status: str
    counters: BackfillCounters
    candidates: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    shortfall: Shortfall | None = None  # why the run outcome rule failed the run


def read_candidates(conn: psycopg.Connection, limit: int | None, *,
                    stale_handles: bool = False) -> list[Row]:
    query = (_STALE_CANDIDATES_SQL if stale_handles else _CANDIDATES_SQL) + (
        " limit %s" if limit is not None else "")
    rows = conn.execute(query, (limit,) if limit is not None else ()).fetchall()
    return [Row(int(r[0]), int(r[1]), int(r[2]) if stale_handles else None) for r in rows]


def _resolve(client: LMLClient, row: Row, timeout_s: float, parent: Any) -> _Call:
    call = _Call(row=row)
    with traced_call(parent, "lml.identity_resolve", call, **{"lml.source": SOURCE}) as span:
        try:
            call.result = client.resolve_identity(SOURCE, str(row.discogs_release_id),
                                                  timeout_s=timeout_s)
        except LMLError as exc:
            if exc.status != 422:
                raise
            # LML refuses that release id (e.g. a sentinel): no identity to be had.
            call.attempts, call.outcome = exc.attempts, "unresolved"
            span.set_status("invalid_argument")
            return call
        try:
            answer = ReleaseIdentityResolveResponse.model_validate(call.result.body)
            call.outcome, call.identity_id, call.minted = "resolved", answer.identity_id, \
                answer.minted
        except ValidationError as exc:
            # E.g. an identity id beyond the integer column: this row only, counted.
            call.invalid = True
            where = ".".join(str(p) for p in exc.errors()[0].get("loc", ()))
            log.warning("invalid_response rotation_id=%s field=%s: %s", row.rotation_id,
                        where or "body", exc.errors()[0].get("msg", "invalid"))
            span.set_status("internal_error")
    return call


class _Runner:
    def __init__(self, job: JobRun, client: LMLClient, options: BackfillOptions) -> None:
        self.job = job
        self.client = client
        self.options = options
        self.counters = BackfillCounters()
        self.failures = FailureStreak(options.max_consecutive_failures,
                                      "identity/resolve calls")
        self.outage = Outage(client, options.lml_outage_budget_s, job.stop)
        self.on_air: psycopg.Connection | None = None  # for the quiet period's looks
        self.waited_s = 0.0  # the run's pauses so far: the ceiling is one budget per run
        job.counters = lambda: self.counters.as_dict()

    def _on_air(self, lookback_s: float) -> bool:
        assert self.on_air is not None
        try:
            row = self.on_air.execute(_ON_AIR_SQL, (lookback_s,)).fetchone()
        except psycopg.Error as exc:
            # Sending blind while the station may be live is what the quiet period is
            # there to prevent: stop, with what landed kept.
            reason = exc.diag.message_primary or type(exc).__name__
            raise DatabaseError(
                f"the on-air log wxyc_schema.flowsheet could not be read ({reason}); "
                "stopped before the next LML call, what was written stays; run again, "
                "or pass --quiet-lookback 0 to send without waiting") from exc
        return bool(row and row[0])

    def wait_for_quiet(self) -> bool:
        """Pause while a track was logged on air within the lookback; False when the run
        was stopped meanwhile. Raises StationLive once the run's pauses reach the ceiling,
        which, as the station's, is one budget for the whole run."""
        lookback, ceiling = self.options.quiet_lookback_s, self.options.quiet_max_wait_s
        if self.on_air is None or lookback <= 0:
            return True
        while self._on_air(lookback):
            waited = self.waited_s
            if ceiling and waited >= ceiling:
                raise StationLive(
                    f"the station has been on air for the whole quiet-period ceiling "
                    f"({ceiling:g} s of pauses this run: a track logged within every "
                    f"{lookback:g} s lookback); stopped before the next LML call, run again "
                    "later")
            pause = min(self.options.quiet_pause_s, ceiling - waited) if ceiling else \
                self.options.quiet_pause_s
            log.info("quiet_period_pause seconds=%g waited=%g: a track was logged on air "
                     "within the last %g s", pause, waited, lookback)
            self.counters.quiet_pauses += 1
            started = time.perf_counter()
            stopped = self.job.stop.wait(pause)
            self.counters.quiet_wait_ms += (time.perf_counter() - started) * 1000
            if stopped:
                return False
            self.waited_s += pause
        return True

    def handle(self, call: _Call) -> bool:
        """Count and write one answered row; False when it is to be sent again (LML was
        down; see library_identity.lml.outage)."""
        c = self.counters
        c.lml_total_calls += call.attempts
        c.lml_total_latency_ms += call.latency_ms
        if isinstance(call.error, LMLInterrupted):
            return True  # stopped before an answer: the row stays a candidate
        if call.error is not None and self.outage.rides_out(call.error, call.started_at,
                                                            call.row.rotation_id):
            return False
        if call.invalid:
            c.invalid_response += 1
        if isinstance(call.error, LMLAuthError):
            c.count("lml_error")
            raise call.error
        if call.outcome != "resolved":
            self._count(call.outcome)
            if call.outcome == "lml_error":
                self._lml_failed(call)
            else:
                self.failures.succeeded()
            return True
        self.failures.succeeded()
        if self.options.dry_run:
            c.count("resolved")
            if call.minted:
                c.minted += 1
            return True
        assert call.identity_id is not None and self.job.run_id is not None
        run_id, identity_id, row = self.job.run_id, call.identity_id, call.row

        def work(conn: psycopg.Connection) -> str:
            # The guarded write and the counters that include it commit together.
            with conn.transaction():
                if row.stale_identity_id is None:
                    updated = conn.execute(_GUARDED_UPDATE_SQL, (
                        identity_id, row.rotation_id, row.discogs_release_id)).rowcount
                else:
                    updated = conn.execute(_GUARDED_REPLACE_SQL, (
                        identity_id, row.rotation_id, row.stale_identity_id,
                        row.discogs_release_id)).rowcount
                outcome = "resolved" if updated == 1 else "raced"
                counted = copy.deepcopy(self.counters)
                counted.count(outcome)
                if outcome == "resolved" and call.minted:
                    counted.minted += 1
                save_counters(conn, run_id, counted.as_dict())
            self.counters = counted
            return outcome

        try:
            outcome = self.job.writer.run(work)
        except psycopg.Error as exc:  # a dropped connection is retried inside Writer.run
            raise DatabaseError(f"could not write rotation row {row.rotation_id} "
                                f"({type(exc).__name__})") from None
        if outcome == "raced":
            log.info("raced rotation_id=%s: the row changed while LML answered; kept the "
                     "other writer's values", row.rotation_id)
        return True

    def _count(self, outcome: str) -> None:
        self.counters.count(outcome)
        self.job.checkpoint(self.counters.as_dict())

    def _lml_failed(self, call: _Call) -> None:
        reason = str(call.error) if call.error else "invalid response"
        diagnostics = self.job.diagnostics
        diagnostics.log(log, "lml_error", "lml_error rotation_id=%s error=%s",
                        call.row.rotation_id, reason)
        if call.error is not None and diagnostics.may_send("lml_error"):
            with telemetry.sentry().new_scope() as scope:
                scope.set_tag("step", "lml_error")
                telemetry.sentry().capture_exception(call.error)
        self.failures.failed(reason)

    def run(self, rows: list[Row], txn: Any) -> None:
        pending = iter(rows)
        again: deque[Row] = deque()  # failed while LML was down: first in line

        def next_call(_in_flight: int) -> Callable[[], _Call] | None:
            row = again.popleft() if again else next(pending, None)
            if row is None or not self.wait_for_quiet():
                return None
            return functools.partial(_resolve, self.client, row, self.options.timeout_s, txn)

        def handle(call: _Call) -> None:
            if not self.handle(call):
                again.append(call.row)

        concurrency = self.options.concurrency
        CallLoop(self.job.stop, workers=concurrency, name="lml-backfill",
                 limit=lambda: concurrency).run(next_call, handle)


def backfill(db: Database, client: LMLClient, options: BackfillOptions, *,
             stop: threading.Event | None = None) -> BackfillResult:
    """One backfill run (a dry run calls LML but writes nothing, not even a run record).
    Raises RunLocked, LMLUnavailable, LMLAuthError, DatabaseError, InvariantViolation."""
    options.validate()
    with JobRun(db, JOB, statement_timeout_ms=STATEMENT_TIMEOUT_MS, dry_run=options.dry_run,
                stop=stop, client=client) as job:
        runner = _Runner(job, client, options)
        check_health(client)
        with job.reader() as conn:
            rows = read_candidates(conn, options.limit, stale_handles=options.stale_handles)
        log.info("candidates rotation_rows=%d", len(rows))
        names = telemetry.sentry_names()
        with contextlib.ExitStack() as stack:
            if rows and options.quiet_lookback_s > 0:
                runner.on_air = stack.enter_context(_on_air_log(db))
            job.begin("live", options.public())
            txn = stack.enter_context(job.traced(
                names.backfill_op, names.backfill_transaction,
                lambda: runner.counters.flat(names.backfill_prefix)))
            txn.set_data("dry_run", int(options.dry_run))
            for key, value in options.sentry_settings().items():
                txn.set_data(f"{names.backfill_settings_prefix}.{key}", value)
            runner.run(rows, txn)
        c = runner.counters
        short = None if options.dry_run else shortfall(
            c.scanned, c.lml_error - c.invalid_response, c.invalid_response,
            detail="invalid_response")
        job.settle(c, "failed" if short else "succeeded")
        job.error = short.message if short else None
        return BackfillResult(run_id=job.run_id, status=job.status, counters=runner.counters,
                              candidates=len(rows), dry_run=options.dry_run,
                              seconds=job.seconds(), shortfall=short)


def _on_air_log(db: Database) -> psycopg.Connection:
    """A connection for the quiet period's looks at the on-air log (autocommit, so each
    look sees the station's latest entries and its own now())."""
    conn = db.connect(autocommit=True, statement_timeout_ms=STATEMENT_TIMEOUT_MS,
                      application_name="library-identity:on-air")
    # The catalogue, not a regclass cast: that needs USAGE the check is about.
    found = conn.execute(
        "select has_table_privilege(c.oid, 'SELECT') from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'wxyc_schema' and c.relname = 'flowsheet'").fetchone()
    if not found or not found[0]:
        conn.close()
        why = ("which this database lacks" if not found
               else "which this role may not read (grant select on wxyc_schema.flowsheet)")
        raise NoOnAirLog(f"the quiet period reads the on-air log wxyc_schema.flowsheet, {why}; "
                         "pass --quiet-lookback 0 to send without waiting")
    return conn


def dry_run_report(result: BackfillResult) -> dict[str, Any]:
    """The one JSON object a dry run prints: would-be writes count as resolved."""
    c = result.counters
    return {"report_version": DRY_RUN_REPORT_VERSION, "job": JOB, "dry_run": True,
            "candidates": result.candidates, "scanned": c.scanned, "resolved": c.resolved,
            "unresolved": c.unresolved, "lml_error": c.lml_error, "raced": c.raced,
            "invalid_response": c.invalid_response,
            "minted": c.minted, "lml_total_calls": c.lml_total_calls,
            "lml_total_latency_ms": round(c.lml_total_latency_ms, 1),
            "quiet_pauses": c.quiet_pauses}
