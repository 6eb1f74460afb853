"""The dbt half against a real Postgres: candidate modes, the merge into the station's
identity tables, its idempotency and the gates. Verdicts are hand-made rows in the raw
verdict log, exactly as the loader lands them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from library_identity import dbt_names, paths
from library_identity.db import Database
from library_identity.dbt import DbtOutcome, run_dbt
from library_identity.resolve.merge import MergeOutcome
from library_identity.resolve.merge import merge as write_back_merge

CANDIDATES = ["run", "--selector", "candidates"]

# --------------------------------------------------------------------------- helpers


def dbt(db: Database, args: list[str], dbt_vars: Mapping[str, Any] | None = None) -> DbtOutcome:
    outcome = run_dbt(db, args, dbt_vars)
    assert outcome.success, "\n".join(outcome.failures)
    return outcome


def merge(db: Database, dbt_vars: Mapping[str, Any] | None = None) -> MergeOutcome:
    """The merge as the loader runs it: change sets and gates, then the write-back."""
    outcome = write_back_merge(db, dbt_vars or {})
    assert outcome.success, "\n".join(outcome.failures)
    return outcome


def execute(db: Database, query: str, params: Iterable[Any] = ()) -> list[tuple]:
    with db.connect() as conn:
        cur = conn.execute(query, tuple(params))
        rows = cur.fetchall() if cur.description else []
        conn.commit()
    return rows


def add_artist(db: Database, name: str, code_letters: str = "RO") -> int:
    return execute(
        db,
        "insert into wxyc_schema.artists (artist_name, alphabetical_name, code_letters)"
        " values (%s, %s, %s) returning id",
        (name, name, code_letters),
    )[0][0]


def add_library(
    db: Database,
    library_id: int,
    artist_name: str | None,
    *,
    artist_id: int | None = None,
    canonical: str | None = None,
    volume: str | None = None,
    unresolved_days_ago: float | None = None,
) -> int:
    if artist_id is None:
        artist_id = add_artist(db, artist_name or "Unnamed")
    execute(
        db,
        """
        insert into wxyc_schema.library (id, artist_id, genre_id, format_id, album_title,
            artist_name, code_number, code_volume_letters, canonical_entity_id,
            unresolved_attempted_at)
        values (%s, %s, 1, 1, %s, %s, 1, %s, %s,
            case when %s::float8 is null then null
                 else now() - make_interval(secs => %s::float8 * 86400) end)""",
        (
            library_id,
            artist_id,
            f"Album {library_id}",
            artist_name,
            volume,
            canonical,
            unresolved_days_ago,
            unresolved_days_ago,
        ),
    )
    return library_id


def add_credit(
    db: Database,
    library_id: int,
    artist_name: str,
    track_title: str | None,
    *,
    position: str | None = None,
    track_artist_id: int | None = None,
    confidence: float | None = None,
    method: str | None = None,
) -> int:
    return execute(
        db,
        """
        insert into wxyc_schema.compilation_track_artist (library_id, artist_name, track_title,
            track_position, track_artist_id, track_artist_link_confidence, track_artist_link_method)
        values (%s, %s, %s, %s, %s, %s, %s) returning id""",
        (library_id, artist_name, track_title, position, track_artist_id, confidence, method),
    )[0][0]


def new_run(db: Database) -> str:
    run_id = str(uuid.uuid4())
    execute(
        db,
        "insert into identity_loader.runs (run_id, job, mode) values (%s, 'resolve', 'full')",
        (run_id,),
    )
    return run_id


MAIN_KEYS = (
    "discogs_artist_id",
    "musicbrainz_artist_id",
    "wikidata_qid",
    "spotify_artist_id",
    "apple_music_artist_id",
    "bandcamp_id",
)


def entry(
    source: str,
    external_id: str | None,
    confidence: float | None = 1.0,
    method: str = "exact_match",
) -> dict[str, Any]:
    return {
        "source": source,
        "method": method,
        "confidence": confidence,
        "external_id": external_id,
    }


def land(
    db: Database,
    run_id: str,
    library_id: int,
    kind: str,
    *,
    method: str | None = None,
    confidence: float | None = None,
    main: Mapping[str, Any] | None = None,
    provenance: list[dict[str, Any]] | None = None,
    tracks: list[dict[str, Any]] | None = None,
    tracks_attempted: bool | None = None,
    tracks_contract_version: int | None = 1,
    days_ago: float = 0.0,
    cohort: str = "non_va",
) -> int:
    """Land one verdict the way the loader does (full BulkResolveResult in `result`)."""
    full_main = (
        {key: None for key in MAIN_KEYS} | dict(main or {}) if kind == "single_artist" else None
    )
    result = {
        "kind": kind,
        "library_id": library_id,
        "main": full_main,
        "method": method,
        "confidence": confidence,
        "provenance": provenance or [],
        "tracks_attempted": tracks_attempted,
        "tracks": tracks,
    }
    m = full_main or {}
    return execute(
        db,
        """
        insert into identity_loader.raw_verdicts (run_id, library_id, attempted_at, cohort, kind,
            method, confidence, discogs_artist_id, musicbrainz_artist_id, wikidata_qid,
            spotify_artist_id, apple_music_artist_id, bandcamp_id, tracks_contract_version,
            tracks_attempted, track_count, request, result)
        values (%s, %s, now() - make_interval(secs => %s * 86400), %s, %s, %s, %s, %s, %s, %s,
            %s, %s, %s, %s, %s, %s, %s, %s)
        returning verdict_id""",
        (
            run_id,
            library_id,
            days_ago,
            cohort,
            kind,
            method,
            confidence,
            m.get("discogs_artist_id"),
            m.get("musicbrainz_artist_id"),
            m.get("wikidata_qid"),
            m.get("spotify_artist_id"),
            m.get("apple_music_artist_id"),
            m.get("bandcamp_id"),
            tracks_contract_version,
            tracks_attempted,
            len(tracks or []),
            json.dumps({"library_id": library_id}),
            json.dumps(result),
        ),
    )[0][0]


def track(
    artist_name: str,
    track_title: str | None,
    resolved: str | None,
    *,
    position: str | None = None,
    confidence: float | None = 0.9,
) -> dict[str, Any]:
    return {
        "track_position": position,
        "artist_name": artist_name,
        "track_title": track_title,
        "resolved_artist_name": resolved,
        "confidence": confidence,
        "method": "name_variation",
        "sources": [],
    }


def candidates(db: Database) -> dict[int, tuple[str, str]]:
    rows = execute(
        db, f"select library_id, cohort, reason from {dbt_names.qualified('library_candidates')}"
    )
    return {library_id: (cohort, reason) for library_id, cohort, reason in rows}


def row_versions(db: Database, table: str, key: str) -> dict[Any, str]:
    """xmin per row: it changes whenever a row is rewritten, even with equal values."""
    return dict(execute(db, f"select {key}, xmin::text from {table} order by 1"))


def station_snapshot(db: Database) -> dict[str, Any]:
    return {
        "library": row_versions(db, "wxyc_schema.library", "id"),
        "identity": row_versions(db, "wxyc_schema.library_identity", "library_id"),
        "sources": row_versions(
            db, "wxyc_schema.library_identity_source", "library_id::text || '/' || source"
        ),
        "history": row_versions(db, "wxyc_schema.library_identity_history", "history_id"),
        "credits": row_versions(db, "wxyc_schema.compilation_track_artist", "id"),
        "artist_ids": row_versions(db, "identity_loader.library_identity_artist_ids", "library_id"),
        "history_links": row_versions(db, "identity_loader.merge_history", "history_id"),
    }


def skips(db: Database, run_id: str) -> dict[tuple[str, str], int]:
    rows = execute(
        db,
        """select skip_level, reason, count(*) from identity_loader.merge_skips
                          where run_id = %s group by 1, 2""",
        (run_id,),
    )
    return {(level, reason): count for level, reason, count in rows}


def age_everything(db: Database, days: float) -> None:
    """Move every recorded time `days` into the past, as if that much time had passed."""
    shift = "make_interval(secs => %s * 86400)"
    execute(
        db,
        f"update identity_loader.raw_verdicts set attempted_at = attempted_at - {shift}",
        (days,),
    )
    execute(
        db,
        f"update wxyc_schema.library_identity set last_verified_at = last_verified_at - {shift}",
        (days,),
    )
    execute(
        db,
        f"""update wxyc_schema.library set unresolved_attempted_at =
                    unresolved_attempted_at - {shift} where unresolved_attempted_at is not null""",
        (days,),
    )
    # The merge's own state moves with them.
    execute(
        db,
        f"""update {dbt_names.qualified("int_verdicts__latest")}
                set latest_attempted_at = latest_attempted_at - {shift},
                    last_resolved_verdict_at = last_resolved_verdict_at - {shift}""",
        (days, days),
    )
    execute(
        db,
        f"""update identity_loader.library_identity_artist_ids
                set last_verified_at = last_verified_at - {shift}""",
        (days,),
    )


# --------------------------------------------------------------------------- tests


def test_build_passes_on_an_empty_library_and_runs_the_unit_tests(blank_station: Database) -> None:
    dbt(blank_station, ["build"])
    results = json.loads((paths.dbt_target_dir() / "run_results.json").read_text())
    unit = [r for r in results["results"] if r["unique_id"].startswith("unit_test.")]
    assert len(unit) >= 8
    assert {r["status"] for r in unit} == {"pass"}
    model = dbt_names.qualified
    assert execute(blank_station, f"select count(*) from {model('library_candidates')}") == [(0,)]
    assert execute(blank_station, f"select gate_status from {model('library_identity_gate')}") == [
        ("PASS",)
    ]
    assert execute(
        blank_station,
        f"select active, resolvable_coverage_pct from {model('rotation_coverage')}",
    ) == [(0, None)]


def test_full_mode_lifecycle_merge_and_idempotency(blank_station: Database) -> None:
    db = blank_station
    add_library(db, 1, "Artist One", canonical="discogs:master:1")
    add_library(db, 2, "Artist Two")
    va = add_artist(db, "Various Artists", "V/A")
    add_library(db, 3, "Various Artists", artist_id=va, volume="Z")
    add_library(db, 4, None)  # never sent to LML
    add_library(db, 5, "Artist Five")
    add_library(db, 6, "Artist Six")
    add_library(db, 7, "Soundtrack")
    known = add_artist(db, "Björk")
    add_artist(db, "Twin")
    add_artist(db, "TWIN")  # two folded matches: no link
    credit_known = add_credit(db, 3, "Bjork", "Joga")
    credit_twin = add_credit(db, 3, "Twin", "Pair")
    credit_lib = add_credit(
        db, 3, "Björk", "Hyper", track_artist_id=known, confidence=1.0, method="librarian"
    )
    credit_pos = add_credit(db, 3, "Bjork", None)

    # First run: the whole library with an artist name.
    dbt(db, CANDIDATES)
    assert candidates(db) == {
        1: ("non_va", "never_attempted"),
        2: ("non_va", "never_attempted"),
        3: ("va", "never_attempted"),
        5: ("non_va", "never_attempted"),
        6: ("non_va", "never_attempted"),
        7: ("va", "never_attempted"),
    }

    run = new_run(db)
    land(
        db,
        run,
        1,
        "single_artist",
        method="cross_source_agreement",
        confidence=0.97,
        main={
            "discogs_artist_id": 11,
            "musicbrainz_artist_id": "mb-1",
            "wikidata_qid": "Q1",
            "spotify_artist_id": "sp-1",
            "bandcamp_id": "one",
        },
        provenance=[
            entry("discogs", "11", 0.97, "cross_source_agreement"),
            entry("musicbrainz", "mb-1", 0.96, "cross_source_agreement"),
            entry("spotify", None, None),
            entry("wikidata", "Q1", None),
            entry("bandcamp", "one", 1.0),
            entry("bandcamp", "uno", 0.8),
        ],
    )
    land(
        db,
        run,
        3,
        "compilation",
        tracks_attempted=True,
        cohort="va",
        tracks=[
            track("Bjork", "Joga", "Björk", position="A1", confidence=0.95),
            track("Twin", "Pair", "Twin", position="A2"),
            track("Björk", "Hyper", "Björk", confidence=0.5),
            track("Bjork", None, "Björk", position="B1"),
            track("Bjork", None, "Björk", position="B2"),
            track("Nobody", "Missing", "Nobody"),
            track("Failed", "Leg", None),
        ],
    )
    land(db, run, 5, "unresolved")
    land(
        db,
        run,
        6,
        "single_artist",
        method="name_variation",
        confidence=0.5,
        main={"wikidata_qid": "Q6"},
        provenance=[entry("discogs", "66", 0.5)],
    )
    land(db, run, 7, "compilation", tracks_attempted=False, tracks=[], cohort="va")

    merge(db)
    identity = execute(
        db,
        """select library_id, wikidata_qid, spotify_id, method, confidence,
                                     agreement_sources, notes, last_verified_at = (
                                         select attempted_at from identity_loader.raw_verdicts v
                                         where v.library_id = 1)
                              from wxyc_schema.library_identity""",
    )
    assert identity == [
        (
            1,
            "Q1",
            "sp-1",
            "cross_source_agreement",
            pytest.approx(0.97),
            "bandcamp,discogs,musicbrainz",
            "library-identity:lml-bulk",
            True,
        )
    ]
    assert execute(
        db,
        """select source, external_id, boost_sources from wxyc_schema.library_identity_source
                          order by source""",
    ) == [
        ("bandcamp", "one", None),
        ("discogs", "11", "bandcamp,discogs,musicbrainz"),
        ("musicbrainz", "mb-1", "bandcamp,discogs,musicbrainz"),
    ]
    assert execute(
        db,
        """select library_id, discogs_artist_id, musicbrainz_artist_id, bandcamp_id
                          from identity_loader.library_identity_artist_ids""",
    ) == [(1, 11, "mb-1", "one")]
    assert skips(db, run) == {
        ("verdict", "out_of_band"): 1,
        ("verdict", "tracks_not_attempted"): 1,
        ("provenance", "null_external_id"): 1,
        ("provenance", "null_confidence"): 1,
        ("provenance", "duplicate_source"): 1,
        ("track", "no_catalog_artist"): 1,
        ("track", "no_cta_match"): 1,
        ("track", "librarian"): 1,
        ("track", "position_ambiguous"): 1,
    }

    credits = {
        row[0]: row[1:]
        for row in execute(
            db,
            """
        select id, track_artist_id, track_artist_link_confidence, track_artist_link_method,
               track_position from wxyc_schema.compilation_track_artist""",
        )
    }
    assert credits[credit_known] == (known, pytest.approx(0.95), "lml_backfill", "A1")
    assert credits[credit_twin] == (None, pytest.approx(0.9), "lml_backfill", "A2")
    assert credits[credit_lib] == (known, 1.0, "librarian", None)
    assert credits[credit_pos] == (known, pytest.approx(0.9), "lml_backfill", None)  # ambiguous

    # The station's no-match stamp follows the log for every row whose latest verdict is
    # not an artist identity (no match, or a compilation); resolved rows are left alone.
    stamps = dict(
        execute(
            db,
            """select l.id, l.unresolved_attempted_at = v.attempted_at
                                 from wxyc_schema.library l
                                 join identity_loader.raw_verdicts v on v.library_id = l.id""",
        )
    )
    assert stamps == {1: None, 3: True, 5: True, 6: None, 7: True}

    # The station's identity gate counts as its script does: every row under 0.70, the
    # compilation (3) included.
    dbt(db, ["run", "--select", "+library_identity_gate", "--exclude",
             "config.materialized:incremental"])
    assert execute(
        db,
        f"""select total_library_rows, compilation_rows, unresolved_rows,
                   fallback_resolved_rows, truly_unresolved_rows
            from {dbt_names.qualified('library_identity_gate')}""",
    ) == [(7, 1, 6, 0, 6)]

    # Idempotent: a second merge rewrites no row anywhere.
    before = station_snapshot(db)
    merge(db)
    assert station_snapshot(db) == before

    # Next run: only what is due. Nothing yet (all fresh) but the never-attempted row.
    dbt(db, CANDIDATES)
    assert candidates(db) == {2: ("non_va", "never_attempted")}

    # Eight days later: stale resolved rows, compilations and retry-due unresolved rows.
    age_everything(db, 8)
    dbt(db, CANDIDATES)
    assert candidates(db) == {
        1: ("non_va", "stale_resolved"),
        2: ("non_va", "never_attempted"),
        3: ("va", "stale_resolved"),
        5: ("non_va", "unresolved_retry"),
        6: ("non_va", "stale_resolved"),
        7: ("va", "unresolved_retry"),
    }
    # Wider windows (the retry window is its own setting): nothing is due again yet.
    dbt(db, CANDIDATES, {"stale_days": 9, "unresolved_retry_days": 30})
    assert candidates(db) == {2: ("non_va", "never_attempted")}


def test_legacy_and_recheck_modes(blank_station: Database) -> None:
    db = blank_station
    add_library(db, 1, "Fresh Canon", canonical="discogs:master:1")
    add_library(db, 2, "Stale Canon", canonical="discogs:master:2")
    add_library(db, 3, "No Canon")
    add_library(db, 4, "Canon Never", canonical="discogs:3")
    add_library(db, 5, "VA Recent", canonical="discogs:5", volume="Z", unresolved_days_ago=1)
    add_library(db, 6, "VA Old", canonical="discogs:6", volume="Z", unresolved_days_ago=40)
    add_library(db, 7, "Non-VA Recent", canonical="discogs:7", unresolved_days_ago=1)
    add_library(db, 8, "Unresolved No Canon", unresolved_days_ago=1)
    execute(
        db,
        """insert into wxyc_schema.library_identity (library_id, last_verified_at, method,
                       confidence, notes)
                   values (1, now() - interval '1 day', 'exact_match', 1, 'consumer:lml-bulk'),
                          (2, now() - interval '8 days', 'exact_match', 1, 'consumer:lml-bulk')""",
    )

    dbt(db, CANDIDATES, {"candidate_mode": "legacy", "unresolved_retry_days": 30})
    assert candidates(db) == {
        2: ("non_va", "stale_resolved"),
        4: ("non_va", "never_attempted"),
        6: ("va", "unresolved_retry"),
        7: ("non_va", "unresolved_retry"),
    }
    assert execute(
        db,
        f"select distinct candidate_mode from {dbt_names.qualified('library_candidates')}",
    ) == [("legacy",)]

    # recheck: every unresolved row, whatever its age (here only the station's stamps).
    dbt(db, CANDIDATES, {"candidate_mode": "recheck"})
    assert candidates(db) == {
        5: ("va", "recheck"),
        6: ("va", "recheck"),
        7: ("non_va", "recheck"),
        8: ("non_va", "recheck"),
    }

    outcome = run_dbt(db, CANDIDATES, {"candidate_mode": "sideways"})
    assert not outcome.success
    assert "candidate_mode must be one of full, legacy, recheck" in "\n".join(outcome.failures)
    # The loader refuses 0 days; so does dbt.
    outcome = run_dbt(db, CANDIDATES, {"stale_days": 0})
    assert not outcome.success
    assert "stale_days must be a whole number of days >= 1" in "\n".join(outcome.failures)


def test_merge_never_wipes_ids_records_history_and_reconciles_sources(
    blank_station: Database,
) -> None:
    db = blank_station
    add_library(db, 1, "Changing Artist")
    add_library(db, 2, "Station Artist")
    # A row the old writer left: release-level ids that must survive, older than any verdict.
    execute(
        db,
        """insert into wxyc_schema.library_identity (library_id, discogs_release_id,
                       discogs_master_id, wikidata_qid, last_verified_at, method, confidence, notes)
                   values (2, 555, 77, 'Q2', now() - interval '20 days', 'trigram', 0.75,
                           'consumer:lml-bulk')""",
    )
    execute(
        db,
        """insert into wxyc_schema.library_identity_source values
                   (2, 'spotify', 'old-sp', 'trigram', 0.75, now() - interval '20 days', null,
                    'consumer:lml-bulk')""",
    )

    first = new_run(db)
    land(
        db,
        first,
        1,
        "single_artist",
        method="exact_match",
        confidence=1.0,
        days_ago=2,
        main={
            "discogs_artist_id": 10,
            "wikidata_qid": "Q10",
            "spotify_artist_id": "sp-10",
            "bandcamp_id": "ten",
        },
        provenance=[entry("discogs", "10"), entry("spotify", "sp-10")],
    )
    superseding = land(
        db,
        first,
        2,
        "single_artist",
        method="exact_match",
        confidence=1.0,
        days_ago=2,
        main={"wikidata_qid": None, "apple_music_artist_id": "am-2"},
        provenance=[entry("apple_music", "am-2")],
    )
    merged = merge(db)
    assert execute(
        db,
        """select discogs_release_id, discogs_master_id, wikidata_qid, apple_music_id,
                                 method from wxyc_schema.library_identity where library_id = 2""",
    ) == [(555, 77, "Q2", "am-2", "exact_match")]
    # Method trigram -> exact_match on an existing row: archived with its reason, and
    # linked to the verdict and run that superseded it.
    assert execute(
        db,
        """select library_id, discogs_release_id, method, reason_category, superseded_reason
           from wxyc_schema.library_identity_history""",
    ) == [(2, 555, "trigram", "method_changed",
           f"verdict {superseding}: method trigram -> exact_match")]
    # The merge ran without a run of its own: the link names the verdict's run.
    assert execute(
        db,
        """select link.merge_id, link.library_id, link.verdict_id, link.run_id::text
           from identity_loader.merge_history as link
           inner join wxyc_schema.library_identity_history as history
               on link.history_id = history.history_id and link.library_id = history.library_id""",
    ) == [(merged.merge_id, 2, superseding, first)]
    # The stale spotify source of row 2 is gone: LML no longer emits it.
    assert execute(
        db,
        """select library_id, source from wxyc_schema.library_identity_source
                          order by 1, 2""",
    ) == [(1, "discogs"), (1, "spotify"), (2, "apple_music")]

    second = new_run(db)
    changing = land(
        db,
        second,
        1,
        "single_artist",
        method="exact_match",
        confidence=1.0,
        days_ago=1,
        main={"discogs_artist_id": 12, "spotify_artist_id": None, "wikidata_qid": "Q10"},
        provenance=[entry("discogs", "12"), entry("musicbrainz", "mb-12")],
    )
    # A newer verdict that may not be merged (out of band) changes nothing.
    land(
        db,
        second,
        2,
        "single_artist",
        method="exact_match",
        confidence=0.5,
        days_ago=1,
        main={"apple_music_artist_id": "am-other"},
        provenance=[entry("apple_music", "am-other")],
    )
    merge(db)
    assert execute(
        db,
        """select wikidata_qid, spotify_id from wxyc_schema.library_identity
                          where library_id = 1""",
    ) == [("Q10", "sp-10")]
    assert execute(
        db,
        """select discogs_artist_id, bandcamp_id, wikidata_qid, spotify_artist_id
                          from identity_loader.library_identity_artist_ids where library_id = 1""",
    ) == [(12, "ten", "Q10", "sp-10")]
    history = execute(
        db,
        """select reason_category, superseded_reason, wikidata_qid, spotify_id
                             from wxyc_schema.library_identity_history where library_id = 1""",
    )
    assert len(history) == 1
    category, reason, old_qid, old_spotify = history[0]
    assert (category, old_qid, old_spotify) == ("id_changed", "Q10", "sp-10")
    assert reason.startswith(f"verdict {changing}: ")
    assert reason.endswith("discogs_artist_id 10 -> 12")
    assert execute(
        db,
        """select link.verdict_id, link.run_id::text from identity_loader.merge_history as link
           inner join wxyc_schema.library_identity_history as history using (history_id)
           where history.library_id = 1""",
    ) == [(changing, second)]
    assert execute(
        db,
        """select source, external_id from wxyc_schema.library_identity_source
                          where library_id = 1 order by 1""",
    ) == [("discogs", "12"), ("musicbrainz", "mb-12")]
    assert execute(
        db, "select apple_music_id from wxyc_schema.library_identity where library_id = 2"
    ) == [("am-2",)]
    assert skips(db, second) == {("verdict", "out_of_band"): 1}

    before = station_snapshot(db)
    merge(db)
    assert station_snapshot(db) == before


def test_history_links_name_their_verdict_and_run_and_feed_the_churn_report(
    blank_station: Database,
) -> None:
    db = blank_station
    for library_id in (1, 2, 3, 4):
        add_library(db, library_id, f"Artist {library_id}")
    # Rows the old writer left (1-3): each later verdict supersedes them.
    for library_id in (1, 2, 3):
        execute(
            db,
            """insert into wxyc_schema.library_identity (library_id, wikidata_qid,
                   last_verified_at, method, confidence, notes)
               values (%s, %s, now() - interval '20 days', 'trigram', 0.75,
                       'consumer:lml-bulk')""",
            (library_id, f"Q{library_id}"),
        )

    def verdict(run_id: str, library_id: int, qid: str, days_ago: float) -> int:
        return land(
            db,
            run_id,
            library_id,
            "single_artist",
            method="exact_match",
            confidence=1.0,
            days_ago=days_ago,
            main={"wikidata_qid": qid},
            provenance=[entry("wikidata", qid)],
        )

    first = new_run(db)
    first_1 = verdict(first, 1, "Q1", 2)  # method trigram -> exact_match
    first_2 = verdict(first, 2, "Q2", 2)  # the same
    verdict(first, 4, "Q4", 2)  # a new row: nothing to archive
    first_merge = merge(db)
    second = new_run(db)
    second_1 = verdict(second, 1, "Q11", 1)  # wikidata_qid Q1 -> Q11
    second_3 = verdict(second, 3, "Q3", 1)  # method trigram -> exact_match
    second_merge = merge(db)
    assert first_merge.counts["history_rows_written"] == 2
    assert second_merge.counts["history_rows_written"] == 2

    # One link per history row written, naming the merge, the verdict and its run.
    links = execute(
        db,
        """select link.merge_id, link.library_id, link.verdict_id, link.run_id::text,
                  history.superseded_reason
           from identity_loader.merge_history as link
           inner join wxyc_schema.library_identity_history as history
               on link.history_id = history.history_id
               and link.library_id = history.library_id
           order by link.history_id""",
    )
    assert execute(db, "select count(*) from identity_loader.merge_history") == [(4,)]
    assert execute(db, "select count(*) from wxyc_schema.library_identity_history") == [(4,)]
    assert [row[:4] for row in links] == [
        (first_merge.merge_id, 1, first_1, first),
        (first_merge.merge_id, 2, first_2, first),
        (second_merge.merge_id, 1, second_1, second),
        (second_merge.merge_id, 3, second_3, second),
    ]
    # The reason names the verdict and what changed, no longer the run.
    assert [row[4] for row in links] == [
        f"verdict {first_1}: method trigram -> exact_match",
        f"verdict {first_2}: method trigram -> exact_match",
        f"verdict {second_1}: wikidata_qid Q1 -> Q11",
        f"verdict {second_3}: method trigram -> exact_match",
    ]

    # The churn report counts them per run.
    dbt(db, ["run", "--select", "+rpt_run_churn"])
    churn = execute(
        db,
        f"""select run_id::text, history_archived
            from {dbt_names.qualified("rpt_run_churn")} order by run_number""",
    )
    linked = execute(
        db,
        """select run_id::text, count(*) from identity_loader.merge_history
           group by run_id order by min(history_id)""",
    )
    assert churn == linked == [(first, 2), (second, 2)]


def test_compilation_links_follow_the_tracks_contract(blank_station: Database) -> None:
    db = blank_station
    va = add_artist(db, "Various Artists", "V/A")
    add_library(db, 1, "Various Artists", artist_id=va)
    add_library(db, 2, "Various Artists", artist_id=va)
    target = add_artist(db, "Émile Touré")
    credit = add_credit(db, 1, "Emile Toure", "Song", position="3")
    untouched = add_credit(db, 2, "Emile Toure", "Song")
    run = new_run(db)
    land(
        db,
        run,
        1,
        "compilation",
        tracks_attempted=True,
        cohort="va",
        tracks=[track("Emile Toure", "Song", "émile touré", position="9" * 21, confidence=1.5)],
    )
    # Version not 1: per-track data is not supported, whatever it says.
    land(
        db,
        run,
        2,
        "compilation",
        tracks_attempted=True,
        tracks_contract_version=None,
        cohort="va",
        tracks=[track("Emile Toure", "Song", "Émile Touré")],
    )
    merge(db)
    # Existing position kept; out-of-range confidence stored as NULL.
    assert execute(
        db,
        """select track_artist_id, track_artist_link_confidence,
                                 track_artist_link_method, track_position
                          from wxyc_schema.compilation_track_artist where id = %s""",
        (credit,),
    ) == [(target, None, "lml_backfill", "3")]
    assert execute(
        db,
        """select track_artist_id, track_artist_link_method
                          from wxyc_schema.compilation_track_artist where id = %s""",
        (untouched,),
    ) == [(None, None)]
    assert skips(db, run) == {
        ("verdict", "tracks_not_attempted"): 1,
        ("track", "confidence_out_of_range"): 1,
    }
    dbt(db, ["run", "--select", "+int_library__identity_status"])
    assert execute(
        db,
        f"select status from {dbt_names.qualified('int_library__identity_status')} "
        "order by library_id",
    ) == [("compilation",), ("unresolved",)]
