"""The station's own schema for tests: `fixtures/wxyc_schema.sql` is the station's database
schema as production has it (every table, trigger, function and index), loaded into an
empty database as a superuser, with the sample library written into its tables."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from library_identity import migrate
from library_identity.db import Database
from library_identity.demo import seed

SCHEMA_FILE = Path(__file__).resolve().parent / "fixtures" / "wxyc_schema.sql"

# The tables the project reads or writes, held to the file by test_station_model.
TOUCHED_TABLES = ("artists", "library", "compilation_track_artist", "rotation",
                  "library_identity", "library_identity_source", "library_identity_history",
                  "library_watermark", "flowsheet", "flowsheet_watermark")


def unavailable(server: Database) -> str | None:
    """Why the schema cannot load on this server (it needs pg_trgm), or None."""
    with server.connect() as conn:
        row = conn.execute(
            "select 1 from pg_available_extensions where name = 'pg_trgm'").fetchone()
    if row is None:
        return ("the server has no pg_trgm, which the station's schema needs (the embedded "
                "server lacks it): run with DATABASE_URL naming a full server, e.g. "
                "`eval \"$(scripts/pg14 start)\"`")
    return None


def load(db: Database) -> None:
    """Create the station's schema in an empty database (as a superuser)."""
    with db.connect(autocommit=True) as conn:
        conn.execute(SCHEMA_FILE.read_text(encoding="utf-8"))  # type: ignore[arg-type]


def add_lookups(conn: psycopg.Connection) -> None:
    """The genre and format every sample album (and every test's album) is filed under."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("insert into wxyc_schema.genres (id, genre_name) values (%s, 'Rock')",
                    [seed.GENRE_ID])
        cur.execute("insert into wxyc_schema.format (id, format_name) values (%s, 'cd')",
                    [seed.FORMAT_ID])
        for table in ("genres", "format"):
            cur.execute(f"select setval(pg_get_serial_sequence('wxyc_schema.{table}', 'id'), "
                        f"(select max(id) from wxyc_schema.{table}))")


def seed_sample(conn: psycopg.Connection, rows: int) -> None:
    """Write the sample library into the station's (empty) tables, with its lookups."""
    add_lookups(conn)
    with conn.transaction(), conn.cursor() as cur:
        seed._fill(cur, rows)


def build(db: Database, rows: int) -> float:
    """An empty database made a station's: the schema, the project's migrations and the
    sample library of `rows` rows (for benchmarks). Returns the seconds the sample took.
    SystemExit naming the reason when the server cannot hold the schema."""
    reason = unavailable(db)
    if reason:
        raise SystemExit(f"error: {reason}")
    load(db)
    migrate.apply(db)
    started = time.perf_counter()
    with db.connect() as conn:
        seed_sample(conn, rows)
    return time.perf_counter() - started
