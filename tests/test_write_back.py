"""The merge's write-back against a database that behaves like the station's: the
catalogue watermark and change-notification triggers installed, other writers' rows
present. Real Postgres, real dbt, the LML stand-in over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import sentry_sdk
from conftest import CLI, ROOT, SENTRY_TEST_DSN, STANDIN_KEY, SentryCapture

from library_identity import dbt_names
from library_identity.db import Database
from library_identity.dbt import run_dbt
from library_identity.demo.standin.server import StandIn
from library_identity.lml.client import LMLClient
from library_identity.resolve.merge import merge, pending_verdicts
from library_identity.resolve.resolve_job import ResolveOptions, ResolveResult, resolve
from library_identity.telemetry import init_sentry

N_ROWS = 1200
NOTES = "library-identity:lml-bulk"
STATION_TABLES = {
    "library": "id",
    "library_identity": "library_id",
    "library_identity_source": "library_id, source",
    "library_identity_history": "history_id",
    "compilation_track_artist": "id",
    "library_watermark": "id",
}


def execute(db: Database, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        cur = conn.execute(query, params)
        rows = cur.fetchall() if cur.description else []
        conn.commit()
    return rows


def resolve_once(db: Database, standin: StandIn, **options: Any) -> ResolveResult:
    with LMLClient(base_url=standin.url, api_key=STANDIN_KEY, backoff_initial_s=0.01,
                   backoff_max_s=0.05) as client:
        return resolve(db, client, ResolveOptions(**options))


def table_rows(db: Database, table: str, *, versions: bool = False) -> list[Any]:
    """Every row of a station table (as JSON text), with its row version (xmin, which
    changes whenever the row is rewritten, even with equal values) when asked."""
    key = STATION_TABLES[table]
    extra = ", t.xmin::text" if versions else ""
    return execute(db, f"select row_to_json(t)::text{extra} from wxyc_schema.{table} t "
                       f"order by {key}")


def station_state(db: Database, *, versions: bool = False) -> dict[str, list[Any]]:
    return {table: table_rows(db, table, versions=versions) for table in STATION_TABLES}


def watermark(db: Database) -> Any:
    return execute(db, "select last_modified_at from wxyc_schema.library_watermark")[0][0]


@pytest.fixture
def notifications(db: Database) -> Iterator[Callable[[], Counter[str]]]:
    """Change notifications sent while the test runs, counted per table."""
    received: list[str] = []
    stop = threading.Event()
    conn = psycopg.connect(db.conninfo, autocommit=True)
    # The station's public.cdc_notify() channels: one per row, or a short note for a row
    # too large to carry.
    conn.execute("listen cdc")
    conn.execute("listen cdc_oversized")

    def listen() -> None:
        while not stop.is_set():
            for note in conn.notifies(timeout=0.2):
                received.append(note.payload)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()

    def counts() -> Counter[str]:
        # Notifications are delivered at commit; give the listener a moment to drain.
        stop.wait(0.6)
        return Counter(json.loads(payload)["table"] for payload in received)

    yield counts
    stop.set()
    thread.join()
    conn.close()


def age(db: Database, days: int) -> None:
    """Move every recorded time `days` into the past, as if that much time had passed."""
    shift = f"interval '{days} days'"
    for statement in (
        f"update identity_loader.raw_verdicts set attempted_at = attempted_at - {shift}",
        f"update wxyc_schema.library_identity set last_verified_at = last_verified_at - {shift}",
        f"update wxyc_schema.library_identity_source "
        f"set last_verified_at = last_verified_at - {shift}",
        f"update wxyc_schema.library set unresolved_attempted_at = unresolved_attempted_at "
        f"- {shift} where unresolved_attempted_at is not null",
        f"update {dbt_names.qualified('int_verdicts__latest')} "
        f"set latest_attempted_at = latest_attempted_at "
        f"- {shift}, last_resolved_verdict_at = last_resolved_verdict_at - {shift}",
        f"update identity_loader.library_identity_artist_ids "
        f"set last_verified_at = last_verified_at - {shift}",
    ):
        execute(db, statement)


def test_merges_leave_the_watermark_alone_and_notify_only_changed_rows(
        db: Database, standin: StandIn, notifications: Callable[[], Counter[str]]) -> None:
    before = watermark(db)
    first = resolve_once(db, standin)
    assert first.status == "succeeded", first.merge
    assert first.merge is not None and first.merge.success
    counts = first.merge.counts
    assert counts["identity_rows_written"] > 0
    assert counts["compilation_track_rows_written"] > 0  # the merge linked tracks
    assert counts["library_rows_stamped"] > 0
    # Identity writes never advance the catalogue watermark.
    assert watermark(db) == before
    seen = notifications()
    assert seen["compilation_track_artist"] == counts["compilation_track_rows_written"]
    assert seen["library"] == counts["library_rows_stamped"]

    # A merge with nothing new, and a replay of the whole log, change nothing at all.
    state = station_state(db, versions=True)
    assert pending_verdicts(db) == 0
    assert merge(db, {}).success
    replay = merge(db, {}, full_rebuild=True)
    assert replay.success, replay.failures
    assert replay.counts["identity_rows_written"] == 0
    assert replay.counts["compilation_track_rows_written"] == 0
    assert station_state(db, versions=True) == state
    assert notifications() == seen

    # A week later every row is due again: the stamps move on, but the compilation
    # links it meets again are unchanged and not rewritten.
    age(db, 8)
    seen = notifications()  # the ageing itself rewrote stamps
    second = resolve_once(db, standin)
    assert second.status == "succeeded" and second.merge is not None
    assert second.merge.counts["compilation_track_rows_written"] == 0
    assert second.merge.counts["compilation_track_rows_skipped_unchanged"] > 0
    after = notifications()
    assert after["compilation_track_artist"] == seen["compilation_track_artist"]
    assert after["library"] - seen["library"] == second.merge.counts["library_rows_stamped"]
    assert watermark(db) == before


def test_a_failing_write_changes_no_station_table_and_a_rerun_completes(
        db: Database, standin: StandIn) -> None:
    # The station rejects one kind of source row: the whole write-back must roll back.
    execute(db, "alter table wxyc_schema.library_identity_source add constraint "
                "no_bandcamp check (source <> 'bandcamp')")
    state = station_state(db, versions=True)

    result = resolve_once(db, standin)
    assert result.status == "failed"
    assert result.merge is not None and not result.merge.success
    assert any("write_back" in f and "no_bandcamp" in f for f in result.merge.failures)
    assert station_state(db, versions=True) == state
    assert execute(db, "select count(*) from identity_loader.merges") == [(0,)]
    status, error = execute(db, "select status, error from identity_loader.runs")[0]
    assert status == "failed" and error.startswith("write_back:")

    execute(db, "alter table wxyc_schema.library_identity_source drop constraint no_bandcamp")
    rerun = merge(db, {})
    assert rerun.success, rerun.failures
    assert rerun.counts["identity_rows_written"] == result.counters.total.rows_resolved - sum(
        n for reason, n in rerun.skips.items()
        if reason in ("verdict.out_of_band", "verdict.no_usable_provenance",
                      "verdict.unknown_method"))
    assert execute(db, "select count(*) from wxyc_schema.library_identity_source "
                       "where source = 'bandcamp'")[0][0] > 0


def test_other_writers_rows_survive_and_are_counted(db: Database, standin: StandIn) -> None:
    library_ids = [r[0] for r in execute(
        db, "select id from wxyc_schema.library where artist_name is not null "
            "and code_volume_letters is null order by id limit 60")]
    theirs, taken_over, release_rows = library_ids[:10], library_ids[10:20], library_ids[20:60]
    for library_id in theirs:
        execute(db, "insert into wxyc_schema.library_identity (library_id, last_verified_at, "
                    "method, confidence, wikidata_qid, notes) values (%s, now() - interval "
                    "'30 days', 'manual', 1, 'Q-librarian', 'librarian override')", library_id)
        execute(db, "insert into wxyc_schema.library_identity_source values "
                    "(%s, 'discogs', 'd-librarian', 'manual', 1, now() - interval '30 days', "
                    "null, 'librarian override')", library_id)
    for library_id in taken_over:
        execute(db, "insert into wxyc_schema.library_identity (library_id, last_verified_at, "
                    "method, confidence, notes) values (%s, now() - interval '30 days', "
                    "'trigram', 0.7, 'consumer:lml-bulk')", library_id)
    for library_id in release_rows:
        execute(db, "insert into wxyc_schema.library_identity_source values (%s, "
                    "'discogs_release', %s, 'exact_match', 1, now() - interval '30 days', null, "
                    "'release-writer')", library_id, str(library_id * 7))
    # An old compilation identity row without sources: an anomaly the project never wrote.
    va_id = execute(db, "select id from wxyc_schema.library where code_volume_letters "
                        "like 'Z%%' order by id limit 1")[0][0]
    execute(db, "insert into wxyc_schema.library_identity (library_id, last_verified_at, "
                "method, confidence, notes) values (%s, now() - interval '400 days', "
                "'manual', 1, 'legacy import')", va_id)
    others = execute(db, "select row_to_json(t)::text, xmin::text from "
                         "wxyc_schema.library_identity_source t where notes <> %s "
                         "order by library_id, source", NOTES)
    their_identity = execute(db, "select row_to_json(t)::text, xmin::text from "
                                 "wxyc_schema.library_identity t where notes not in "
                                 "('consumer:lml-bulk', %s) order by library_id", NOTES)

    result = resolve_once(db, standin)
    assert result.status == "succeeded", result.merge
    assert result.merge is not None
    # Nothing of theirs was deleted or rewritten.
    assert execute(db, "select row_to_json(t)::text, xmin::text from "
                       "wxyc_schema.library_identity_source t where notes <> %s "
                       "order by library_id, source", NOTES) == others
    assert execute(db, "select row_to_json(t)::text, xmin::text from "
                       "wxyc_schema.library_identity t where notes not in "
                       "('consumer:lml-bulk', %s) order by library_id", NOTES) == their_identity
    resolved_theirs = execute(
        db, "select count(distinct library_id) from identity_loader.raw_verdicts "
            "where kind = 'single_artist' and library_id = any(%s)", theirs)[0][0]
    assert resolved_theirs > 0
    assert result.merge.skips["verdict.other_writer"] == resolved_theirs
    # The station consumer's rows are the project's to take over: every one that got a
    # mergeable verdict now carries the project's notes.
    written = execute(db, "select count(*) from identity_loader.raw_verdicts v where "
                          "v.kind = 'single_artist' and v.library_id = any(%s) and not exists "
                          "(select 1 from identity_loader.merge_skips s where s.verdict_id = "
                          "v.verdict_id and s.skip_level = 'verdict')", taken_over)[0][0]
    assert written > 0
    assert execute(db, "select count(*) from wxyc_schema.library_identity where "
                       "library_id = any(%s) and notes = %s", taken_over, NOTES) == [(written,)]
    # The pre-existing anomaly is a warning in the gates, never a failed run.
    assert result.status == "succeeded"


def test_incremental_merges_equal_a_rebuild_from_the_log(
        db: Database, standin: StandIn, template: Database,
        clone_database: Callable[[Database], Database]) -> None:
    for day, drift in enumerate((0, 1, 2)):
        standin.config.drift = drift
        result = resolve_once(db, standin)
        assert result.status == "succeeded", result.merge
        if day < 2:
            age(db, 8)
    history = execute(db, "select count(*) from wxyc_schema.library_identity_history")[0][0]
    assert history > 0  # drift changed ids between runs
    incremental = station_state(db, versions=True)

    replay = merge(db, {}, full_rebuild=True)
    assert replay.success, replay.failures
    assert station_state(db, versions=True) == incremental

    # Another copy of the library that lands the same log and merges it once ends with
    # the same identities, sources, links and stamps. History differs by design (one
    # merge sees only the last supersession), and so may artist-level ids that a later
    # verdict lacks: a missing id never wipes one an earlier merge stored.
    other = clone_database(template)
    with db.connect() as source, other.connect() as target:
        runs_rows = source.execute("select run_id, job, mode, started_at, finished_at, "
                                   "status from identity_loader.runs").fetchall()
        with target.cursor() as cur:
            cur.executemany("insert into identity_loader.runs (run_id, job, mode, started_at, "
                            "finished_at, status) values (%s, %s, %s, %s, %s, %s)", runs_rows)
        copy_out = source.execute(
            "select run_id, library_id, attempted_at, cohort, kind, method, confidence, "
            "discogs_artist_id, musicbrainz_artist_id, wikidata_qid, spotify_artist_id, "
            "apple_music_artist_id, bandcamp_id, tracks_contract_version, tracks_attempted, "
            "track_count, request, result from identity_loader.raw_verdicts "
            "order by verdict_id").fetchall()
        with target.cursor() as cur:
            cur.executemany(
                "insert into identity_loader.raw_verdicts (run_id, library_id, attempted_at, "
                "cohort, kind, method, confidence, discogs_artist_id, musicbrainz_artist_id, "
                "wikidata_qid, spotify_artist_id, apple_music_artist_id, bandcamp_id, "
                "tracks_contract_version, tracks_attempted, track_count, request, result) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s::jsonb, %s::jsonb)",
                [(*row[:16], psycopg.types.json.Jsonb(row[16]), psycopg.types.json.Jsonb(row[17]))
                 for row in copy_out])
        target.commit()
    once = merge(other, {})
    assert once.success, once.failures
    mine, theirs = station_state(db), station_state(other)
    for table in ("library", "library_identity_source", "compilation_track_artist"):
        assert theirs[table] == mine[table], table
    identity = ("select library_id, last_verified_at, method, confidence, agreement_sources, "
                "notes from wxyc_schema.library_identity order by library_id")
    assert execute(other, identity) == execute(db, identity)


def test_the_gates_stop_a_change_set_the_station_must_not_get(db: Database,
                                                              standin: StandIn) -> None:
    with LMLClient(base_url=standin.url, api_key=STANDIN_KEY) as client:
        landed = resolve(db, client, ResolveOptions(), merge=False)
    assert landed.status == "succeeded"
    built = run_dbt(db, ["run", "--selector", "merge_with_inputs"])
    assert built.success, built.failures
    assert run_dbt(db, ["test", "--selector", "merge"]).success

    # A change set the station must not get: a repeated key and an out-of-band value.
    identities = dbt_names.qualified("wb_library_identity")
    links = dbt_names.qualified("wb_compilation_track_artist")
    execute(db, f"insert into {identities} select * from {identities} "
                "order by library_id limit 1")
    execute(db, f"update {identities} set confidence = 0.5 "
                f"where library_id = (select max(library_id) from {identities})")
    execute(db, f"insert into {links} (id, track_artist_link_method) "
                "values (-1, 'librarian')")
    checked = run_dbt(db, ["test", "--selector", "merge"])
    assert not checked.success
    failed = " ".join(checked.failures)
    assert "library_identity_rows" in failed and "other_change_sets" in failed
    problems = execute(db, f"select count(*) from {identities}")
    assert problems[0][0] > 0


COMPILATION_COUNTERS = (
    "compilation_track_rows_written", "compilation_track_rows_skipped_unchanged",
    "compilation_track_rows_skipped_librarian", "compilation_track_rows_skipped_no_cta_match",
    "compilation_track_rows_skipped_no_catalog_artist", "compilation_track_position_rows_written",
    "compilation_track_position_rows_skipped_ambiguous")
CTA_COLUMNS = ("id", "library_id", "artist_name", "track_title", "track_position",
               "track_artist_id", "track_artist_link_confidence", "track_artist_link_method")


def credit_rows(db: Database) -> dict[int, dict[str, Any]]:
    return {row[0]: dict(zip(CTA_COLUMNS, row, strict=True)) for row in execute(
        db, f"select {', '.join(CTA_COLUMNS)} from wxyc_schema.compilation_track_artist")}


def expected_compilation_counters(db: Database, before: dict[int, dict[str, Any]]
                                  ) -> dict[str, int]:
    """The counters worked out from what LML answered (the verdict log) and the credit
    rows before and after the run, as the station's consumer defines them."""
    after = credit_rows(db)
    by_key = {(r["library_id"], r["artist_name"], r["track_title"]): r for r in before.values()}
    counters = dict.fromkeys(COMPILATION_COUNTERS, 0)
    offered = 0
    for library_id, result in execute(
            db, "select library_id, result from identity_loader.raw_verdicts "
                "where kind = 'compilation' and tracks_contract_version = 1"):
        entries: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for track in result.get("tracks") or []:
            if track["resolved_artist_name"] is not None and track["artist_name"] is not None:
                key = (library_id, track["artist_name"], track["track_title"])
                entries.setdefault(key, []).append(track)
        for key, tracks in entries.items():
            credit = by_key.get(key)
            if credit is None:
                counters["compilation_track_rows_skipped_no_cta_match"] += 1
            elif credit["track_artist_link_method"] == "librarian":
                counters["compilation_track_rows_skipped_librarian"] += 1
            else:
                offered += 1
                positions = {t["track_position"] for t in tracks} - {None}
                if credit["track_position"] is None and len(positions) > 1:
                    counters["compilation_track_position_rows_skipped_ambiguous"] += 1
    changed = [row_id for row_id, row in after.items() if row != before[row_id]]
    counters["compilation_track_rows_written"] = len(changed)
    counters["compilation_track_rows_skipped_unchanged"] = offered - len(changed)
    counters["compilation_track_rows_skipped_no_catalog_artist"] = sum(
        1 for row_id in changed if after[row_id]["track_artist_id"] is None)
    counters["compilation_track_position_rows_written"] = sum(
        1 for row_id in changed
        if before[row_id]["track_position"] is None and after[row_id]["track_position"])
    # On a first run every offered credit row is new to LML's links: all are written.
    assert counters["compilation_track_rows_skipped_unchanged"] == 0
    return counters


def diverge_credits(db: Database) -> None:
    """The credit rows of three in five compilations were retitled since LML saw them:
    their track keys match no credit row, the station's sign of a diverged echo. Another
    one in five lost its positions, which LML offers again."""
    execute(db, "update wxyc_schema.compilation_track_artist "
                "set track_title = track_title || ' (remastered)' where library_id %% 5 < 3")
    execute(db, "update wxyc_schema.compilation_track_artist "
                "set track_position = null where library_id %% 5 = 3")


def test_compilation_counters_in_the_run_record_json_log_and_report(
        db: Database, standin: StandIn) -> None:
    diverge_credits(db)
    before = credit_rows(db)
    env = {**os.environ, "DATABASE_URL": db.conninfo, "LML_URL": standin.url,
           "LML_API_KEY": STANDIN_KEY}
    out = subprocess.run([*CLI, "--log-format", "json", "resolve",
                          "--json", "--no-progress"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    expected = expected_compilation_counters(db, before)
    assert expected["compilation_track_rows_written"] > 0
    assert expected["compilation_track_rows_skipped_librarian"] > 0
    assert expected["compilation_track_rows_skipped_no_catalog_artist"] > 0
    assert expected["compilation_track_position_rows_written"] > 0
    missed = expected["compilation_track_rows_skipped_no_cta_match"]

    summary = json.loads(out.stdout)
    counts = summary["merge"]["counts"]
    assert {k: counts[k] for k in COMPILATION_COUNTERS} == expected
    keys = counts["compilation_track_keys"]
    assert missed >= 10 and 2 * missed >= keys
    assert f"compilation_cta_match_gap: {missed} of {keys} track keys match no credit row" in \
        summary["merge"]["warnings"]
    logged = [json.loads(line)["message"] for line in out.stderr.splitlines()
              if line.startswith("{")]
    assert [m for m in logged if m.startswith("compilation_cta_match_gap ")] == [
        f"compilation_cta_match_gap merge_id={summary['merge']['merge_id']} "
        f"run_id={summary['run_id']} track_keys={keys} no_cta_match={missed}"]

    (stored,) = execute(db, "select counters -> 'merge' from identity_loader.runs")[0]
    assert {k: stored[k] for k in COMPILATION_COUNTERS} == expected

    report = subprocess.run([*CLI, "report", "--format", "json",
                             "--section", "run_history"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    (run,) = json.loads(report.stdout)["run_history"]
    assert {k: run[k] for k in COMPILATION_COUNTERS} == expected


def test_compilation_counters_and_the_match_gap_in_sentry(
        db: Database, standin: StandIn, sentry_transport: SentryCapture) -> None:
    diverge_credits(db)
    before = credit_rows(db)
    result = resolve_once(db, standin)
    assert result.status == "succeeded" and result.merge is not None
    sentry_sdk.flush()
    expected = expected_compilation_counters(db, before)
    (txn,) = sentry_transport.items("transaction")
    assert txn["transaction"] == "library-identity-consumer.run"
    data = txn["contexts"]["trace"]["data"]
    # The station's counter names under the merge's own prefix (one merge per run).
    assert {k: data[f"consumer.merge.{k}"] for k in COMPILATION_COUNTERS} == expected
    assert data["consumer.merge.identity_rows_written"] == result.merge.counts[
        "identity_rows_written"] > 0
    assert [s["description"] for s in txn["spans"] if s["op"] == "job.merge"] == ["merge"]
    gaps = [e for e in sentry_transport.items("event")
            if e.get("tags", {}).get("step") == "compilation_cta_match_gap"]
    assert len(gaps) == 1
    assert gaps[0]["tags"]["run_id"] == str(result.run_id)
    assert gaps[0]["level"] == "warning"
    assert gaps[0]["extra"]["compilation_track_rows_skipped_no_cta_match"] == expected[
        "compilation_track_rows_skipped_no_cta_match"]

    # The project's own naming puts the same counts under resolve.merge.
    init_sentry(SENTRY_TEST_DSN, transport=sentry_transport, naming="library-identity")
    age(db, 8)
    second = resolve_once(db, standin)
    assert second.merge is not None and second.merge.success
    sentry_sdk.flush()
    data = sentry_transport.items("transaction")[-1]["contexts"]["trace"]["data"]
    assert {k: data[f"resolve.merge.{k}"] for k in COMPILATION_COUNTERS} == {
        k: second.merge.counts[k] for k in COMPILATION_COUNTERS}
    assert data["resolve.merge.compilation_track_rows_skipped_unchanged"] > 0
    assert not [k for k in data if k.startswith("consumer.")]


def test_change_sets_built_before_another_merge_are_refused(db: Database,
                                                             standin: StandIn) -> None:
    with LMLClient(base_url=standin.url, api_key=STANDIN_KEY) as client:
        landed = resolve(db, client, ResolveOptions(), merge=False)
    assert landed.status == "succeeded"
    assert run_dbt(db, ["run", "--selector", "merge_with_inputs"]).success
    state = station_state(db, versions=True)
    # Another merge is applied after these change sets were built.
    execute(db, "insert into identity_loader.merges (from_verdict_id, through_verdict_id) "
                "select 1, max(verdict_id) + 1 from identity_loader.raw_verdicts")
    applied = run_dbt(db, ["run-operation", "apply_write_back"])
    assert not applied.success
    assert "built before the last applied merge" in " ".join(applied.failures)
    assert station_state(db, versions=True) == state
