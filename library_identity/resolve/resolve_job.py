"""The `resolve` job: snapshot the candidates, page them to LML at the pacer's pace, sort
each response, land what is trusted, count everything, then merge."""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

from library_identity import dbt, telemetry
from library_identity.db import LOADER_SCHEMA, Database
from library_identity.errors import (
    DatabaseError,
    LMLAuthError,
    LMLInterrupted,
    LMLMalformedResponse,
)
from library_identity.jobs.calls import Call, CallLoop, traced_call
from library_identity.jobs.job import FailureStreak, JobRun
from library_identity.jobs.outcome import Shortfall, shortfall
from library_identity.lml.client import BULK_RESOLVE_PATH, LMLClient
from library_identity.lml.gate import check_health, require_route
from library_identity.lml.outage import Outage
from library_identity.lml.pacing import Pacer
from library_identity.resolve import candidates
from library_identity.resolve.candidates import Candidate
from library_identity.resolve.counters import RunCounters
from library_identity.resolve.merge import MergeOutcome
from library_identity.resolve.merge import merge as run_merge
from library_identity.resolve.options import ResolveOptions

# The response checks and the landing load the contract's models (pydantic): a run with
# nothing due never needs them, so they are loaded with the first batch.
if TYPE_CHECKING:
    from library_identity.resolve.fastpath import FastOutcome
    from library_identity.resolve.response_rules import Problem

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 120_000  # the station's default 5 s is too short for bulk work


@dataclass
class ResolveResult:
    run_id: uuid.UUID | None
    status: str
    counters: RunCounters
    candidates: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    merge: MergeOutcome | None = None
    pacing: dict[str, Any] = field(default_factory=dict)
    shortfall: Shortfall | None = None  # why the run outcome rule failed the run
    outage: dict[str, float] = field(default_factory=dict)  # LML outages waited out
    candidates_from: str = "given"  # built (by dbt), deployed (read as they were), compiled


Progress = Callable[[str, int], None]


@dataclass(kw_only=True)
class _Call(Call):
    batch: list[Candidate]
    cohort: str
    outcome: FastOutcome | None = None


def _call_lml(client: LMLClient, batch: list[Candidate], cohort: str, include_tracks: bool,
              parent: Any, run_id: uuid.UUID | None) -> _Call:
    """Call LML for one batch, then check the response and build its COPY rows here, in
    the worker thread, so the main thread only lands."""
    call = _Call(batch=batch, cohort=cohort)
    with traced_call(parent, "lml.bulk_resolve_libraries", call,
                     **{"lml.batch_size": len(batch), "lml.cohort": cohort}) as span:
        call.result = client.bulk_resolve([c.as_input() for c in batch],
                                          include_tracks=include_tracks)
        stats = call.result.body.get("cache_stats") if isinstance(
            call.result.body, dict) else None
        if isinstance(stats, dict):
            for key, value in stats.items():
                if isinstance(value, int | float):
                    span.set_data(f"lml.cache.{key}", value)
    if call.result is not None:
        try:
            from library_identity.resolve import fastpath

            call.outcome = fastpath.classify(batch, call.result.body, run_id)
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            # The row checks catch what they know; anything else is the call's malformed
            # answer, never the run's crash.
            call.error = LMLMalformedResponse(
                f"LML {BULK_RESOLVE_PATH} answered a body no check could sort "
                f"({type(exc).__name__})", status=call.result.status,
                attempts=call.result.attempts)
    return call


def _reported_steps() -> tuple[str, ...]:
    from library_identity.resolve.response_rules import REPORTED_STEPS

    return REPORTED_STEPS


class _Runner:
    def __init__(self, job: JobRun, client: LMLClient, options: ResolveOptions,
                 progress: Progress | None) -> None:
        self.job = job
        self.client = client
        self.options = options
        self.progress = progress or (lambda cohort, n: None)
        self.counters = RunCounters()
        self.failures = FailureStreak(options.max_consecutive_failures, "batches")
        self.outage = Outage(client, options.lml_outage_budget_s, job.stop)
        self.pacer = Pacer(options.pacing())
        self._cohort = threading.local()  # which cohort a worker thread is calling for
        client.on_attempt = self._observe
        job.counters = lambda: self.counters.as_dict()

    def _observe(self, status: int | None, latency_s: float, retry_after: float | None) -> None:
        self.pacer.observe(status, latency_s, kind=getattr(self._cohort, "name", ""),
                           retry_after=retry_after)

    def _call(self, batch: list[Candidate], cohort: str, txn: Any) -> _Call:
        self._cohort.name = cohort
        return _call_lml(self.client, batch, cohort, self.options.include_tracks, txn,
                         self.job.run_id)

    # -- landing ---------------------------------------------------------------
    def _land(self, call: _Call, counters: dict[str, Any]) -> bool:
        """Land one batch (a dropped connection is retried once by the Writer; losing it
        twice stops the run). False: the database refused the batch (writer_error)."""
        from library_identity.resolve import landing

        run_id = self.job.run_id
        assert run_id is not None
        try:
            rows = call.outcome.rows if call.outcome else []
            self.job.writer.run(lambda conn: landing.land_batch(conn, run_id, rows, counters))
            return True
        except DatabaseError:
            raise
        except psycopg.Error as exc:
            log.error("writer_error run_id=%s batch_first_id=%s error=%s", run_id,
                      call.batch[0].library_id, type(exc).__name__)
            with telemetry.sentry().new_scope() as scope:
                scope.set_tag("step", "writer_error")
                telemetry.sentry().capture_exception(exc)
            return False

    def _handle(self, call: _Call) -> bool:
        """Count and land one finished call; False when its batch is to be sent again
        (LML was down; see library_identity.lml.outage)."""
        cohort_counters = self.counters.cohorts[call.cohort]
        cohort_counters.lml_total_calls += call.attempts
        cohort_counters.lml_total_latency_ms += call.latency_ms
        if isinstance(call.error, LMLInterrupted):
            return True  # stopped before an answer: its rows stay candidates for the next run
        if call.error is not None:
            if isinstance(call.error, LMLAuthError):
                cohort_counters.skip("lml_error", len(call.batch))
                raise call.error
            if self.outage.rides_out(call.error, call.started_at,
                                     (call.cohort, call.batch[0].library_id)):
                return False
            # A 200 whose body is not JSON broke the contract; anything else is LML failing.
            bucket = ("invalid_response" if isinstance(call.error, LMLMalformedResponse)
                      else "lml_error")
            cohort_counters.skip(bucket, len(call.batch))
            diagnostics = self.job.diagnostics
            diagnostics.log(log, bucket, "%s cohort=%s rows=%d error=%s", bucket, call.cohort,
                            len(call.batch), call.error)
            if diagnostics.may_send(bucket):
                with telemetry.sentry().new_scope() as scope:
                    scope.set_tag("step", bucket)
                    telemetry.sentry().capture_exception(call.error)
            self._checkpoint()
            self.failures.failed(str(call.error))
            return True
        outcome = call.outcome
        assert outcome is not None
        diagnostics = self.job.diagnostics
        for problem in outcome.problems:
            diagnostics.log(log, problem.step, "%s cohort=%s", problem, call.cohort)
            if problem.step in _reported_steps() and diagnostics.may_send(problem.step):
                self._report(problem, call.cohort)
        if outcome.landed:
            self.failures.succeeded()
        else:
            # Not one row of the batch was usable: the call failed, whatever its status.
            with telemetry.sentry().new_scope() as scope:
                scope.set_tag("step", "invalid_response")
                if diagnostics.may_send("invalid_response"):
                    telemetry.sentry().capture_message(
                        f"LML answered a batch of {len(call.batch)} rows without one usable "
                        f"result ({'; '.join(str(p) for p in outcome.problems[:5])[:300]})",
                        level="error")
            cohort_counters.add(outcome.counters)
            self._checkpoint()
            self.failures.failed(str(outcome.problems[0]) if outcome.problems
                                 else "no usable result")
            return True
        if self.options.dry_run:
            cohort_counters.add(outcome.counters)
            return True
        # The counters commit with the batch, so they must already include it.
        landed = copy.deepcopy(self.counters)
        landed.cohorts[call.cohort].add(outcome.counters)
        if self._land(call, landed.as_dict()):
            self.counters = landed
        else:
            cohort_counters.add(outcome.counters.landing_failed(outcome.landed))
        return True

    def _report(self, problem: Problem, cohort: str) -> None:
        """A Sentry event per finding, tagged with its step, as the station's consumer
        sends them (its alerts count these events)."""
        with telemetry.sentry().new_scope() as scope:
            scope.set_tag("step", problem.step)
            scope.set_tag("cohort", cohort)
            scope.set_tag("run_id", str(self.job.run_id or "dry-run"))
            scope.fingerprint = ["library-identity", problem.step]
            telemetry.sentry().capture_message(str(problem), level="error")

    def _checkpoint(self) -> None:
        self.job.checkpoint(self.counters.as_dict())

    # -- the loop --------------------------------------------------------------
    def drain(self, read_conn: psycopg.Connection, cohort: str, txn: Any) -> None:
        """Send the cohort's candidates page by page as the pacer allows, and land each
        answered batch."""
        pages = candidates.pages(read_conn, cohort, self.options.batch_size_for(cohort))
        again: deque[list[Candidate]] = deque()  # failed while LML was down: first in line

        def next_call(_in_flight: int) -> Callable[[], _Call] | None:
            batch = again.popleft() if again else next(pages, None)
            return None if batch is None else functools.partial(self._call, batch, cohort, txn)

        def handle(call: _Call) -> None:
            if self._handle(call):
                self.progress(call.cohort, len(call.batch))
            else:
                again.append(call.batch)

        CallLoop(self.job.stop, workers=self.pacer.settings.max_concurrency,
                 name=f"lml-{cohort}", limit=lambda: self.pacer.limit,
                 pause=self.pacer.pause_remaining).run(next_call, handle)


def resolve(db: Database, client: LMLClient, options: ResolveOptions, *,
            stop: threading.Event | None = None, progress: Progress | None = None,
            prepare: bool = True, merge: bool = True,
            on_candidates: Callable[[dict[str, int]], None] | None = None) -> ResolveResult:
    """One resolve run. Raises RunLocked, LMLUnavailable, LMLAuthError, DatabaseError,
    InvariantViolation; the run record says how it ended in every case."""
    options.validate()
    dbt_before = dbt.time_spent()
    timings: dict[str, float] = {}
    with JobRun(db, "resolve", statement_timeout_ms=STATEMENT_TIMEOUT_MS,
                dry_run=options.dry_run, stop=stop, client=client) as job, \
            contextlib.ExitStack() as tracing:
        runner = _Runner(job, client, options, progress)
        check_health(client)
        require_route(client, BULK_RESOLVE_PATH, {"inputs": [], "include_tracks": False})
        compiled = None
        # How this run came by its candidates: dbt built them, the deployed view was read
        # as it is (dbt never loaded), or the caller prepared them.
        source = "given"
        if prepare and options.dry_run:
            source = "deployed"
            if not candidates.deployed(db, options.dbt_vars()):
                compiled = candidates.compiled_candidates(db, options.dbt_vars())
                source = "compiled"
        elif prepare:
            built = candidates.prepare(db, options.dbt_vars())
            source = "built" if built else "deployed"
        with job.reader() as read_conn:
            counts = candidates.snapshot(read_conn, partition=options.partition,
                                         limit=options.limit, compiled=compiled,
                                         cohorts=options.cohorts)
            timings["candidates_s"] = job.seconds()
            if on_candidates:
                on_candidates(counts)
            job.begin(options.mode, options.public())
            load_started, load_cpu_started = time.perf_counter(), time.process_time()
            # The transaction stays open through the merge, whose counts it carries too.
            txn = tracing.enter_context(job.traced(
                "job.run", telemetry.sentry_names().resolve_transaction,
                lambda: _run_data(runner.counters, options.mode), mode=options.mode))
            txn.set_data("dry_run", int(options.dry_run))
            with _young_collections():
                for cohort in options.cohorts:
                    if job.stop.is_set():
                        break
                    runner.drain(read_conn, cohort, txn)
        timings["load_s"] = time.perf_counter() - load_started
        # CPU of this process (all threads) while loading: the loader's own cost, apart
        # from the time it spends waiting for LML and the database.
        timings["load_cpu_s"] = time.process_time() - load_cpu_started
        short = None if options.dry_run else run_shortfall(runner.counters)
        job.settle(runner.counters, "failed" if short else "succeeded")
        if not options.dry_run and runner.counters.total.scanned:
            refresh_log_statistics(db)
        rejected = short.message if short else None
        if short:
            # What was valid is landed; the run still fails the outcome rule.
            job.error = short.message
            with telemetry.sentry().new_scope() as scope:
                scope.set_tag("step", "lml_error" if short.lml_failed else "rejected_rows")
                telemetry.sentry().capture_message(short.message, level="error")
        result = ResolveResult(run_id=job.run_id, status=job.status,
                               counters=runner.counters, candidates=counts, timings=timings,
                               error=rejected, pacing=runner.pacer.summary(),
                               shortfall=short, outage=runner.outage.summary())
        log.info("lml_pace %s", runner.pacer.describe())
        if merge and job.status == "succeeded" and not options.dry_run:
            # Still under the lock, so two merges never interleave.
            merge_started = time.perf_counter()
            with txn.start_child(op="job.merge", name="merge") as merge_span:
                result.merge = outcome = run_merge(db, options.dbt_vars(), job.run_id,
                                                   after_candidates=prepare)
                merge_span.set_status("ok" if outcome.success else "internal_error")
            timings["merge_s"] = time.perf_counter() - merge_started
            job.counters = lambda: {**runner.counters.as_dict(),
                                    "merge": {**outcome.counts, "skipped": outcome.skips}}
            for key, value in merge_data(outcome).items():
                txn.set_data(key, value)
            if not outcome.success:
                require_database(db, outcome, "the dbt merge")
                # A gate stopped the write-back, or the write-back itself failed (its
                # failures name the step); either way no station table changed.
                write_back_failed = any(f.startswith("write_back:") for f in outcome.failures)
                job.status = result.status = "failed" if write_back_failed else "gate_failed"
                job.error = "; ".join(outcome.failures)
        result.error = job.error
        result.seconds = job.seconds()
        # dbt's share of the run: everything it did, of which parsing the project (both 0
        # when nothing was built and nothing merged: dbt was not even loaded).
        timings["dbt_s"], timings["dbt_parse_s"] = dbt.time_spent(since=dbt_before)
        result.candidates_from = source
        counted = job.counters
        used = {"candidates": source, "seconds": round(timings["dbt_s"], 3),
                "parse_seconds": round(timings["dbt_parse_s"], 3)}
        job.counters = lambda: {**counted(), "dbt": used}
        return result


# The answers that could not be used: the run outcome rule counts them against the run.
UNUSABLE = ("invalid_response", "writer_error", "lml_untrusted_library_id",
            "lml_cardinality_mismatch")


def run_shortfall(counters: RunCounters) -> Shortfall | None:
    """The run outcome rule (jobs.outcome) applied to a resolve run's rows."""
    total = counters.total
    skipped = total.rows_skipped
    detail = ", ".join(f"{k} {skipped[k]:,}" for k in UNUSABLE if skipped[k])
    return shortfall(total.scanned, skipped["lml_error"],
                     sum(skipped[k] for k in UNUSABLE), detail=detail)


def require_database(db: Database, outcome: MergeOutcome, step: str) -> None:
    """A failed dbt step whose database went away is a database failure, not a gate."""
    try:
        with db.connect() as conn:
            conn.execute("select 1")
    except (DatabaseError, psycopg.Error):
        raise DatabaseError(f"lost the database during {step}; what was committed is safe, "
                            "re-run when the database is back") from None
    lost = ("server closed the connection", "terminating connection", "connection refused",
            "could not connect", "connection to server", "the database system is shutting")
    text = " ".join(outcome.failures).lower()
    if any(marker in text for marker in lost):
        raise DatabaseError(f"the database connection dropped during {step}; what was "
                            "committed is safe, re-run to continue")


def _run_data(counters: RunCounters, mode: str) -> dict[str, float]:
    """The run's counters as transaction data, under the configured naming."""
    names = telemetry.sentry_names()
    prefix = names.resolve_prefix
    if names.scheme != "station":
        return counters.flat(prefix)
    # The station's consumer sets its counters per drain: V/A, then non-V/A; a recheck
    # run is one drain.
    if mode == "recheck":
        return counters.total.flat(f"{prefix}.recheck")
    data: dict[str, float] = {}
    for cohort, cohort_counters in counters.cohorts.items():
        data.update(cohort_counters.flat(f"{prefix}.{cohort}"))
    return data


def merge_data(outcome: MergeOutcome) -> dict[str, float]:
    """The merge's numeric counts (the compilation counters among them) and its skips
    per level and reason, as transaction data under the configured naming."""
    prefix = telemetry.sentry_names().resolve_merge_prefix
    data: dict[str, float] = {f"{prefix}.{key}": value for key, value in outcome.counts.items()
                              if isinstance(value, int | float) and not isinstance(value, bool)}
    data.update({f"{prefix}.skipped.{key}": n for key, n in outcome.skips.items()})
    return data


@contextlib.contextmanager
def _young_collections() -> Iterator[None]:
    """The load decodes millions of short-lived, acyclic objects while everything loaded
    before it (dbt's manifest above all) stays alive; a full collection walks all of it.
    Freeze what exists and collect the young generation less often: about 40% less
    loader CPU."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 10_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def refresh_log_statistics(db: Database) -> None:
    """ANALYZE the verdict log after landing: the merge reads the verdicts beyond the last
    merged one, and only fresh statistics let the planner see how few those are and read
    them through the primary key instead of scanning the whole log. Only the table's
    owner may ANALYZE; for another role it is skipped (the planner then relies on
    autovacuum's statistics)."""
    with db.connect(autocommit=True) as conn:
        row = conn.execute(
            f"select pg_has_role(c.relowner, 'USAGE') from pg_class c join pg_namespace n "
            f"on n.oid = c.relnamespace where n.nspname = '{LOADER_SCHEMA}' "
            "and c.relname = 'raw_verdicts'").fetchone()
        if row and row[0]:
            conn.execute(f"analyze {LOADER_SCHEMA}.raw_verdicts")


def merge_only(db: Database, options: ResolveOptions, *, full_rebuild: bool = False
               ) -> MergeOutcome:
    """Run the dbt merge and gates alone, under the resolve lock."""
    with JobRun(db, "resolve", statement_timeout_ms=STATEMENT_TIMEOUT_MS):
        return run_merge(db, options.dbt_vars(), full_rebuild=full_rebuild)
