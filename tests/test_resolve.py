"""End to end: the resolve loop against a real Postgres, real dbt and the LML stand-in
over HTTP. Each test gets its own copy of a seeded, migrated database."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI, SENTRY_TEST_DSN, STANDIN_KEY, SentryCapture
from psycopg import sql

from library_identity import dbt_names
from library_identity.db import Database
from library_identity.demo.standin.server import StandIn, StandInConfig
from library_identity.demo.standin.verdicts import verdict
from library_identity.errors import DatabaseError, LMLAuthError, LMLUnavailable, RunLocked
from library_identity.jobs.diagnostics import LINES_PER_STEP
from library_identity.jobs.lock import LOCK_KEYS
from library_identity.lml.client import LMLClient
from library_identity.resolve import candidates
from library_identity.resolve.resolve_job import ResolveOptions, ResolveResult, resolve

ROOT = Path(__file__).resolve().parent.parent
KEY = STANDIN_KEY
N_ROWS = 1500
LANDED = ("rows_resolved", "rows_resolved_compilation", "rows_unresolved")


def client(standin: StandIn, key: str | None = KEY, **kwargs: Any) -> LMLClient:
    kwargs = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, **kwargs}
    return LMLClient(base_url=standin.url, api_key=key, **kwargs)


def run(db: Database, standin: StandIn, *, prepare: bool = False, merge: bool = False,
        lml: LMLClient | None = None, **options: Any) -> ResolveResult:
    with lml or client(standin) as c:
        return resolve(db, c, ResolveOptions(**options), prepare=prepare, merge=merge)


def scalar(db: Database, query: str, *params: Any) -> Any:
    with db.connect() as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def library_rows(db: Database) -> int:
    return scalar(db, "select count(*) from wxyc_schema.library where artist_name is not null")


def bulk_requests(standin: StandIn) -> list[Any]:
    """Bulk-resolve requests that carried rows (not the empty start-up probe)."""
    return [r for r in standin.requests
            if r.path.endswith("bulk-resolve-libraries") and r.batch_size]


def landed_total(result: ResolveResult) -> int:
    total = result.counters.total
    return sum(getattr(total, k) for k in LANDED) + total.rows_skipped["compilation"]


def assert_consistent(db: Database, result: ResolveResult) -> None:
    """Invariant, and the verdict log holds exactly what the counters say was landed."""
    result.counters.check_invariant()
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts where run_id = %s",
                  result.run_id) == landed_total(result)
    assert scalar(db, "select count(*) - count(distinct (run_id, library_id)) "
                      "from identity_loader.raw_verdicts") == 0
    stored = scalar(db, "select counters from identity_loader.runs where run_id = %s",
                    result.run_id)
    merged = stored.pop("merge", None)
    # How the run came by its candidates, and its time in dbt.
    assert stored.pop("dbt")["candidates"] == result.candidates_from
    assert stored == json.loads(json.dumps(result.counters.as_dict()))
    if result.merge is not None and result.merge.merge_id is not None:
        # The run record also keeps what its merge wrote and skipped.
        assert merged == {**result.merge.counts, "skipped": result.merge.skips}


def test_full_run_then_nothing_then_stale_rows_return(db: Database, standin: StandIn) -> None:
    first = run(db, standin, merge=True)
    assert first.status == "succeeded", first.merge
    assert first.counters.total.scanned == library_rows(db)
    assert first.counters.cohorts["va"].scanned > 0
    assert first.counters.total.rows_resolved > 0 and first.counters.total.rows_unresolved > 0
    assert first.counters.total.rows_resolved_compilation > 0
    assert_consistent(db, first)
    assert first.merge is not None and first.merge.success, first.merge.failures
    assert scalar(db, "select count(*) from wxyc_schema.library_identity") > 0

    second = run(db, standin, prepare=True)
    assert second.counters.total.scanned == 0

    with db.connect() as conn:  # eight days pass
        conn.execute("update identity_loader.raw_verdicts "
                     "set attempted_at = attempted_at - interval '8 days'")
        conn.execute("update wxyc_schema.library_identity "
                     "set last_verified_at = last_verified_at - interval '8 days'")
        conn.execute("update wxyc_schema.library "
                     "set unresolved_attempted_at = unresolved_attempted_at - interval '8 days'")
        # The verdict state the merge keeps moves with them.
        conn.execute(f"update {dbt_names.qualified('int_verdicts__latest')} "
                     "set latest_attempted_at = latest_attempted_at - interval '8 days', "
                     "last_resolved_verdict_at = last_resolved_verdict_at - interval '8 days'")
    third = run(db, standin, prepare=True)
    assert third.counters.total.scanned == library_rows(db)
    assert_consistent(db, third)


def test_va_cohort_goes_first_with_its_batch_size(db: Database, standin: StandIn) -> None:
    result = run(db, standin, va_batch_size=40, batch_size=300)
    bulk = bulk_requests(standin)
    va = result.counters.cohorts["va"].scanned
    sizes = [r.batch_size for r in bulk]
    n_va = -(-va // 40)
    assert all(s <= 40 for s in sizes[:n_va]) and max(sizes[n_va:]) == 300
    assert result.counters.total.lml_total_calls == len(bulk)


@pytest.mark.parametrize(("fault", "config", "bucket"), [
    ("503", {"error_rate": 1.0}, "lml_error"),
    ("timeout", {"timeout_rate": 1.0, "hang_seconds": 1.0}, "lml_error"),
    ("short", {"short_rate": 1.0}, "lml_cardinality_mismatch"),
    ("foreign", {"foreign_id_rate": 1.0}, "lml_untrusted_library_id"),
    ("duplicate", {"duplicate_id_rate": 1.0}, "lml_untrusted_library_id"),
    ("malformed", {"malformed_rate": 1.0}, "invalid_response"),
    ("bad_enum", {"bad_enum_rate": 1.0}, "invalid_response"),
])
def test_fault_moves_its_counter_and_loses_nothing(
        db: Database, standin: StandIn, fault: str, config: dict[str, Any], bucket: str) -> None:
    for key, value in config.items():
        setattr(standin.config, key, value)
    faulty = run(db, standin, lml=client(standin, max_attempts=2, timeout_s=0.3),
                 batch_size=250, va_batch_size=50, max_consecutive_failures=1000)
    skipped = faulty.counters.total.rows_skipped
    sizes = [r.batch_size for r in bulk_requests(standin)]
    # What each fault costs: every row of a failed or unreadable batch; otherwise one row
    # per response (the missing last row, the row whose answer a foreign id or a copy of
    # another id took, the one result with a bad enum). A copy needs two rows in a batch.
    expect = {"503": faulty.counters.total.scanned, "timeout": faulty.counters.total.scanned,
              "malformed": faulty.counters.total.scanned, "short": len(sizes),
              "foreign": len(sizes), "bad_enum": len(sizes),
              "duplicate": sum(1 for n in sizes if n >= 2)}[fault]
    assert skipped[bucket] == expect > 0
    assert all(v == 0 for b, v in skipped.items() if b not in (bucket, "compilation"))
    assert_consistent(db, faulty)
    if bucket == "lml_error":
        assert skipped[bucket] == faulty.counters.total.scanned
        # Every failed batch was tried twice, and each try is counted as a call.
        assert faulty.counters.total.lml_total_calls == len(bulk_requests(standin))
        assert len(bulk_requests(standin)) == 2 * (
            len(range(0, faulty.counters.cohorts["va"].scanned, 50))
            + len(range(0, faulty.counters.cohorts["non_va"].scanned, 250)))

    # A clean re-run picks up exactly the rows the faulty run could not land.
    standin.config = StandInConfig(api_key=KEY)
    clean = run(db, standin, prepare=True)
    assert clean.counters.total.scanned == library_rows(db) - landed_total(faulty)
    assert_consistent(db, clean)
    assert scalar(db, "select count(distinct library_id) from identity_loader.raw_verdicts"
                  ) == library_rows(db)


def pick_rows(db: Database, *kinds: str) -> list[int]:
    """Non-V/A library ids, ascending, whose stand-in verdicts are these kinds in order."""
    found: list[int] = []
    with db.connect() as conn:
        rows = conn.execute(
            "select library_id, artist_name, legacy_release_id from "
            f"{dbt_names.qualified('library_candidates')} "
            "where cohort = 'non_va' order by library_id").fetchall()
    for library_id, artist, legacy in rows:
        if verdict(artist, legacy, True, library_id=library_id)["kind"] == kinds[len(found)]:
            found.append(library_id)
            if len(found) == len(kinds):
                return found
    raise AssertionError(f"no rows for {kinds}")


def only_candidates(db: Database, ids: list[int]) -> None:
    """Pin the candidates to these rows: the view becomes a table holding only them."""
    view = dbt_names.relation("library_candidates")
    pinned = sql.Identifier(dbt_names.schema(), "library_candidates_pinned")
    with db.connect() as conn:
        conn.execute(sql.SQL("create table {} as select * from {} where library_id = any(%s)"
                             ).format(pinned, view), (ids,))
        conn.execute(sql.SQL("drop view {}").format(view))
        conn.execute(sql.SQL("alter table {} rename to library_candidates").format(pinned))


def test_a_copy_that_takes_a_dropped_rows_place_counts_as_the_station_does(
        db: Database, standin: StandIn) -> None:
    # Inputs {a, b}; LML answers b twice (first with a's verdict) and never a.
    a, b = pick_rows(db, "single_artist", "unresolved")
    only_candidates(db, [a, b])
    standin.config.duplicate_id_rate = 1.0
    standin.config.duplicate_order = "before"
    faulty = run(db, standin)
    total = faulty.counters.total
    assert (total.scanned, total.rows_skipped["lml_untrusted_library_id"],
            total.rows_unresolved, total.rows_resolved) == (2, 1, 1, 0)
    assert_consistent(db, faulty)
    # b's own answer (at its position) landed, not the copy that carried a's verdict.
    with db.connect() as conn:
        landed = conn.execute("select library_id, kind from identity_loader.raw_verdicts"
                              ).fetchall()
    assert landed == [(b, "unresolved")]

    standin.config = StandInConfig(api_key=KEY)
    clean = run(db, standin, prepare=True)
    assert scalar(db, "select kind from identity_loader.raw_verdicts where library_id = %s "
                      "and run_id = %s", a, clean.run_id) == "single_artist"


def test_a_credit_confidence_out_of_range_keeps_the_compilation(
        db: Database, standin: StandIn, caplog: pytest.LogCaptureFixture) -> None:
    standin.config.track_confidence_rate = 1.0
    with caplog.at_level(logging.WARNING, logger="library_identity.resolve.resolve_job"):
        result = run(db, standin, merge=True)
    assert result.status == "succeeded", result.merge
    total = result.counters.total
    assert total.rows_skipped["invalid_response"] == 0
    assert_consistent(db, result)
    with db.connect() as conn:
        # The credits LML sent with a confidence outside 0..1, as landed.
        conn.execute(
            "create temp table spoiled as "
            "select v.library_id, t ->> 'artist_name' as artist_name, "
            "t ->> 'track_title' as track_title from identity_loader.raw_verdicts v "
            "cross join lateral jsonb_array_elements(v.result -> 'tracks') t "
            "where v.kind = 'compilation' and not ((t ->> 'confidence')::float between 0 and 1)")
        spoiled_compilations = conn.execute(
            "select count(distinct library_id) from spoiled").fetchone()[0]
        written = conn.execute(
            "select count(*), count(c.track_artist_link_confidence) "
            "from wxyc_schema.compilation_track_artist c join spoiled s using (library_id, "
            "artist_name, track_title) where c.track_artist_link_method = 'lml_backfill'"
        ).fetchone()
        others = conn.execute(
            "select count(*) from wxyc_schema.compilation_track_artist c "
            "where c.track_artist_link_method = 'lml_backfill' "
            "and c.track_artist_link_confidence is not null").fetchone()[0]
    # Every compilation with tracks got one spoiled credit, and none was thrown away.
    assert spoiled_compilations == scalar(
        db, "select count(*) from identity_loader.raw_verdicts where kind = 'compilation' "
            "and exists (select 1 from jsonb_array_elements(result -> 'tracks') t "
            "where t ->> 'resolved_artist_name' is not null)") > 0
    events = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith("compilation_confidence_out_of_range ")]
    # One line each, up to the run's cap for the step; the rest are counted in one line.
    logged = min(spoiled_compilations, LINES_PER_STEP)
    assert len(events) == logged
    suppressed = [r.getMessage() for r in caplog.records if r.getMessage().startswith(
        "diagnostics_suppressed step=compilation_confidence_out_of_range ")]
    assert suppressed == ([f"diagnostics_suppressed step=compilation_confidence_out_of_range "
                           f"lines={spoiled_compilations - logged} events=0"]
                          if spoiled_compilations > logged else [])
    # The spoiled credits that were linked carry no confidence; the others keep theirs.
    assert written[0] > 0 and written[1] == 0
    assert others > 0


def test_transient_failures_are_retried(db: Database, standin: StandIn) -> None:
    standin.config.fail_first = 2
    standin.config.error_status = 429
    standin.config.retry_after = 0.05
    result = run(db, standin, lml=client(standin, max_attempts=3))
    assert result.counters.total.rows_skipped["lml_error"] == 0
    bulk_calls = len(bulk_requests(standin))
    assert result.counters.total.lml_total_calls == bulk_calls
    # The first batch failed twice (429 with Retry-After), then succeeded on its third try.
    assert bulk_calls == len(range(0, result.counters.cohorts["va"].scanned, 100)) + len(
        range(0, result.counters.cohorts["non_va"].scanned, 500)) + 2
    assert [r.status for r in bulk_requests(standin)][:3] == [429, 429, 200]
    assert_consistent(db, result)


def test_client_errors_are_not_retried(db: Database, standin: StandIn) -> None:
    standin.config.error_rate = 1.0
    standin.config.error_status = 400
    result = run(db, standin, lml=client(standin, max_attempts=4),
                 max_consecutive_failures=1000)
    assert result.status == "failed"  # the run outcome rule: every call failed
    assert result.shortfall is not None and result.shortfall.exit_code == 3
    bulk_calls = len(bulk_requests(standin))
    assert result.counters.total.lml_total_calls == bulk_calls
    assert bulk_calls == len([r for r in bulk_requests(standin) if r.status == 400])
    assert result.counters.total.rows_skipped["lml_error"] == library_rows(db)


def test_lml_that_keeps_failing_stops_the_run(db: Database, standin: StandIn) -> None:
    standin.config.error_rate = 1.0
    with pytest.raises(LMLUnavailable, match="3 batches in a row"):
        run(db, standin, lml=client(standin, max_attempts=1), max_consecutive_failures=3)
    assert scalar(db, "select status from identity_loader.runs") == "failed"
    counters = scalar(db, "select counters from identity_loader.runs")
    assert counters["total"]["rows_skipped"]["lml_error"] == counters["total"]["scanned"] > 0


@pytest.mark.parametrize("key", ["wrong-key-123456", None])
def test_auth_failure_stops_at_once_and_lands_nothing(
        db: Database, standin: StandIn, key: str | None) -> None:
    with pytest.raises(LMLAuthError, match="check LML_API_KEY") as caught:
        run(db, standin, lml=client(standin, key=key))
    assert "wrong-key" not in str(caught.value)
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == 0
    assert scalar(db, "select count(*) from identity_loader.runs") == 0
    # Refused at the empty start-up probe: no batch was ever sent.
    assert [r.status for r in standin.requests if r.path.endswith("libraries")] == [
        403 if key else 401]


def test_unreachable_lml_fails_before_scanning(db: Database) -> None:
    dead = LMLClient(base_url="http://127.0.0.1:9", api_key=KEY, max_attempts=1)
    with pytest.raises(LMLUnavailable, match="not reachable"):
        resolve(db, dead, ResolveOptions(), prepare=False)
    assert scalar(db, "select count(*) from identity_loader.runs") == 0


def test_second_concurrent_run_is_refused(db: Database, standin: StandIn) -> None:
    with db.connect(autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (LOCK_KEYS["resolve"],))
        with pytest.raises(RunLocked, match="another resolve run is in progress"):
            run(db, standin)
    assert run(db, standin).status == "succeeded"


def test_limit_and_partition(db: Database, standin: StandIn) -> None:
    limited = run(db, standin, limit=120)
    assert limited.counters.total.scanned == 120
    part = run(db, standin, prepare=True, partition=candidates.Partition(1, 4))
    ids = scalar(db, "select array_agg(library_id) from identity_loader.raw_verdicts "
                     "where run_id = %s", part.run_id)
    assert ids and all(i % 4 == 1 for i in ids)


def test_writer_connection_dropped_mid_run_reconnects(db: Database, standin: StandIn) -> None:
    standin.config.latency_ms = 50
    killed = threading.Event()

    def kill_writer() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not killed.is_set():
            with db.connect(autocommit=True) as conn:
                n = conn.execute(
                    "select count(*) from (select pg_terminate_backend(pid) from "
                    "pg_stat_activity where application_name = 'library-identity:writer' "
                    "and datname = current_database()) t").fetchone()
            if n and n[0]:
                killed.set()
            time.sleep(0.05)

    killer = threading.Thread(target=kill_writer)
    killer.start()
    try:
        result = run(db, standin, batch_size=100, va_batch_size=50)
    finally:
        killed.set()
        killer.join()
    assert result.status == "succeeded"
    assert result.counters.total.scanned == library_rows(db)
    assert_consistent(db, result)


def test_reader_connection_dropped_gives_a_clear_error(db: Database, standin: StandIn) -> None:
    standin.config.latency_ms = 100

    def kill_reader() -> None:
        time.sleep(0.5)
        with db.connect(autocommit=True) as conn:
            conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                         "where application_name = 'library-identity:reader' "
                         "and datname = current_database()")

    threading.Thread(target=kill_reader).start()
    with pytest.raises(DatabaseError, match="re-run to continue"):
        run(db, standin, batch_size=100, va_batch_size=50)
    assert scalar(db, "select status from identity_loader.runs") == "failed"
    standin.config.latency_ms = 0
    rerun = run(db, standin, prepare=True)
    assert scalar(db, "select count(distinct library_id) from identity_loader.raw_verdicts"
                  ) == library_rows(db)
    assert_consistent(db, rerun)


# -- the command line, in a subprocess ---------------------------------------------------
def cli(db: Database, standin: StandIn | None, *args: str, key: str = KEY,
        env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
    environ = {**os.environ, "DATABASE_URL": db.conninfo, "LML_API_KEY": key,
               **(env or {})}
    if standin is not None:
        environ["LML_URL"] = standin.url
    return subprocess.Popen([*CLI, *args], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def wait_for_rows(db: Database, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while scalar(db, "select count(*) from identity_loader.raw_verdicts") < at_least:
        assert time.monotonic() < deadline, "the run landed too little in time"
        time.sleep(0.05)


def identity_tables(db: Database) -> dict[str, Any]:
    with db.connect() as conn:
        return {
            "library_identity": conn.execute(
                "select library_id, wikidata_qid, spotify_id, apple_music_id, method, "
                "confidence, agreement_sources from wxyc_schema.library_identity "
                "order by library_id").fetchall(),
            "library_identity_source": conn.execute(
                "select library_id, source, external_id, method, confidence "
                "from wxyc_schema.library_identity_source order by 1, 2").fetchall(),
            "compilation_track_artist": conn.execute(
                "select id, track_artist_id, track_artist_link_confidence, "
                "track_artist_link_method, track_position "
                "from wxyc_schema.compilation_track_artist order by id").fetchall(),
        }


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_matches_uninterrupted_run(
        db: Database, template: Database, clone_database: Callable[[Database], Database],
        standin: StandIn) -> None:
    standin.config.latency_ms = 150
    proc = cli(db, standin, "resolve", "--batch-size", "100", "--va-batch-size", "50",
               "--no-progress")
    wait_for_rows(db, 300)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    partial = scalar(db, "select count(*) from identity_loader.raw_verdicts")
    assert 0 < partial < library_rows(db)

    standin.config.latency_ms = 0
    rerun = cli(db, standin, "resolve", "--json")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    summary = json.loads(out)
    assert summary["counters"]["total"]["scanned"] == library_rows(db) - partial
    assert scalar(db, "select count(*) from identity_loader.runs where status = 'interrupted'"
                  ) == 1

    reference = clone_database(template)
    straight = cli(reference, standin, "resolve", "--json")
    _, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err
    assert identity_tables(db) == identity_tables(reference)


def test_sigterm_lands_the_batch_in_flight_and_exits_130(db: Database, standin: StandIn) -> None:
    standin.config.latency_ms = 300
    proc = cli(db, standin, "resolve", "--batch-size", "100", "--va-batch-size", "50",
               "--json")
    wait_for_rows(db, 100)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "finishing the batches in flight" in err
    row = scalar(db, "select row(status, counters)::text from identity_loader.runs")
    assert row.startswith("(interrupted,")
    summary = json.loads(out)
    landed = sum(summary["counters"]["total"][k] for k in LANDED)
    landed += summary["counters"]["total"]["rows_skipped"]["compilation"]
    assert landed == scalar(db, "select count(*) from identity_loader.raw_verdicts")
    assert 0 < landed < library_rows(db)


def test_cli_second_run_exits_4(db: Database, standin: StandIn) -> None:
    with db.connect(autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (LOCK_KEYS["resolve"],))
        proc = cli(db, standin, "resolve")
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 4
    assert "another resolve run is in progress" in err


def test_cli_rejects_bad_batch_size_before_anything(db: Database) -> None:
    proc = cli(db, None, "resolve", "--batch-size", "1001")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "between 1 and 1000" in err


DRY_RUN_KEYS = ["report_version", "mode", "scanned", "lml_total_calls", "lml_total_latency_ms",
                "would_resolve", "would_resolve_compilation", "would_unresolved", "would_skip",
                "source_rows_skipped_null_confidence", "cohorts"]
WOULD_SKIP_KEYS = ["compilation", "lml_error", "lml_cardinality_mismatch",
                   "lml_untrusted_library_id", "invalid_response"]


def test_dry_run_prints_the_fixed_report_and_writes_nothing(
        db: Database, standin: StandIn) -> None:
    proc = cli(db, standin, "resolve", "--dry-run", "--no-progress")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    report = json.loads(out)  # exactly one JSON object on stdout
    assert list(report) == DRY_RUN_KEYS
    assert list(report["would_skip"]) == WOULD_SKIP_KEYS
    assert list(report["cohorts"]) == ["va", "non_va"]
    for cohort in report["cohorts"].values():
        assert list(cohort) == DRY_RUN_KEYS[2:-1]
    assert report["report_version"] == 1 and report["mode"] == "full"
    assert report["scanned"] == library_rows(db)
    assert report["scanned"] == (report["would_resolve"] + report["would_resolve_compilation"]
                                 + report["would_unresolved"] + sum(report["would_skip"].values()))
    assert report["lml_total_calls"] > 0
    assert scalar(db, "select count(*) from identity_loader.runs") == 0
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == 0
    assert scalar(db, "select count(*) from wxyc_schema.library_identity") == 0


def test_api_key_never_appears_in_output(db: Database, standin: StandIn) -> None:
    secret = "sk-live-7Hq2ZyX9wPq4"
    standin.config.api_key = secret
    outputs = []
    for args in (["-v", "resolve", "--dry-run"], ["-v", "--log-format", "json", "resolve"]):
        proc = cli(db, standin, *args, key=secret)
        outputs.append(proc.communicate(timeout=300))
        assert proc.returncode == 0, outputs[-1][1]
    standin.config.api_key = "another-key"  # now our key is refused: the error path
    proc = cli(db, standin, "-v", "resolve", key=secret)
    outputs.append(proc.communicate(timeout=300))
    assert proc.returncode == 3
    text = "".join(o + e for o, e in outputs)
    assert "refused the API key" in text
    assert secret not in text


def test_sentry_run_transaction_spans_and_no_secrets(
        db: Database, standin: StandIn, sentry_transport: SentryCapture) -> None:
    import sentry_sdk

    standin.config.cache_stats = True
    standin.config.fail_first = 1
    standin.config.error_status = 400  # one batch fails permanently: an error event
    result = run(db, standin, max_consecutive_failures=10)
    sentry_sdk.flush()
    transactions = sentry_transport.items("transaction")
    assert len(transactions) == 1
    txn = transactions[0]
    # The station consumer's names, so alerts written for it keep working.
    assert txn["transaction"] == "library-identity-consumer.run"
    assert txn["contexts"]["trace"]["op"] == "job.run"
    assert txn["tags"]["run_id"] == str(result.run_id)
    data = txn["contexts"]["trace"]["data"]
    for cohort in ("va", "non_va"):
        counters = result.counters.cohorts[cohort].flat(f"consumer.{cohort}")
        assert {k: data[k] for k in counters} == counters
    assert data["consumer.va.rows_skipped.lml_error"] == result.counters.cohorts[
        "va"].rows_skipped["lml_error"] > 0
    assert not [k for k in data if k.startswith("resolve.")]
    spans = [s for s in txn["spans"] if s["op"] == "http.client"
             and s["description"] == "lml.bulk_resolve_libraries"]
    assert len(spans) == result.counters.total.lml_total_calls
    assert all("lml.batch_size" in s["data"] for s in spans)
    assert any("lml.cache.pg_hits" in s["data"] for s in spans)
    events = sentry_transport.items("event")
    assert any(e.get("tags", {}).get("step") == "lml_error" for e in events)
    text = sentry_transport.serialized()
    assert KEY not in text
    assert "k7Qs-sentry-0b9e4d" not in text


def test_sentry_events_for_short_and_untrusted_responses(
        db: Database, standin: StandIn, sentry_transport: SentryCapture) -> None:
    import sentry_sdk

    standin.config.short_rate = 1.0
    standin.config.foreign_id_rate = 1.0
    result = run(db, standin)
    sentry_sdk.flush()
    skipped = result.counters.total.rows_skipped
    events = sentry_transport.items("event")
    by_step = Counter(e["tags"]["step"] for e in events)
    # One event per short response, one per untrusted result, as the station sends them.
    assert by_step["lml_cardinality_mismatch"] == len(bulk_requests(standin)) == skipped[
        "lml_cardinality_mismatch"]
    assert by_step["lml_untrusted_library_id"] == skipped["lml_untrusted_library_id"] > 0
    assert all(e["tags"]["run_id"] == str(result.run_id) and e["level"] == "error"
               for e in events)

    # A recheck run is one drain for the station: its counters go under consumer.recheck.
    standin.config = StandInConfig(api_key=KEY)
    recheck = run(db, standin, prepare=True, mode="recheck")
    sentry_sdk.flush()
    txn = sentry_transport.items("transaction")[-1]
    data = txn["contexts"]["trace"]["data"]
    assert recheck.counters.total.scanned > 0
    assert {k: v for k, v in data.items() if k.startswith("consumer.")} == \
        recheck.counters.total.flat("consumer.recheck")


def test_sentry_project_naming(db: Database, standin: StandIn,
                               sentry_transport: SentryCapture) -> None:
    import sentry_sdk

    from library_identity.telemetry import init_sentry

    init_sentry(SENTRY_TEST_DSN, transport=sentry_transport, naming="library-identity")
    result = run(db, standin, limit=50)
    sentry_sdk.flush()
    (txn,) = sentry_transport.items("transaction")
    assert txn["transaction"] == "library-identity.resolve"
    data = txn["contexts"]["trace"]["data"]
    assert {k: v for k, v in data.items() if k.startswith("resolve.")} == \
        result.counters.flat("resolve")


def readme_gate_command() -> list[str]:
    """The station-wide gates' command, exactly as the README gives it."""
    readme = (ROOT / "README.md").read_text()
    (line,) = [x.strip() for x in readme.splitlines() if "--selector gates" in x
               and x.strip().startswith("library-identity ")]
    return line.split()[1:]


def test_the_readmes_gate_command_passes_before_and_after_resolve(
        db: Database, standin: StandIn, tmp_path: Path) -> None:
    command = readme_gate_command()
    assert command == ["dbt", "build", "--selector", "gates"]
    for step in ("seeded", "resolved"):
        if step == "resolved":
            done = cli(db, standin, "resolve", "--no-progress")
            out, err = done.communicate(timeout=600)
            assert done.returncode == 0, out + err
        # From another folder, as a station's shell would run it.
        env = {**os.environ, "DATABASE_URL": db.conninfo}
        gates = subprocess.run([*CLI, *command], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=600)
        assert gates.returncode == 0, (step, gates.stdout[-3000:] + gates.stderr)
        assert "ERROR=0" in gates.stdout
