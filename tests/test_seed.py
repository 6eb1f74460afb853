"""The synthetic station library: determinism, shape at the default size, refusals, replace,
and tiny sizes, all against a real Postgres."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from library_identity import migrate
from library_identity.db import Database
from library_identity.demo import synthetic
from library_identity.demo.seed import (
    DEFAULT_ROWS,
    FUTURE_KILL,
    SeedSummary,
    active_rotation_count,
    seed_library,
)
from library_identity.errors import SeedError

TABLES = ("artists", "library", "compilation_track_artist", "rotation")


def _fresh(make_database: Callable[[], Database]) -> Database:
    db = make_database()
    migrate.apply(db)
    return db


def _seed(db: Database, rows: int, *, replace: bool = False) -> SeedSummary:
    with db.connect() as conn:
        return seed_library(conn, rows, replace=replace)


def _digests(db: Database) -> dict[str, Any]:
    """An md5 over each table's rows in id order, plus the sequence positions."""
    out: dict[str, Any] = {}
    with db.connect() as conn:
        for table in TABLES:
            row = conn.execute(
                f"select count(*), md5(coalesce(string_agg(t::text, E'\\n' order by t.id), ''))"
                f" from wxyc_schema.{table} t").fetchone()
            out[table] = row
        out["sequences"] = conn.execute(
            "select schemaname, sequencename, last_value from pg_sequences"
            " where schemaname in ('wxyc_schema', 'identity_loader') order by 1, 2").fetchall()
    return out


def _scalar(conn: psycopg.Connection, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def seeded(make_database: Callable[[], Database]) -> tuple[Database, SeedSummary]:
    db = _fresh(make_database)
    return db, _seed(db, DEFAULT_ROWS)


@pytest.fixture
def conn(seeded: tuple[Database, SeedSummary]) -> Iterator[psycopg.Connection]:
    with seeded[0].connect() as connection:
        yield connection


def test_summary_counts_the_tables(seeded: tuple[Database, SeedSummary],
                                   conn: psycopg.Connection) -> None:
    summary = seeded[1]
    assert summary.library_rows == DEFAULT_ROWS
    assert summary.artists == _scalar(conn, "select count(*) from wxyc_schema.artists")
    assert summary.compilation_track_rows == _scalar(
        conn, "select count(*) from wxyc_schema.compilation_track_artist")
    assert summary.rotation_rows == _scalar(conn, "select count(*) from wxyc_schema.rotation")
    assert summary.seconds > 0
    assert _scalar(conn, "select min(id) = 1 and max(id) = %s from wxyc_schema.library",
                   [DEFAULT_ROWS])


def test_same_rows_give_identical_tables(seeded: tuple[Database, SeedSummary],
                                         make_database: Callable[[], Database]) -> None:
    other = _fresh(make_database)
    summary = _seed(other, DEFAULT_ROWS)
    assert replace(summary, seconds=0.0) == replace(seeded[1], seconds=0.0)
    assert _digests(other) == _digests(seeded[0])


def test_library_shape(seeded: tuple[Database, SeedSummary], conn: psycopg.Connection) -> None:
    summary = seeded[1]
    assert 0.44 <= summary.canonical_rows / DEFAULT_ROWS <= 0.48
    masters = _scalar(conn, "select count(*) from wxyc_schema.library"
                            " where canonical_entity_id like 'discogs:master:%'")
    assert 0.87 <= masters / summary.canonical_rows <= 0.93
    assert _scalar(conn, """select count(*) from wxyc_schema.library
                            where canonical_entity_id !~ '^discogs:(master:|release:)?[1-9][0-9]*$'
                               or (canonical_entity_id is null)
                                  <> (canonical_entity_confidence is null)
                               or (canonical_entity_id is null)
                                  <> (canonical_entity_resolved_at is null)""") == 0
    assert 6_000 <= summary.va_rows <= 6_600
    assert 100 <= summary.null_artist_name_rows <= 300

    # Denormalised names agree with the artist, except the rows the station never sends.
    assert _scalar(conn, """select count(*) from wxyc_schema.library l
                            join wxyc_schema.artists a on a.id = l.artist_id
                            where l.artist_name is distinct from a.artist_name
                              and l.artist_name is not null""") == 0

    legacy_max, minted = conn.execute(
        """select max(legacy_release_id) filter (where legacy_release_id < 1000000),
                  count(*) filter (where legacy_release_id >= 1000000)
           from wxyc_schema.library""").fetchone() or (0, 0)
    assert 70_000 <= legacy_max <= 74_000
    assert 0.025 <= minted / DEFAULT_ROWS <= 0.035


def test_va_markers(conn: psycopg.Connection) -> None:
    groups = dict(conn.execute(
        """select (coalesce(l.code_volume_letters, '') like 'Z%')::text || '/' ||
                  exists (select 1 from wxyc_schema.compilation_track_artist c
                          where c.library_id = l.id)::text,
                  count(*)
           from wxyc_schema.library l group by 1""").fetchall())
    assert groups["true/true"] > 5_000
    assert 50 <= groups["false/true"] <= 400  # marked only by credits
    assert 50 <= groups["true/false"] <= 400  # marked only by the call letters
    names = dict(conn.execute(
        """select a.artist_name, count(*) from wxyc_schema.library l
           join wxyc_schema.artists a on a.id = l.artist_id
           where coalesce(l.code_volume_letters, '') like 'Z%' group by 1""").fetchall())
    assert names["Various Artists"] > 4_000
    assert set(synthetic.VA_NAMES) <= set(names)
    assert _scalar(conn, """select code_letters = 'V/A'
                            from wxyc_schema.artists where artist_name = 'Various Artists'""")
    # No canonical ids on V/A rows: none were in scope when those were resolved.
    assert _scalar(conn, """select count(*) from wxyc_schema.library
                            where code_volume_letters like 'Z%'
                              and canonical_entity_id is not null""") == 0


def test_credits_come_from_compilation_tracks(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        """select l.id, l.legacy_release_id,
                  array_agg(array[c.artist_name, c.track_title, c.track_position] order by c.id)
           from wxyc_schema.library l
           join wxyc_schema.compilation_track_artist c on c.library_id = l.id
           group by l.id order by l.id""").fetchall()
    assert len(rows) > 5_000
    for index, (_, legacy_id, credits) in enumerate(rows):
        expected = synthetic.compilation_tracks(legacy_id)
        assert len(credits) == len(expected)
        if index % 20 == 0:
            assert credits == [[t.artist_name, t.title, t.position] for t in expected]
    assert _scalar(conn, """select count(*) from wxyc_schema.library l
                            where l.code_volume_letters like 'Z%'
                              and not exists (select 1 from wxyc_schema.compilation_track_artist c
                                              where c.library_id = l.id)
                              and l.artist_id <> 1""") == 0


def test_some_credits_are_linked_by_a_librarian(conn: psycopg.Connection) -> None:
    total, librarian, good = conn.execute(
        """select count(*),
                  count(*) filter (where c.track_artist_link_method = 'librarian'),
                  count(*) filter (where c.track_artist_link_method = 'librarian'
                                     and a.artist_name = c.artist_name
                                     and c.track_artist_link_confidence = 1.0)
           from wxyc_schema.compilation_track_artist c
           left join wxyc_schema.artists a on a.id = c.track_artist_id""").fetchone() or (0, 0, 0)
    assert 0.015 <= librarian / total <= 0.025
    assert good == librarian
    assert _scalar(conn, """select count(*) from wxyc_schema.compilation_track_artist
                            where (track_artist_id is null) <> (track_artist_link_method is null)
                            """) == 0


def test_folded_matching_is_ambiguous_for_some_credits(conn: psycopg.Connection) -> None:
    ambiguous = conn.execute(
        """select distinct c.artist_name from wxyc_schema.compilation_track_artist c
           where (select count(*) from wxyc_schema.artists a
                  where wxyc_schema.fold_artist_name(a.artist_name)
                        = wxyc_schema.fold_artist_name(c.artist_name)) >= 2""").fetchall()
    assert {"Björk", "Motörhead"} <= {name for (name,) in ambiguous}


def test_unicode_and_long_values_round_trip(conn: psycopg.Connection) -> None:
    pool = {synthetic.track_artist_name(k) for k in range(synthetic.TRACK_ARTIST_POOL_SIZE)}
    for name in sorted(pool & set(synthetic.TRICKY_NAMES)):
        assert _scalar(conn, "select count(*) from wxyc_schema.artists where artist_name = %s",
                       [name]) == 1, name
    assert _scalar(conn, "select count(*) from wxyc_schema.artists"
                         " where artist_name = repeat('X', 128)") == 1
    titles = conn.execute("select id, album_title from wxyc_schema.library"
                          " where id % 97 = 0 or album_title like '%Ünter%'").fetchall()
    assert any(not title.isascii() for _, title in titles)
    assert all(title == synthetic.album_title(library_id) for library_id, title in titles)
    assert _scalar(conn, "select count(*) from wxyc_schema.library"
                         " where char_length(album_title) = 128") > 0


def test_rotation_shape(seeded: tuple[Database, SeedSummary],
                        conn: psycopg.Connection) -> None:
    summary = seeded[1]
    assert summary.active_rotation_rows == active_rotation_count(DEFAULT_ROWS) == 310
    assert 0.8 <= summary.rotation_with_identity / summary.active_rotation_rows <= 0.95
    killed = summary.rotation_rows - summary.active_rotation_rows
    assert 100 <= killed <= 150
    active = "(r.kill_date is null or r.kill_date > current_date)"
    assert _scalar(conn, f"select count(*) from wxyc_schema.rotation r where {active}"
                         " and r.discogs_release_id is not null"
                         " and r.lml_identity_id is null") >= 2  # backfill candidates
    assert _scalar(conn, "select count(*) from wxyc_schema.rotation where kill_date = %s",
                   [FUTURE_KILL]) >= 2
    assert _scalar(conn, f"select count(*) from wxyc_schema.rotation r where {active}"
                         " and r.discogs_release_id is null") > 0
    # Snapshots copy the library row they point at.
    assert _scalar(conn, """select count(*) from wxyc_schema.rotation r
                            left join wxyc_schema.library l on l.id = r.album_id
                            where l.id is null
                               or r.artist_name is distinct from l.artist_name
                               or r.album_title is distinct from l.album_title
                               or r.legacy_library_release_id <> l.legacy_release_id""") == 0
    assert _scalar(conn, "select count(*) from wxyc_schema.rotation"
                         " where lml_identity_id is not null and discogs_release_id is null") == 0


def test_refuses_to_seed_over_a_library(seeded: tuple[Database, SeedSummary],
                                        conn: psycopg.Connection) -> None:
    with pytest.raises(SeedError) as raised:
        seed_library(conn, 10)
    assert str(raised.value) == (
        f"wxyc_schema.library already has {DEFAULT_ROWS} rows; pass replace=True (--replace)"
        " to wipe the sample and reseed")
    assert _scalar(conn, "select count(*) from wxyc_schema.library") == DEFAULT_ROWS


def test_replace_gives_a_fresh_seed(make_database: Callable[[], Database]) -> None:
    rows = 3_000
    reseeded = _fresh(make_database)
    _seed(reseeded, 500)
    with reseeded.connect() as conn:
        # Leftovers from a loader run, which replace must clear too.
        conn.execute("""insert into wxyc_schema.library_identity
                        (library_id, last_verified_at, method, confidence)
                        values (1, now(), 'exact_match', 1.0)""")
        conn.execute("""insert into wxyc_schema.library_identity_history
                        (library_id, superseded_reason) values (1, 'test')""")
        conn.execute("""insert into identity_loader.runs (run_id, job)
                        values ('00000000-0000-0000-0000-000000000001', 'resolve')""")
        conn.execute("""insert into identity_loader.raw_verdicts
                        (run_id, library_id, cohort, kind, request, result)
                        values ('00000000-0000-0000-0000-000000000001', 1, 'va',
                                'unresolved', '{}', '{}')""")
    summary = _seed(reseeded, rows, replace=True)
    assert summary.library_rows == rows

    fresh = _fresh(make_database)
    _seed(fresh, rows)
    assert _digests(reseeded) == _digests(fresh)
    with reseeded.connect() as conn:
        for table in ("wxyc_schema.library_identity", "wxyc_schema.library_identity_history",
                      "identity_loader.runs", "identity_loader.raw_verdicts"):
            assert _scalar(conn, f"select count(*) from {table}") == 0, table


@pytest.mark.parametrize("rows", [0, 1, 10, 100])
def test_tiny_sizes(rows: int, migrated_db: Database) -> None:
    summary = _seed(migrated_db, rows)
    assert summary.library_rows == rows
    assert summary.active_rotation_rows == active_rotation_count(rows)
    with migrated_db.connect() as conn:
        if rows:
            assert _scalar(conn, "select max(id) from wxyc_schema.library") == rows
        # Sequences continue after the sample, so ordinary inserts still work.
        artist_id = _scalar(conn, """insert into wxyc_schema.artists
                                     (artist_name, alphabetical_name, code_letters)
                                     values ('New', 'New', 'NEW') returning id""")
        assert artist_id == summary.artists + 1
        new_id, legacy_id = conn.execute(
            """insert into wxyc_schema.library (artist_id, genre_id, format_id, album_title,
                                                code_number)
               values (%s, 1, 1, 'New', 1) returning id, legacy_release_id""",
            [artist_id]).fetchone() or (0, 0)
        assert new_id == rows + 1
        minted_before = _scalar(conn, """select count(*) from wxyc_schema.library
                                         where legacy_release_id >= 1000000""") - 1
        assert legacy_id == 1_000_000 + minted_before


def test_refuses_station_owned_tables(migrated_db: Database) -> None:
    with migrated_db.connect() as conn:
        conn.execute("delete from identity_loader.station_objects"
                     " where object_name = 'wxyc_schema.library'")
    with pytest.raises(SeedError, match="not created by this project's migration"), \
            migrated_db.connect() as conn:
        seed_library(conn, 10)
