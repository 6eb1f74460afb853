"""`rotation refresh`: warm LML's cache for every release identity in the rotation.

Reads the distinct handles of active rotation rows (dbt's rotation_refresh_candidates),
sends them to LML's refresh-for-identities in batches of at most 50 with bounded
concurrency under the client's rate limit, lands every per-id answer with the run's
counters (one transaction per batch) and raises the stale-reference alert when too many
handles are unknown to LML.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from library_identity import telemetry
from library_identity.db import Database, jsonb_text, landable
from library_identity.errors import (
    DatabaseError,
    LMLAuthError,
    LMLError,
    LMLInterrupted,
)
from library_identity.jobs.calls import Call, CallLoop, traced_call
from library_identity.jobs.job import FailureStreak, JobRun
from library_identity.jobs.outcome import Shortfall, shortfall
from library_identity.jobs.records import save_counters
from library_identity.jsonfast import NotJSON
from library_identity.lml.client import REFRESH_PATH, LMLClient
from library_identity.lml.contract import CacheRefreshResultItem
from library_identity.lml.gate import check_health, require_route
from library_identity.lml.outage import Outage
from library_identity.rotation.counters import RefreshCounters, Tally, tally
from library_identity.rotation.models import (
    build_models,
    read_candidates,
    read_candidates_without_building,
)
from library_identity.rotation.options import (
    LML_REFRESH_BATCH_CAP,
    STATEMENT_TIMEOUT_MS,
    RefreshOptions,
)

log = logging.getLogger(__name__)

JOB = "rotation_refresh"
DRY_RUN_REPORT_VERSION = 1
_COPY_SQL = ("copy identity_loader.rotation_refresh_results (run_id, identity_id, status, "
             "warmed_releases, warmed_artists, sources, message) from stdin")


# The stale-reference alert's remedy: the rows' release ids resolved again.
REMEDY = "library-identity rotation backfill --stale-handles"


@dataclass(frozen=True)
class Alert:
    fired: bool
    not_found: int
    identities_scanned: int
    not_found_pct: float | None
    threshold_pct: float

    def describe(self) -> str:
        pct = "n/a" if self.not_found_pct is None else f"{self.not_found_pct:.2f}%"
        return (f"{self.not_found} of {self.identities_scanned} rotation identities are "
                f"unknown to LML (not_found {pct}, alert above {self.threshold_pct:g}%): stale "
                f"rotation.lml_identity_id handles; re-resolve them with `{REMEDY}`")

    def as_dict(self) -> dict[str, Any]:
        pct = None if self.not_found_pct is None else round(self.not_found_pct, 2)
        return {"fired": self.fired, "not_found": self.not_found,
                "identities_scanned": self.identities_scanned, "not_found_pct": pct,
                "threshold_pct": self.threshold_pct}


@dataclass
class RefreshResult:
    run_id: uuid.UUID | None
    status: str
    counters: RefreshCounters
    identities: int = 0  # candidates read from dbt
    alert: Alert | None = None
    seconds: float = 0.0
    batches: list[list[int]] = field(default_factory=list)  # a dry run's would-be batches
    dry_run: bool = False
    shortfall: Shortfall | None = None  # why the run outcome rule failed the run


Progress = Callable[[int, int], None]  # (identities settled so far, identities in the run)


@dataclass(kw_only=True)
class _Batch(Call):
    ids: list[int]
    attempt: int  # 1 = first send, 2 = the one retry of `error` items


class _Queue:
    """Which identities go next: every id once, in order; then the retries of `error`
    items, each no sooner than retry_delay_s after its error was seen."""

    def __init__(self, ids: list[int], batch_size: int, retry_delay_s: float) -> None:
        self.fresh = deque(ids)
        self.retries: deque[tuple[float, int]] = deque()
        self.again: deque[_Batch] = deque()  # failed while LML was down: first in line
        self.batch_size = batch_size
        self.retry_delay_s = retry_delay_s

    def send_again(self, batch: _Batch) -> None:
        self.again.append(_Batch(ids=batch.ids, attempt=batch.attempt))

    def retry_later(self, identity_id: int) -> None:
        self.retries.append((time.monotonic() + self.retry_delay_s, identity_id))

    def retry_later_all(self, ids: list[int]) -> None:
        for identity_id in ids:
            self.retry_later(identity_id)

    def next_batch(self, in_flight: int) -> _Batch | None:
        if self.again:
            return self.again.popleft()
        if self.fresh:
            n = min(self.batch_size, len(self.fresh))
            return _Batch(ids=[self.fresh.popleft() for _ in range(n)], attempt=1)
        now = time.monotonic()
        ready = 0
        for due, _ in self.retries:
            if due > now or ready == self.batch_size:
                break
            ready += 1
        # While batches are in flight more retries may come: wait to send full batches.
        if ready and (ready == self.batch_size or in_flight == 0):
            return _Batch(ids=[self.retries.popleft()[1] for _ in range(ready)], attempt=2)
        return None

    def seconds_to_next_retry(self) -> float | None:
        if not self.retries:
            return None
        return max(0.0, self.retries[0][0] - time.monotonic())

    def drain_retries(self) -> list[int]:
        ids = [identity_id for _, identity_id in self.retries]
        ids += [identity_id for batch in self.again for identity_id in batch.ids]
        self.retries.clear()
        self.again.clear()
        return ids


def _send(client: LMLClient, batch: _Batch, timeout_s: float, parent: Any) -> _Batch:
    """One refresh call inside its http.client span (runs in a worker thread)."""
    if not 1 <= len(batch.ids) <= LML_REFRESH_BATCH_CAP:
        raise ValueError(f"refresh batch of {len(batch.ids)} ids; LML takes 1.."
                         f"{LML_REFRESH_BATCH_CAP}")
    with traced_call(parent, "lml.refresh_for_identities", batch, **{
            "lml.batch_size": len(batch.ids), "lml.batch_timeout_ms": int(timeout_s * 1000),
            "lml.retry_batch": batch.attempt > 1}):
        batch.result = client.refresh_for_identities(batch.ids, timeout_s=timeout_s)
    return batch


def _answers(batch: _Batch, body: Any) -> tuple[dict[int, tuple[CacheRefreshResultItem, Any]],
                                                list[str]]:
    """The trusted, valid item per identity of the batch, and what was wrong otherwise."""
    problems: list[str] = []
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return {}, ["malformed_response: body has no results array"]
    wanted = set(batch.ids)
    answers: dict[int, tuple[CacheRefreshResultItem, Any]] = {}
    for raw in results:
        try:
            item = CacheRefreshResultItem.model_validate(raw)
        except ValidationError as exc:
            problems.append(f"invalid_item: {exc.errors()[0].get('msg', 'invalid')}")
            continue
        except (ValueError, RecursionError) as exc:
            problems.append(f"invalid_item: not checkable ({type(exc).__name__})")
            continue
        try:
            landable(raw)  # what lands, status and message included, must fit its columns
        except NotJSON as exc:
            problems.append(f"invalid_item: {exc}")
            continue
        if item.identity_id not in wanted or item.identity_id in answers:
            problems.append(f"untrusted_identity_id: {item.identity_id}")
            continue
        answers[item.identity_id] = (item, raw)
    if len(answers) < len(wanted):
        problems.append(f"missing_answers: {len(wanted) - len(answers)} of {len(wanted)}")
    return answers, problems


class _Runner:
    def __init__(self, job: JobRun, client: LMLClient | None, options: RefreshOptions,
                 progress: Progress | None) -> None:
        self.job = job
        self.client = client
        self.options = options
        self.progress = progress or (lambda done, total: None)
        self.counters = RefreshCounters()
        self.failures = FailureStreak(options.max_consecutive_failures, "refresh batches")
        self.outage = Outage(client, options.lml_outage_budget_s, job.stop) \
            if client is not None else None
        self.unknown_statuses: set[str] = set()
        self.total = 0
        job.counters = lambda: self.counters.as_dict()

    # -- landing -------------------------------------------------------------------------
    def _land(self, rows: list[tuple[Any, ...]], counters: dict[str, Any]) -> None:
        run_id = self.job.run_id
        assert run_id is not None

        def work(conn: psycopg.Connection) -> None:
            with conn.transaction(), conn.cursor() as cur:
                if rows:
                    with cur.copy(_COPY_SQL) as cp:
                        for row in rows:
                            cp.write_row((run_id, *row))
                save_counters(conn, run_id, counters)

        try:
            self.job.writer.run(work)
        except psycopg.Error as exc:
            raise DatabaseError(f"could not land a refresh batch ({type(exc).__name__}); "
                                "committed batches are safe, re-run to continue") from None

    def _checkpoint(self) -> None:
        self._land([], self.counters.as_dict())

    # -- one answered batch --------------------------------------------------------------
    def handle(self, batch: _Batch, queue: _Queue) -> None:
        self.counters.lml_total_calls += batch.attempts
        self.counters.lml_total_latency_ms += batch.latency_ms
        if isinstance(batch.error, LMLInterrupted):
            queue.retry_later_all(batch.ids)  # never answered: settled as unretried below
            return
        if batch.error is not None:
            if self.outage is not None and self.outage.rides_out(
                    batch.error, batch.started_at, (batch.attempt, batch.ids[0])):
                queue.send_again(batch)  # LML was down: sent again now it is back
                return
            self._failed(batch, str(batch.error), batch.error)
            return
        assert batch.result is not None
        answers, problems = _answers(batch, batch.result.body)
        if not answers:  # not one valid answer: the call failed, whatever its status
            self._failed(batch, "; ".join(problems)[:300], None)
            return
        self.failures.succeeded()
        for problem in problems:
            self.job.diagnostics.log(log, problem.split(":", 1)[0], "%s batch_size=%d", problem,
                                     len(batch.ids))
        settled = copy.deepcopy(self.counters)
        rows: list[tuple[Any, ...]] = []
        for identity_id in batch.ids:
            answer = answers.get(identity_id)
            if answer is not None:
                item, raw = answer
                t = tally(item)
                # The raw sources, unknown keys included: the log keeps what LML said.
                sources = raw.get("sources")
                rows.append((identity_id, item.status, t.warmed_releases, t.warmed_artists,
                             None if sources is None else Jsonb(sources, dumps=jsonb_text),
                             item.message))
                if t.bucket == "unknown" and item.status not in self.unknown_statuses:
                    self.unknown_statuses.add(item.status)
                    log.warning("unknown_status status=%r counted as lml_error", item.status)
            else:
                t = Tally("error")  # no valid answer: treated like an `error` item
            if t.bucket == "error" and batch.attempt == 1:
                queue.retry_later(identity_id)  # counted once, by the retry's outcome
                settled.retried += 1
            else:
                settled.add(t)
        # The counters commit with the batch's rows, so they must already include it.
        self._land(rows, settled.as_dict())
        self.counters = settled
        log.info("batch_done attempt=%d ids=%d answered=%d settled=%d/%d", batch.attempt,
                 len(batch.ids), len(rows), self.counters.identities_scanned, self.total)
        self.progress(self.counters.identities_scanned, self.total)

    def _failed(self, batch: _Batch, reason: str, exc: LMLError | None) -> None:
        self.counters.failed(len(batch.ids))
        self.counters.failed_batches += 1
        if isinstance(exc, LMLAuthError):
            raise exc
        diagnostics = self.job.diagnostics
        diagnostics.log(log, "lml_error", "lml_error attempt=%d ids=%d error=%s", batch.attempt,
                        len(batch.ids), reason)
        if diagnostics.may_send("lml_error"):
            with telemetry.sentry().new_scope() as scope:
                scope.set_tag("step", "lml_error")
                if exc is not None:
                    telemetry.sentry().capture_exception(exc)
                else:
                    telemetry.sentry().capture_message(f"rotation refresh: {reason}", level="error")
        self._checkpoint()
        self.progress(self.counters.identities_scanned, self.total)
        self.failures.failed(reason)

    # -- the loop ------------------------------------------------------------------------
    def run(self, ids: list[int], txn: Any) -> None:
        client = self.client
        assert client is not None, "a live run needs an LML client"
        self.total = len(ids)
        queue = _Queue(ids, self.options.batch_size, self.options.retry_delay_s)

        def next_call(in_flight: int) -> Callable[[], _Batch] | None:
            batch = queue.next_batch(in_flight)
            if batch is None:
                return None
            return functools.partial(_send, client, batch, self.options.timeout_s, txn)

        concurrency = self.options.concurrency
        CallLoop(self.job.stop, workers=concurrency, name="lml-refresh",
                 limit=lambda: concurrency).run(
            next_call, lambda batch: self.handle(batch, queue),
            idle=queue.seconds_to_next_retry)
        # Interrupted before their retry: final as they stand.
        unretried = queue.drain_retries()
        if unretried:
            for _ in unretried:
                self.counters.add(Tally("error"))
            self._checkpoint()


def capability_gate(client: LMLClient) -> None:
    """LML answers /health, and this deployment has the refresh route: an empty batch must
    be refused as invalid (422), not as unknown (404/405)."""
    check_health(client)
    require_route(client, REFRESH_PATH, {"identity_ids": []})


def refresh(db: Database, client: LMLClient | None, options: RefreshOptions, *,
            stop: threading.Event | None = None, progress: Progress | None = None,
            prepare: bool = True) -> RefreshResult:
    """One refresh run. Raises RunLocked, LMLUnavailable (LMLRouteMissing), LMLAuthError,
    DatabaseError, DbtError, InvariantViolation; the run record says how it ended.

    A dry run (no client needed) reads the candidates and reports the batches it would
    send: no LML call, no run record, nothing rebuilt or written."""
    options.validate()
    names = telemetry.sentry_names()
    with JobRun(db, JOB, statement_timeout_ms=STATEMENT_TIMEOUT_MS, dry_run=options.dry_run,
                stop=stop, client=client) as job:
        runner = _Runner(job, client, options, progress)
        if options.dry_run:
            ids, without_identity = read_candidates_without_building(db)
        else:
            assert client is not None
            capability_gate(client)
            if prepare:
                build_models(db)
            with job.reader() as conn:
                ids, without_identity = read_candidates(conn)
        runner.counters.skipped_null_identity = without_identity
        log.info("candidates identities=%d active_rows_without_identity=%d", len(ids),
                 without_identity)
        rpm = client.requests_per_minute if client is not None else None
        job.begin(None, {**options.public(), "client_requests_per_minute": rpm})
        # The totals go on a span of their own, so they are sent by _send_totals.
        with job.traced("job.run", names.refresh_transaction) as txn:
            try:
                if not options.dry_run:
                    runner.run(ids, txn)
            finally:
                _send_totals(txn, runner.counters, options.dry_run)
            alert = _alert(runner.counters, options.not_found_alert_pct)
            if alert.fired:
                _raise_alert(alert, txn)
        c = runner.counters
        short = None if options.dry_run else shortfall(c.identities_scanned, c.lml_error, 0,
                                                       noun="identities")
        job.settle(c, "failed" if short else "alert" if alert.fired else "succeeded")
        job.error = short.message if short else None
        batch_size = options.batch_size
        return RefreshResult(
            run_id=job.run_id, status=job.status, counters=runner.counters,
            identities=len(ids), alert=alert, seconds=job.seconds(), dry_run=options.dry_run,
            shortfall=short,
            batches=[ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
            if options.dry_run else [])


def _send_totals(txn: Any, counters: RefreshCounters, dry_run: bool) -> None:
    """The run's counters on the transaction and, under the station's naming, on the
    totals span its alerts read (e.g. not_found against identities_scanned)."""
    names = telemetry.sentry_names()
    data = {f"{names.refresh_prefix}.dry_run": int(dry_run),
            **counters.flat(names.refresh_prefix)}
    for key, value in data.items():
        txn.set_data(key, value)
    if names.refresh_totals_span is not None:
        name, op = names.refresh_totals_span
        with txn.start_child(op=op, name=name) as span:
            for key, value in data.items():
                span.set_data(key, value)


def dry_run_report(result: RefreshResult) -> dict[str, Any]:
    """The one JSON object a dry run prints: the ids it would send, in their batches; the
    counters stay at zero (skipped_null_identity is read, not counted)."""
    return {"report_version": DRY_RUN_REPORT_VERSION, "job": JOB, "dry_run": True,
            "identities": result.identities, "batch_count": len(result.batches),
            "batches": result.batches, "counters": result.counters.as_dict()}


def _alert(counters: RefreshCounters, threshold_pct: float) -> Alert:
    pct = counters.not_found_pct()
    return Alert(fired=pct is not None and pct > threshold_pct, not_found=counters.not_found,
                 identities_scanned=counters.identities_scanned, not_found_pct=pct,
                 threshold_pct=threshold_pct)


def _raise_alert(alert: Alert, txn: Any) -> None:
    log.warning("STALE REFERENCE ALERT: %s", alert.describe())
    txn.set_tag("rotation.stale_reference_alert", "fired")
    txn.set_data(f"{telemetry.sentry_names().refresh_prefix}.not_found_pct",
                 round(alert.not_found_pct or 0.0, 2))
    with telemetry.sentry().new_scope() as scope:
        scope.set_tag("step", "stale_reference_alert")
        scope.set_context("rotation_refresh_alert", alert.as_dict())
        telemetry.sentry().capture_message(f"rotation refresh stale-reference alert: "
                                   f"{alert.describe()}", level="warning")


