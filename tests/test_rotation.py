"""End to end: the rotation backfill, refresh and coverage against a real Postgres, real dbt
views and the LML stand-in over HTTP. Each test gets its own copy of a seeded database."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI, STANDIN_KEY, SentryCapture, station_template
from psycopg import sql

from library_identity import dbt_names, migrate
from library_identity.db import Database
from library_identity.demo.seed import seed_library
from library_identity.demo.standin import refresh as standin_refresh
from library_identity.demo.standin import server as standin_server
from library_identity.demo.standin.server import StandIn
from library_identity.errors import LMLUnavailable, RunLocked, StationLive
from library_identity.jobs.lock import LOCK_KEYS
from library_identity.lml.client import LMLClient
from library_identity.lml.contract import CacheRefreshResultItem
from library_identity.rotation import backfill as backfill_module
from library_identity.rotation.backfill import BackfillOptions, BackfillResult, backfill
from library_identity.rotation.counters import RefreshCounters, tally
from library_identity.rotation.models import build_models
from library_identity.rotation.refresh import (
    LML_REFRESH_BATCH_CAP,
    RefreshOptions,
    RefreshResult,
    refresh,
)

ROOT = Path(__file__).resolve().parent.parent
KEY = STANDIN_KEY
# About 62 active rotation rows, ~53 distinct identities, ~6 rows awaiting a backfill.
N_ROWS = 13_000
REFRESH = "/api/v1/cache/refresh-for-identities"
RESOLVE = "/api/v1/identity/resolve"
# Identity ids the stand-in answers not_found for: stale handles.
STALE_IDS = [i for i in range(1, 5_000) if standin_refresh.refresh_item(i)["status"]
             == "not_found"][:3]


@pytest.fixture(scope="module")
def template(station_schema: Database | None, make_database: Callable[[], Database],
             clone_database: Callable[[Database], Database]) -> Database:
    db = station_template(station_schema, make_database, clone_database, N_ROWS)
    build_models(db)  # views; every clone inherits them
    return db


def client(standin: StandIn, rpm: float = 6000, **kwargs: Any) -> LMLClient:
    kwargs = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 300, **kwargs}
    return LMLClient(base_url=standin.url, api_key=KEY, requests_per_minute=rpm, **kwargs)


def run_refresh(db: Database, standin: StandIn, rpm: float = 6000,
                **options: Any) -> RefreshResult:
    opts = RefreshOptions(**{"retry_delay_s": 0.0, **options})
    with client(standin, rpm) as c:
        return refresh(db, c, opts, prepare=False)


def run_backfill(db: Database, standin: StandIn, **options: Any) -> BackfillResult:
    with client(standin) as c:
        return backfill(db, c, BackfillOptions(**options))


def rows(db: Database, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(query, params).fetchall()


def scalar(db: Database, query: str, *params: Any) -> Any:
    found = rows(db, query, *params)
    return found[0][0] if found else None


def active_identities(db: Database) -> list[int]:
    return [r[0] for r in rows(
        db, "select distinct lml_identity_id from wxyc_schema.rotation where (kill_date is "
            "null or kill_date > current_date) and lml_identity_id is not null order by 1")]


def add_stale_handles(db: Database, ids: list[int]) -> None:
    with db.connect() as conn:
        for identity_id in ids:
            conn.execute("insert into wxyc_schema.rotation (rotation_bin, lml_identity_id) "
                         "values ('H', %s)", (identity_id,))


def refresh_posts(standin: StandIn) -> list[standin_server.RequestRecord]:
    """Refresh batches (the gate's empty probe excluded)."""
    return [r for r in standin.requests if r.path == REFRESH and r.batch_size]


def expected(ids: list[int]) -> RefreshCounters:
    """What the counters must say, from the stand-in's deterministic answers (each `error`
    item is asked twice and answers `error` again)."""
    want = RefreshCounters()
    for identity_id in ids:
        want.add(tally(CacheRefreshResultItem.model_validate(
            standin_refresh.refresh_item(identity_id))))
    return want


COUNTED = ("identities_scanned", "identities_resolved", "warmed_releases", "warmed_artists",
           "not_found", "not_implemented", "lml_error")


# -- refresh ------------------------------------------------------------------------------
def cli(db: Database, standin: StandIn | None, *args: str, url: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {**os.environ, "DATABASE_URL": db.conninfo, "LML_API_KEY": KEY, **(env or {})}
    if standin is not None or url:
        environ["LML_URL"] = url or standin.url  # type: ignore[union-attr]
    return subprocess.Popen([*CLI, *args], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_batch_cap_and_short_timeout_are_refused_before_any_call(
        db: Database, standin: StandIn) -> None:
    assert LML_REFRESH_BATCH_CAP == 50
    for args, message in ((["--batch-size", "51"], "above LML's refresh cap of 50"),
                          (["--timeout", "299"], "at least 300 s")):
        proc = cli(db, standin, "rotation", "refresh", *args)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, err
        assert message in err
    assert standin.requests == []
    assert scalar(db, "select count(*) from identity_loader.runs") == 0


def test_warmed_artists_count_whatever_their_release_leg_did() -> None:
    # As the station counts them: an artist leg that succeeded is a warm artist, even
    # under a source whose release leg failed; a null source is skipped.
    def artists(*outcomes: str) -> list[dict[str, Any]]:
        return [{"external_id": str(i), "outcome": o} for i, o in enumerate(outcomes)]

    item = CacheRefreshResultItem.model_validate({"identity_id": 7, "status": "warmed", "sources": {
        "discogs_release": {"release_outcome": "success", "artists": artists("success", "error")},
        "musicbrainz_release": {"release_outcome": "error",
                                "artists": artists("success", "success")},
        "spotify_album": None}})
    t = tally(item)
    assert (t.bucket, t.warmed_releases, t.warmed_artists) == ("warmed", 1, 3)
    # Other statuses tally no sources.
    assert tally(item.model_copy(update={"status": "not_implemented"})).warmed_artists == 0


def test_each_status_lands_and_counts(db: Database, standin: StandIn) -> None:
    ids = active_identities(db)
    result = run_refresh(db, standin)
    assert result.status == "succeeded"
    c = result.counters
    c.check_invariant()
    want = expected(ids)
    assert {k: getattr(c, k) for k in COUNTED} == {k: getattr(want, k) for k in COUNTED}
    assert c.identities_scanned == len(ids) > 40
    assert c.warmed_releases > 0 and c.warmed_artists > c.warmed_releases
    assert c.skipped_null_identity == scalar(
        db, "select count(*) from wxyc_schema.rotation where (kill_date is null or "
            "kill_date > current_date) and lml_identity_id is null")

    # Each identity's final answer is landed as LML gave it, and the rows add up.
    final = rows(db, "select distinct on (identity_id) identity_id, status, warmed_releases, "
                     "warmed_artists, sources, message from identity_loader."
                     "rotation_refresh_results where run_id = %s "
                     "order by identity_id, result_id desc", result.run_id)
    assert [r[0] for r in final] == ids
    for identity_id, status, releases, artists, sources, message in final:
        answer = standin_refresh.refresh_item(identity_id)
        assert (status, sources, message) == (answer["status"], answer["sources"],
                                              answer["message"])
        t = tally(CacheRefreshResultItem.model_validate(answer))
        assert (releases, artists) == (t.warmed_releases, t.warmed_artists)
    statuses = Counter(r[1] for r in final)
    assert statuses["not_found"] == c.not_found
    assert statuses["not_implemented"] == c.not_implemented
    assert statuses["error"] == c.lml_error
    assert sum(r[2] for r in final) == c.warmed_releases
    assert sum(r[3] for r in final) == c.warmed_artists
    stored = rows(db, "select status, counters from identity_loader.runs where run_id = %s",
                  result.run_id)[0]
    assert stored == ("succeeded", json.loads(json.dumps(c.as_dict())))


def test_error_items_are_retried_once_in_a_later_batch(
        db: Database, standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = active_identities(db)
    errors = [i for i in ids if standin_refresh.refresh_item(i)["status"] == "error"]
    assert errors, "the sample should hold identities LML answers `error` for"
    # The first error id recovers on its retry; the others fail again.
    recovered, asked = errors[0], Counter[int]()
    original = standin_refresh.refresh_item

    def flaky(identity_id: int) -> dict[str, Any]:
        asked[identity_id] += 1
        if identity_id == recovered and asked[identity_id] > 1:
            return {"identity_id": identity_id, "status": "warmed", "message": None,
                    "sources": {"discogs_release": {"release_outcome": "success",
                                                    "artists": [], "message": None}}}
        return original(identity_id)

    monkeypatch.setattr(standin_server, "refresh_item", flaky)
    result = run_refresh(db, standin, batch_size=10)
    c = result.counters
    c.check_invariant()
    assert c.retried == len(errors)
    assert asked == Counter({i: 2 if i in errors else 1 for i in ids})
    assert c.lml_error == len(errors) - 1 and c.identities_scanned == len(ids)
    posts = refresh_posts(standin)
    first_pass = math.ceil(len(ids) / 10)
    assert [r.batch_size for r in posts[first_pass:]] == [len(errors)]  # one later batch
    attempts = rows(db, "select identity_id, array_agg(status order by result_id) from "
                        "identity_loader.rotation_refresh_results group by identity_id "
                        "having count(*) > 1 order by 1")
    assert attempts == sorted((i, ["error", "warmed" if i == recovered else "error"])
                              for i in errors)


@pytest.mark.parametrize(("config", "failed"), [
    ({"fail_first": 2, "error_status": 503}, False),  # transient: the client retries
    ({"error_rate": 1.0, "error_status": 503}, True),
    ({"malformed_rate": 1.0}, True),
])
def test_failed_batches_count_every_identity_once(
        db: Database, standin: StandIn, config: dict[str, Any], failed: bool) -> None:
    for key, value in config.items():
        setattr(standin.config, key, value)
    ids = active_identities(db)
    with client(standin, max_attempts=3) as c:
        result = refresh(db, c, RefreshOptions(retry_delay_s=0, max_consecutive_failures=100),
                         prepare=False)
    counters = result.counters
    counters.check_invariant()
    assert counters.identities_scanned == len(ids)
    assert counters.lml_total_calls == len(refresh_posts(standin))
    if failed:  # every identity's call failed: the run outcome rule fails the run
        assert result.status == "failed" and result.shortfall is not None
        assert result.shortfall.exit_code == 3
        assert counters.lml_error_batch == counters.lml_error == len(ids)
        assert counters.failed_batches == math.ceil(len(ids) / 50)
        assert scalar(db, "select count(*) from identity_loader.rotation_refresh_results") == 0
    else:
        assert counters.lml_total_calls == math.ceil(len(ids) / 50) + 1 + 2  # + retry batch
        assert counters.lml_error == expected(ids).lml_error and counters.failed_batches == 0
        assert result.status == "succeeded"


def test_limiter_keeps_the_observed_rate_within_the_limit(
        db: Database, standin: StandIn) -> None:
    rate = 120.0  # per minute: one request every 0.5 s
    result = run_refresh(db, standin, rpm=rate, batch_size=5, concurrency=3)
    times = sorted(r.time for r in refresh_posts(standin))
    assert len(times) == result.counters.lml_total_calls >= 10
    window, tolerance = 60 / rate, 0.02  # loopback arrival jitter
    busiest = max(sum(1 for t in times if start <= t < start + window - tolerance)
                  for start in times)
    assert busiest == 1
    observed = (len(times) - 1) / (times[-1] - times[0]) * 60
    assert observed <= rate
    print(f"\nrefresh batches={len(times)} observed={observed:.1f}/min limit={rate:g}/min "
          f"min_gap={min(b - a for a, b in pairwise(times)):.3f}s")


@pytest.mark.parametrize(("threshold", "fires"), [(3.0, True), (4.0, False)])
def test_not_found_alert_fires_above_the_threshold_only(
        db: Database, standin: StandIn, threshold: float, fires: bool) -> None:
    add_stale_handles(db, STALE_IDS[:2])
    ids = active_identities(db)
    result = run_refresh(db, standin, not_found_alert_pct=threshold)
    pct = 100 * result.counters.not_found / len(ids)
    assert result.counters.not_found == expected(ids).not_found >= 2
    assert 3.0 < pct <= 4.0  # the two thresholds sit either side of the observed share
    assert result.alert is not None and result.alert.fired is fires
    assert result.status == ("alert" if fires else "succeeded")
    assert scalar(db, "select status from identity_loader.runs") == result.status


def test_cli_alert_exits_5_loudly(db: Database, standin: StandIn) -> None:
    add_stale_handles(db, STALE_IDS)
    proc = cli(db, standin, "rotation", "refresh", "--json", "--retry-delay", "0",
               "--requests-per-minute", "6000")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 5, err
    assert "WARNING" in err and "STALE REFERENCE ALERT" in err
    assert "pyrate_limiter" not in err  # third-party chatter stays out of the log
    summary = json.loads(out)
    assert summary["status"] == "alert" and summary["alert"]["fired"] is True
    assert summary["alert"]["not_found"] == summary["counters"]["not_found"] >= 3
    assert KEY not in out + err


def test_capability_gate_aborts_without_the_refresh_route(
        db: Database, standin: StandIn) -> None:
    standin.config.refresh_enabled = False
    proc = cli(db, standin, "rotation", "refresh")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert f"has no {REFRESH}" in err and "HTTP 404" in err
    assert [(r.method, r.path, r.batch_size) for r in standin.requests] == [
        ("GET", "/health", None), ("POST", REFRESH, None)]
    assert scalar(db, "select count(*) from identity_loader.runs") == 0

    dead = LMLClient(base_url="http://127.0.0.1:9", api_key=KEY, max_attempts=1)
    with pytest.raises(LMLUnavailable, match="not reachable"):
        refresh(db, dead, RefreshOptions(), prepare=False)


def test_second_run_is_refused_while_one_holds_the_lock(db: Database, standin: StandIn) -> None:
    with db.connect(autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (LOCK_KEYS["rotation_refresh"],))
        with pytest.raises(RunLocked, match="another rotation_refresh run"):
            run_refresh(db, standin)
    assert standin.requests == []


def test_sigterm_finishes_batches_in_flight_and_exits_130(
        db: Database, standin: StandIn) -> None:
    standin.config.latency_ms = 700
    proc = cli(db, standin, "rotation", "refresh", "--batch-size", "5", "--concurrency", "2",
               "--requests-per-minute", "6000", "--json")
    deadline = time.monotonic() + 60
    while not scalar(db, "select count(*) from identity_loader.rotation_refresh_results"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    landed = scalar(db, "select count(distinct identity_id) from "
                        "identity_loader.rotation_refresh_results")
    counters = summary["counters"]
    assert summary["status"] == "interrupted"
    assert 0 < counters["identities_scanned"] < len(active_identities(db))
    assert counters["identities_scanned"] == landed + counters["lml_error_batch"]
    assert len(refresh_posts(standin)) * 5 >= counters["identities_scanned"]
    assert scalar(db, "select status from identity_loader.runs") == "interrupted"


def test_sentry_transaction_batch_spans_and_alert(
        db: Database, standin: StandIn, sentry_transport: SentryCapture) -> None:
    import sentry_sdk

    add_stale_handles(db, STALE_IDS)
    result = run_refresh(db, standin, batch_size=20)
    sentry_sdk.flush()
    (txn,) = sentry_transport.items("transaction")
    # The station's cache-warm job's names, so its alerts (not_found above 1%) keep working.
    assert txn["transaction"] == "rotation-artist-backfill.run"
    assert txn["contexts"]["trace"]["op"] == "job.run"
    assert txn["tags"]["rotation.stale_reference_alert"] == "fired"
    data = txn["contexts"]["trace"]["data"]
    for key, value in result.counters.as_dict().items():
        assert data[f"backfill.{key}"] == value
    (totals,) = [s for s in txn["spans"] if s["op"] == "rotation-artist-backfill.totals"]
    assert totals["description"] == "rotation-artist-backfill.run.totals"
    station_keys = {"backfill.dry_run": 0, **{
        f"backfill.{k}": getattr(result.counters, k) for k in (
            "identities_scanned", "identities_resolved", "warmed_releases", "warmed_artists",
            "not_found", "not_implemented", "lml_error")}}
    assert {k: totals["data"][k] for k in station_keys} == station_keys
    assert totals["data"]["backfill.not_found"] == len(STALE_IDS)
    spans = [s for s in txn["spans"] if s["op"] == "http.client"
             and s["description"] == "lml.refresh_for_identities"]
    assert len(spans) == len(refresh_posts(standin))
    assert all(s["data"]["lml.batch_timeout_ms"] == 360_000 and s["status"] == "ok"
               for s in spans)
    assert sorted(s["data"]["lml.batch_size"] for s in spans) == sorted(
        r.batch_size for r in refresh_posts(standin))
    events = sentry_transport.items("event")
    assert any(e.get("tags", {}).get("step") == "stale_reference_alert" for e in events)
    text = sentry_transport.serialized()
    assert KEY not in text and "k7Qs-sentry-0b9e4d" not in text


def test_refresh_dry_run_reports_the_batches_and_calls_nothing(
        db: Database, standin: StandIn) -> None:
    ids = active_identities(db)
    view = dbt_names.qualified("rotation_refresh_candidates")
    view_oid = "select %s::regclass::oid"
    before = scalar(db, view_oid, view)
    proc = cli(db, standin, "rotation", "refresh", "--dry-run", "--batch-size", "20")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    report = json.loads(out)  # exactly one JSON object on stdout
    assert report["dry_run"] is True and report["job"] == "rotation_refresh"
    assert report["identities"] == len(ids) > 40
    assert report["batches"] == [ids[i:i + 20] for i in range(0, len(ids), 20)]
    assert report["batch_count"] == math.ceil(len(ids) / 20)
    counters = report["counters"]
    assert counters.pop("skipped_null_identity") == scalar(
        db, "select count(*) from wxyc_schema.rotation where (kill_date is null or "
            "kill_date > current_date) and lml_identity_id is null")
    assert set(counters.values()) == {0}
    assert standin.requests == []  # not even /health
    assert scalar(db, "select count(*) from identity_loader.runs") == 0
    assert scalar(db, "select count(*) from identity_loader.rotation_refresh_results") == 0
    assert scalar(db, view_oid, view) == before  # nothing rebuilt

    # Without the project's views (a database dbt never ran on), the dry run creates the
    # views they read and still builds neither model.
    with db.connect() as conn:
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(dbt_names.schema())))
    result = refresh(db, None, RefreshOptions(dry_run=True))
    assert [i for batch in result.batches for i in batch] == ids
    assert scalar(db, "select to_regclass(%s)", view) is None


# -- backfill -----------------------------------------------------------------------------
def backfill_candidates(db: Database) -> list[tuple[int, int]]:
    return rows(db, "select id, discogs_release_id from wxyc_schema.rotation where (kill_date "
                    "is null or kill_date > current_date) and lml_identity_id is null and "
                    "discogs_release_id is not null order by id")


def test_backfill_dry_run_then_live_then_nothing(db: Database, standin: StandIn) -> None:
    todo = backfill_candidates(db)
    assert len(todo) >= 3
    proc = cli(db, standin, "rotation", "backfill", "--dry-run", "--requests-per-minute",
               "6000")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = json.loads(out)  # exactly one JSON object
    assert report["dry_run"] is True
    assert report["scanned"] == report["resolved"] == len(todo)
    assert backfill_candidates(db) == todo
    assert scalar(db, "select count(*) from identity_loader.runs") == 0

    live = run_backfill(db, standin)
    live.counters.check_invariant()
    assert (live.status, live.counters.scanned, live.counters.resolved) == (
        "succeeded", len(todo), len(todo))
    written = dict(rows(db, "select id, lml_identity_id from wxyc_schema.rotation "
                            "where id = any(%s)", [r[0] for r in todo]))
    # What LML's identity/resolve answers for each release: the sample's handle, unless
    # LML has forgotten it.
    assert written == {rid: standin_refresh.identity_id_for(
        standin_refresh.identity_key("discogs_release", str(release))) for rid, release in todo}
    again = run_backfill(db, standin)
    assert again.counters.scanned == 0
    assert rows(db, "select status, counters->>'scanned' from identity_loader.runs "
                    "order by started_at") == [("succeeded", str(len(todo))),
                                               ("succeeded", "0")]


@pytest.mark.parametrize("other_writer", ["sets_identity", "changes_release"])
def test_backfill_leaves_a_row_changed_meanwhile_to_the_other_writer(
        db: Database, standin: StandIn, other_writer: str) -> None:
    todo = backfill_candidates(db)
    target = todo[0][0]  # concurrency 1, in id order: the first call is for this row
    change = ("lml_identity_id = 424242" if other_writer == "sets_identity"
              else "discogs_release_id = 31415")
    standin.config.latency_ms = 400

    def other() -> None:
        deadline = time.monotonic() + 10
        while not any(r.path == RESOLVE for r in standin.requests):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with db.connect() as conn:
            conn.execute(f"update wxyc_schema.rotation set {change} where id = %s", (target,))

    writer = threading.Thread(target=other)
    writer.start()
    result = run_backfill(db, standin)
    writer.join()
    c = result.counters
    c.check_invariant()
    assert (c.raced, c.resolved, c.scanned) == (1, len(todo) - 1, len(todo))
    row = rows(db, "select lml_identity_id, discogs_release_id from wxyc_schema.rotation "
                   "where id = %s", target)[0]
    assert row == ((424242, todo[0][1]) if other_writer == "sets_identity" else (None, 31415))


def test_backfill_counts_a_422_as_unresolved(
        db: Database, standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    todo = backfill_candidates(db)
    refused = str(todo[-1][1])
    original = standin_server.resolve_errors

    def errors(body: Any) -> list[dict[str, Any]]:
        if isinstance(body, dict) and body.get("external_id") == refused:
            return [{"loc": ["body", "external_id"], "msg": "refused", "type": "value_error"}]
        return original(body)

    monkeypatch.setattr(standin_server, "resolve_errors", errors)
    result = run_backfill(db, standin)
    c = result.counters
    assert (c.unresolved, c.resolved, c.lml_error, c.raced) == (1, len(todo) - 1, 0, 0)
    c.check_invariant()
    assert backfill_candidates(db) == [todo[-1]]  # left for a later run


def log_on_air(db: Database, entry_type: str, seconds_ago: float) -> None:
    with db.connect() as conn:
        conn.execute("insert into wxyc_schema.flowsheet (entry_type, add_time, play_order) "
                     "values (%s, now() - %s * interval '1 second', 1)",
                     (entry_type, seconds_ago))


def resolve_calls(standin: StandIn) -> list[standin_server.RequestRecord]:
    return [r for r in standin.requests if r.path == RESOLVE]


def test_backfill_does_not_wait_for_old_tracks_or_other_entries(
        db: Database, standin: StandIn) -> None:
    todo = backfill_candidates(db)
    log_on_air(db, "track", 120)       # out of the 60 s window
    log_on_air(db, "show_start", 0)    # in it, but not a track
    log_on_air(db, "message", 0)
    result = run_backfill(db, standin, quiet_pause_s=1)
    assert (result.counters.quiet_pauses, result.counters.resolved) == (0, len(todo))

    # A track just now, with the lookback switched off: no wait either.
    with db.connect() as conn:
        conn.execute("update wxyc_schema.rotation set lml_identity_id = null")
    log_on_air(db, "track", 0)
    again = run_backfill(db, standin, quiet_lookback_s=0)
    assert again.counters.quiet_pauses == 0 and again.counters.resolved > 0


def test_backfill_waits_until_the_last_track_leaves_the_lookback(
        db: Database, standin: StandIn) -> None:
    todo = backfill_candidates(db)
    logged = time.monotonic()
    log_on_air(db, "track", 0)
    result = run_backfill(db, standin, quiet_lookback_s=2, quiet_pause_s=1)
    assert result.counters.quiet_pauses >= 1
    assert result.counters.resolved == len(todo)
    # No LML call while the track was inside the 2 s lookback.
    assert min(r.time for r in resolve_calls(standin)) >= logged + 2 - 0.05


def test_backfill_fails_without_writing_when_the_station_stays_on_air(
        db: Database, standin: StandIn) -> None:
    todo = backfill_candidates(db)
    log_on_air(db, "track", 0)
    with pytest.raises(StationLive, match="quiet-period ceiling"):
        run_backfill(db, standin, quiet_lookback_s=3600, quiet_pause_s=1, quiet_max_wait_s=2)
    assert resolve_calls(standin) == []
    assert backfill_candidates(db) == todo
    status, counters = rows(db, "select status, counters from identity_loader.runs")[0]
    assert (status, counters["quiet_pauses"], counters["scanned"]) == ("failed", 2, 0)


def test_backfill_quiet_period_ceiling_is_one_budget_for_the_run(
        db: Database, standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    # The on-air log's answers are scripted: a real log cannot be made to go quiet and
    # come back at exact moments. On air before the first row and before the second: two
    # waits each shorter than the 1.5 s ceiling, which together reach it.
    looks = iter([True, False, True, True, False])
    monkeypatch.setattr(backfill_module._Runner, "_on_air",
                        lambda _self, _lookback: next(looks, False))
    todo = backfill_candidates(db)
    with pytest.raises(StationLive, match=r"ceiling \(1.5 s of pauses this run"):
        run_backfill(db, standin, quiet_pause_s=1, quiet_max_wait_s=1.5)
    assert len(resolve_calls(standin)) == 1
    assert backfill_candidates(db) == todo[1:]
    status, counters = rows(db, "select status, counters from identity_loader.runs")[0]
    assert (status, counters["quiet_pauses"], counters["resolved"]) == ("failed", 2, 1)


def test_backfill_cli_quiet_period_settings_exit_codes_and_sigterm(
        db: Database, standin: StandIn) -> None:
    todo = backfill_candidates(db)
    log_on_air(db, "track", 0)
    env = {"BACKFILL_QUIET_LOOKBACK_SECONDS": "3600", "BACKFILL_QUIET_PAUSE_SECONDS": "1",
           "BACKFILL_QUIET_MAX_WAIT_SECONDS": "1"}
    proc = cli(db, standin, "rotation", "backfill", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "quiet-period ceiling (1 s" in err

    proc = cli(db, standin, "rotation", "backfill", "--quiet-pause", "0.5")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--quiet-pause" in err

    # No ceiling: it would wait for ever; SIGTERM ends the wait at once.
    proc = cli(db, standin, "rotation", "backfill", "--json",
               env={**env, "BACKFILL_QUIET_MAX_WAIT_SECONDS": "0",
                    "BACKFILL_QUIET_PAUSE_SECONDS": "600"})
    deadline = time.monotonic() + 60
    while scalar(db, "select count(*) from identity_loader.runs where status = 'running'") == 0:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["status"] == "interrupted" and summary["counters"]["scanned"] == 0
    assert summary["counters"]["quiet_pauses"] == 1
    assert resolve_calls(standin) == []
    assert backfill_candidates(db) == todo


def test_without_an_on_air_log_only_the_quiet_period_stops(
        db: Database, standin: StandIn) -> None:
    with db.connect() as conn:
        conn.execute("drop table wxyc_schema.flowsheet cascade")
    todo = backfill_candidates(db)
    proc = cli(db, standin, "rotation", "backfill")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert err.strip().splitlines()[-1] == (
        "error: the quiet period reads the on-air log wxyc_schema.flowsheet, which this "
        "database lacks; pass --quiet-lookback 0 to send without waiting")
    assert resolve_calls(standin) == [] and backfill_candidates(db) == todo

    for args in (("rotation", "backfill", "--quiet-lookback", "0"),
                 ("rotation", "refresh", "--requests-per-minute", "6000"),
                 ("resolve", "--no-progress", "--limit", "50")):
        proc = cli(db, standin, *args)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode in ((0, 5) if "refresh" in args else (0,)), (*args, err)
    assert backfill_candidates(db) == []
    doctor = cli(db, standin, "doctor")
    out, err = doctor.communicate(timeout=120)
    assert doctor.returncode == 0, out + err
    assert "[warn] table wxyc_schema.flowsheet (missing): only `rotation backfill`" in out


def test_a_failing_on_air_probe_ends_in_one_error_line(db: Database, standin: StandIn) -> None:
    # The log is there and readable, but reading it fails.
    with db.connect() as conn:
        conn.execute("drop table wxyc_schema.flowsheet cascade")
        conn.execute("create view wxyc_schema.flowsheet as select 'track' as entry_type, "
                     "now() + (1 / (random() * 0)::int) * interval '1 second' as add_time")
    todo = backfill_candidates(db)
    proc = cli(db, standin, "rotation", "backfill")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 6, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(
        "error: the on-air log wxyc_schema.flowsheet could not be read (division by zero); "
        "stopped before the next LML call")
    assert resolve_calls(standin) == [] and backfill_candidates(db) == todo


def test_backfill_reads_the_station_quiet_period_variables(
        db: Database, standin: StandIn) -> None:
    todo = backfill_candidates(db)
    log_on_air(db, "track", 0)
    # The station's names and units: a pause under 1000 ms is refused, naming the variable.
    proc = cli(db, standin, "rotation", "backfill", env={"LIVE_ACTIVITY_PAUSE_MS": "500"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "LIVE_ACTIVITY_PAUSE_MS must be a number of milliseconds, at least 1000" in err
    # The lookback (s) and ceiling (ms) from the station's variables; our own pause
    # variable beats the station's.
    proc = cli(db, standin, "rotation", "backfill", env={
        "LIVE_ACTIVITY_LOOKBACK_SECONDS": "3600", "LIVE_ACTIVITY_MAX_PAUSE_MS": "1500",
        "LIVE_ACTIVITY_PAUSE_MS": "500", "BACKFILL_QUIET_PAUSE_SECONDS": "1"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "quiet-period ceiling (1.5 s of pauses this run" in err
    assert "within every 3600 s lookback" in err
    assert resolve_calls(standin) == []
    assert backfill_candidates(db) == todo


def test_backfill_sentry_names(db: Database, standin: StandIn,
                               sentry_transport: SentryCapture) -> None:
    import sentry_sdk

    result = run_backfill(db, standin, quiet_lookback_s=45, quiet_pause_s=2.5)
    sentry_sdk.flush()
    (txn,) = sentry_transport.items("transaction")
    assert txn["transaction"] == "rotation-lml-identity-backfill.run"
    assert txn["contexts"]["trace"]["op"] == "function"
    data = txn["contexts"]["trace"]["data"]
    assert {k: v for k, v in data.items() if k.startswith("rotation_backfill.")} == \
        result.counters.flat("rotation_backfill")
    # The run's settings, as the station's job sets them on its transaction.
    assert {k: v for k, v in data.items() if k.startswith("wxyc.backfill.")} == {
        "wxyc.backfill.dry_run": False, "wxyc.backfill.live_activity_lookback_seconds": 45,
        "wxyc.backfill.live_activity_pause_ms": 2500}


# -- coverage -----------------------------------------------------------------------------
def test_coverage_gate_and_warm_ages(db: Database, standin: StandIn) -> None:
    proc = cli(db, None, "rotation", "coverage", "--json", "--strict")
    out, err = proc.communicate(timeout=120)
    before = json.loads(out)
    assert proc.returncode == 1, err  # ~90% before the backfill: below the 99% gate
    assert "below the 99% gate" in err
    assert before["gate_passes"] is False and before["resolvable_coverage_pct"] < 99
    assert before["never_warmed"] == before["identities"] and before["oldest_last_warm"] is None

    run_backfill(db, standin)
    c = run_refresh(db, standin).counters
    proc = cli(db, None, "rotation", "coverage", "--json", "--strict")
    out, err = proc.communicate(timeout=120)
    after = json.loads(out)
    assert proc.returncode == 0, err
    assert after["resolvable_coverage_pct"] == 100.0 and after["gate_passes"] is True
    assert after["active_with_lml"] == after["active_with_discogs"]
    assert after["identities"] == c.identities_scanned
    warmed = c.identities_resolved - c.not_found - c.not_implemented
    assert after["never_warmed"] == after["identities"] - warmed
    assert after["oldest_last_warm"] <= after["newest_last_warm"]


# -- the stale-reference alert's remedy ---------------------------------------------------
def _alerts(db: Database) -> list[dict[str, Any]]:
    proc = cli(db, None, "report", "--format", "json")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out)["alerts"]


def test_backfill_stale_handles_clears_the_alert_on_the_demo_sample(
        make_database: Callable[[], Database], standin: StandIn) -> None:
    """The demo's sample rotation holds handles LML no longer knows: the refresh raises
    its alert and names the remedy, which replaces exactly those handles, after which the
    page's alert is gone and the next refresh passes."""
    db = make_database()
    migrate.apply(db)
    with db.connect() as conn:
        seed_library(conn)  # the demo's sample, whole
    refresh_args = ("rotation", "refresh", "--retry-delay", "0", "--requests-per-minute",
                    "6000")
    proc = cli(db, standin, *refresh_args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 5, err
    assert "library-identity rotation backfill --stale-handles" in out + err
    stale = {r[0]: r[1] for r in rows(db, """
        select r.id, r.lml_identity_id from wxyc_schema.rotation r
        where (r.kill_date is null or r.kill_date > current_date)
          and r.lml_identity_id in (select identity_id
                                    from identity_loader.rotation_refresh_results
                                    where status = 'not_found')""")}
    assert stale
    assert all(standin_refresh.forgotten(identity_id) for identity_id in stale.values())
    [alert] = [a for a in _alerts(db) if a["alert"] == "stale_rotation_handles"]
    assert alert["subject_rows"] == len(stale)
    before = dict(rows(db, "select id, lml_identity_id from wxyc_schema.rotation"))

    proc = cli(db, standin, "rotation", "backfill", "--stale-handles", "--quiet-lookback", "0",
               "--requests-per-minute", "6000", "--json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert json.loads(out)["counters"]["resolved"] == len(stale)
    after = dict(rows(db, "select id, lml_identity_id from wxyc_schema.rotation"))
    changed = {rid for rid in after if after[rid] != before[rid]}
    assert changed == set(stale)  # only the stale handles, each replaced
    assert not any(standin_refresh.forgotten(after[rid]) for rid in changed)
    assert [a for a in _alerts(db) if a["alert"] == "stale_rotation_handles"] == []
    proc = cli(db, standin, *refresh_args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
