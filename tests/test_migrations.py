"""Migrations against a real Postgres: idempotent, reversible, and polite to a station's
own tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import CLI, ROOT

from library_identity import migrate
from library_identity.db import Database
from library_identity.errors import RunLocked
from library_identity.jobs.lock import LOCK_KEYS

STATION_TABLES = {"artists", "library", "library_identity", "library_identity_source",
                  "library_identity_history", "compilation_track_artist", "rotation",
                  "library_watermark", "flowsheet", "flowsheet_watermark"}
ALL_MIGRATIONS = ["0001_station_tables", "0002_loader_tables", "0003_station_parity",
                  "0004_merge_state", "0005_merge_history", "0006_station_schema_untouched",
                  "0007_review_decisions", "0008_dbt_builds"]
LOADER_TABLES = {"runs", "raw_verdicts", "rotation_refresh_results", "station_objects",
                 "merges", "merge_skips", "library_identity_artist_ids", "merge_history",
                 "review_decisions", "dbt_builds"}


def _tables(db: Database, schema: str) -> set[str]:
    with db.connect() as conn:
        rows = conn.execute("select table_name from information_schema.tables "
                            "where table_schema = %s and table_type = 'BASE TABLE'",
                            (schema,)).fetchall()
    return {r[0] for r in rows}


def test_apply_twice_then_roll_back_everything(empty_db: Database) -> None:
    assert migrate.apply(empty_db) == ALL_MIGRATIONS
    assert migrate.apply(empty_db) == []
    assert _tables(empty_db, "wxyc_schema") == STATION_TABLES
    assert _tables(empty_db, "identity_loader") >= LOADER_TABLES
    assert migrate.status(empty_db).pending == []

    assert migrate.rollback(empty_db) == ALL_MIGRATIONS[::-1]
    assert _tables(empty_db, "wxyc_schema") == set()
    assert not LOADER_TABLES & _tables(empty_db, "identity_loader")
    with empty_db.connect() as conn:
        assert conn.execute("select to_regtype('public.freq_enum')").fetchone() == (None,)

    # And forward again after a full rollback.
    assert migrate.apply(empty_db) == ALL_MIGRATIONS


def test_station_schema_matches_reference_columns(migrated_db: Database) -> None:
    with migrated_db.connect() as conn:
        cols = dict(conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'wxyc_schema' and table_name = 'library_identity'").fetchall())
        generated = conn.execute(
            "select is_generated from information_schema.columns where table_schema = "
            "'wxyc_schema' and table_name = 'library_identity' "
            "and column_name = 'distinct_unresolved_sources'").fetchone()
        folded = conn.execute("select wxyc_schema.fold_artist_name('Björk Guðmundsdóttir'), "
                              "wxyc_schema.fold_artist_name(null)").fetchone()
    assert cols["confidence"] == "real"
    assert cols["last_verified_at"] == "timestamp with time zone"
    assert cols["musicbrainz_release_mbid"] == "uuid"
    assert generated == ("ALWAYS",)
    assert folded == ("bjork guðmundsdottir", "")


def test_existing_station_tables_are_left_alone(empty_db: Database) -> None:
    # A station database that already has its own library (other shape, real rows).
    with empty_db.connect() as conn:
        conn.execute("create schema wxyc_schema")
        conn.execute("create table wxyc_schema.library (id serial primary key, "
                     "artist_name varchar(128), album_title varchar(128) not null, "
                     "genre_id integer not null)")
        conn.execute("insert into wxyc_schema.library (artist_name, album_title, genre_id) "
                     "values ('Sigur Rós', 'Ágætis byrjun', 7)")
        conn.commit()

    migrate.apply(empty_db)
    with empty_db.connect() as conn:
        created = {r[0] for r in conn.execute(
            "select object_name from identity_loader.station_objects").fetchall()}
        assert "wxyc_schema.library" not in created
        assert "wxyc_schema.library_identity" in created
        assert conn.execute("select artist_name, genre_id from wxyc_schema.library"
                            ).fetchall() == [("Sigur Rós", 7)]

    migrate.rollback(empty_db)
    with empty_db.connect() as conn:
        # The station's table and row survive a full rollback; ours are gone.
        assert conn.execute("select count(*) from wxyc_schema.library").fetchone() == (1,)
    assert _tables(empty_db, "wxyc_schema") == {"library"}


def _watermark(conn) -> object:
    return conn.execute("select last_modified_at from wxyc_schema.library_watermark").fetchone()


def test_station_triggers_match_the_station(blank_station: Database) -> None:
    """Watched columns advance the catalogue watermark (even when no row changes);
    identity columns do not; every row write sends a change notification."""
    with blank_station.connect(autocommit=True) as conn:
        conn.execute("insert into wxyc_schema.artists (artist_name, alphabetical_name, "
                     "code_letters) values ('Can', 'Can', 'CA')")
        conn.execute("insert into wxyc_schema.library (artist_id, genre_id, format_id, "
                     "album_title, artist_name, code_number) "
                     "select id, 1, 1, 'Tago Mago', 'Can', 1 from wxyc_schema.artists")
        conn.execute("insert into wxyc_schema.compilation_track_artist (library_id, "
                     "artist_name, track_title) select id, 'Can', 'Oh Yeah' "
                     "from wxyc_schema.library")
        conn.execute("listen cdc")
        before = _watermark(conn)

        conn.execute("update wxyc_schema.library set unresolved_attempted_at = now()")
        conn.execute("update wxyc_schema.compilation_track_artist set track_position = 'A1', "
                     "track_artist_link_method = 'lml_backfill'")
        assert _watermark(conn) == before
        notes = list(conn.notifies(timeout=0.5, stop_after=2))
        payloads = [json.loads(n.payload) for n in notes]
        assert {p["table"] for p in payloads} == {"library", "compilation_track_artist"}
        assert {p["action"] for p in payloads} == {"UPDATE"}

        # A statement naming a watched column advances it even when it changes no row.
        conn.execute("update wxyc_schema.compilation_track_artist set library_id = library_id "
                     "where false")
        after = _watermark(conn)
        assert after is not None and before is not None and after[0] > before[0]


# -- the migration lock ---------------------------------------------------------------------
def _migrate_cli(db: Database, *args: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    return subprocess.Popen([*CLI, "migrate", *args], cwd=ROOT, text=True,
                            env={**environ, "DATABASE_URL": db.conninfo},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _sessions_waiting_for_a_lock(db: Database) -> int:
    with db.connect(autocommit=True) as conn:
        row = conn.execute("select count(*) from pg_stat_activity where datname = "
                           "current_database() and wait_event_type = 'Lock'").fetchone()
    return int(row[0]) if row else 0


def test_a_migrate_killed_mid_run_leaves_a_lock_the_next_one_clears(
        migrated_db: Database) -> None:
    db = migrated_db
    migrate.rollback(db, 4)
    with db.connect() as blocker:
        # 0005 references merges: it waits here, holding yoyo's lock.
        blocker.execute("lock table identity_loader.merges in access exclusive mode")
        killed = _migrate_cli(db)
        deadline = time.monotonic() + 120
        while not _sessions_waiting_for_a_lock(db):
            assert killed.poll() is None and time.monotonic() < deadline, killed.stderr
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=60)
        with db.connect() as conn:
            left = conn.execute("select pid from identity_loader.yoyo_lock").fetchall()
        assert left == [(killed.pid,)]
        blocker.rollback()  # the killed one's session then finds its client gone and ends
    proc = _migrate_cli(db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "applied 0005_merge_history, 0006_station_schema_untouched, 0007_review_decisions" in out
    assert f"cleared a migration lock left by process {killed.pid}" in err
    assert "Traceback" not in err
    assert migrate.status(db).pending == []
    with db.connect() as conn:
        assert conn.execute("select count(*) from identity_loader.yoyo_lock").fetchone() == (0,)


def test_a_migrate_still_running_is_named_with_the_fix(
        migrated_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrate, "LOCK_WAIT_S", 0.0)
    with migrated_db.connect(autocommit=True) as other:
        other.execute("select pg_advisory_lock(%s)", (LOCK_KEYS["migrate"],))
        pid = other.info.backend_pid
        with pytest.raises(RunLocked, match=rf"select pg_terminate_backend\({pid}\)"):
            migrate.apply(migrated_db)
    assert migrate.apply(migrated_db) == []


def test_the_preflight_names_the_migrations_as_yoyo_does() -> None:
    # The jobs' preflight reads the ids from the folder without loading yoyo.
    from yoyo import read_migrations

    from library_identity.paths import MIGRATIONS_DIR
    from library_identity.preflight import migration_ids

    assert migration_ids(MIGRATIONS_DIR) == [m.id for m in read_migrations(str(MIGRATIONS_DIR))]
