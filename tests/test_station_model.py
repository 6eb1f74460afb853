"""The project's own station tables (migrations 0001 and 0003, for standalone and demo
databases) held to the station's schema file, and `migrate` held to its promise on a
station's own database: nothing in wxyc_schema that the station did not create changes."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import station
from conftest import CLI
from pydantic import BaseModel

from library_identity import migrate, tables
from library_identity.db import Database
from library_identity.lml import contract

ROOT = Path(__file__).resolve().parent.parent

# Columns: name, type, not null, generated; triggers: their full definitions; and the
# definitions of the functions those triggers call.
COLUMNS = """
    select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           a.attgenerated
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'wxyc_schema' and c.relname = any(%s) and a.attnum > 0
      and not a.attisdropped
    order by 1, 2"""
TRIGGERS = """
    select c.relname, t.tgname, pg_get_triggerdef(t.oid)
    from pg_trigger t
    join pg_class c on c.oid = t.tgrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'wxyc_schema' and c.relname = any(%s) and not t.tgisinternal
    order by 1, 2"""
TRIGGER_FUNCTIONS = """
    select distinct p.oid::regprocedure::text, pg_get_functiondef(p.oid)
    from pg_trigger t
    join pg_class c on c.oid = t.tgrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_proc p on p.oid = t.tgfoid
    where n.nspname = 'wxyc_schema' and c.relname = any(%s) and not t.tgisinternal
    order by 1"""
NAME_FUNCTIONS = """
    select p.oid::regprocedure::text, pg_get_functiondef(p.oid)
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'wxyc_schema'
      and p.proname in ('fold_artist_name', 'normalize_artist_name')
    order by 1"""

# Everything of wxyc_schema a catalogue can tell: relations with their columns,
# constraints, indexes and triggers; functions; types; and who may do what.
SNAPSHOT = {
    "relations": """
        select c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'wxyc_schema' order by 1""",
    "columns": """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               a.attgenerated, pg_get_expr(d.adbin, d.adrelid), a.attacl::text
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where n.nspname = 'wxyc_schema' and a.attnum > 0 and not a.attisdropped
        order by 1, 2""",
    "constraints": """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        from pg_constraint where connamespace = 'wxyc_schema'::regnamespace order by 1, 2""",
    "indexes": """
        select tablename, indexname, indexdef from pg_indexes
        where schemaname = 'wxyc_schema' order by 1, 2""",
    "triggers": """
        select tgrelid::regclass::text, tgname, pg_get_triggerdef(t.oid), tgenabled
        from pg_trigger t join pg_class c on c.oid = t.tgrelid
        where c.relnamespace = 'wxyc_schema'::regnamespace and not t.tgisinternal
        order by 1, 2""",
    "functions": """
        select p.oid::regprocedure::text, pg_get_functiondef(p.oid),
               pg_get_userbyid(p.proowner), p.proacl::text
        from pg_proc p where p.pronamespace = 'wxyc_schema'::regnamespace order by 1""",
    "types": """
        select t.typname, pg_get_userbyid(t.typowner),
               array(select enumlabel::text from pg_enum e where e.enumtypid = t.oid
                     order by e.enumsortorder)
        from pg_type t where t.typnamespace = 'wxyc_schema'::regnamespace order by 1""",
    "schema": """
        select pg_get_userbyid(nspowner), nspacl::text from pg_namespace
        where nspname = 'wxyc_schema'""",
    "public functions": """
        select p.oid::regprocedure::text, pg_get_functiondef(p.oid)
        from pg_proc p where p.pronamespace = 'public'::regnamespace
          and p.prorettype = 'trigger'::regtype order by 1""",
}


def _rows(db: Database, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(query, list(params)).fetchall()]


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {name: _rows(db, query) for name, query in SNAPSHOT.items()}


@pytest.fixture
def model_db(make_database: Callable[[], Database]) -> Database:
    db = make_database()
    migrate.apply(db)
    return db


@pytest.mark.parametrize("query", [COLUMNS, TRIGGERS, TRIGGER_FUNCTIONS],
                         ids=["columns", "triggers", "trigger functions"])
def test_the_projects_station_tables_match_the_stations_schema(
        station_db: Database, model_db: Database, query: str) -> None:
    tables = list(station.TOUCHED_TABLES)
    assert _rows(model_db, query, tables) == _rows(station_db, query, tables)


def test_the_projects_name_functions_match_the_stations(
        station_db: Database, model_db: Database) -> None:
    assert _rows(model_db, NAME_FUNCTIONS) == _rows(station_db, NAME_FUNCTIONS)
    assert len(_rows(station_db, NAME_FUNCTIONS)) == 2


def test_migrate_leaves_the_stations_schema_as_it_was(station_db: Database) -> None:
    before = snapshot(station_db)
    assert before["triggers"] and before["functions"]  # the snapshot sees the station
    done = subprocess.run([*CLI, "migrate"], capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": station_db.conninfo},
                          check=False)
    assert done.returncode == 0, done.stderr
    after = snapshot(station_db)
    for name in SNAPSHOT:
        assert after[name] == before[name], name
    # And nothing of the station's is recorded as the project's.
    assert _rows(station_db, "select object_name from identity_loader.station_objects") == []


def test_a_function_an_earlier_migrate_put_in_the_stations_schema_is_removed(
        station_db: Database) -> None:
    migrate.apply(station_db)
    before = snapshot(station_db)
    # What an earlier 0003 did on a station's database: a function of its own, recorded.
    with station_db.connect() as conn:
        conn.execute("""create function wxyc_schema.notify_row_change() returns trigger
                        language plpgsql as $$ begin return null; end $$""")
        conn.execute("insert into identity_loader.station_objects "
                     "values ('function', 'wxyc_schema.notify_row_change()')")
        conn.execute("delete from identity_loader._yoyo_migration "
                     "where migration_id = '0006_station_schema_untouched'")
    migrate.apply(station_db)
    assert snapshot(station_db) == before


# -- the one declaration of the tables and columns (library_identity/tables.py) --------------
DECLARED_TYPES = """
    select format_type(a.atttypid, a.atttypmod)
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = %s and c.relname = %s and a.attname = %s and not a.attisdropped"""


def _declared(source: str) -> list[tuple[str, str, str]]:
    """(table, column, data_type) of every column a sources file declares with a type."""
    return [(entry["name"], column["name"], column["data_type"])
            for entry in tables._declared(source)
            for column in entry.get("columns") or () if "data_type" in column]


def _types_differing(db: Database, schema: str,
                     declared: list[tuple[str, str, str]]) -> list[tuple[str, ...]]:
    with db.connect() as conn:
        return [(table, column, data_type, str(row[0] if row else None))
                for table, column, data_type in declared
                for row in [conn.execute(DECLARED_TYPES, (schema, table, column)).fetchone()]
                if not row or row[0] != data_type]


def test_the_declaration_holds_for_the_stations_schema(station_db: Database) -> None:
    declared = _declared("station")
    assert len(declared) > 60
    assert _types_differing(station_db, "wxyc_schema", declared) == []


def test_the_declaration_holds_for_the_projects_own_tables(model_db: Database) -> None:
    """The standalone DDL (migrations) for the station's tables and the project's own."""
    assert _types_differing(model_db, "wxyc_schema", _declared("station")) == []
    own = _declared("loader")
    assert {t for t, _, _ in own} >= {"raw_verdicts", "library_identity_artist_ids"}
    assert _types_differing(model_db, "identity_loader", own) == []


# Files among the shipped Python (the demo rig aside), macros and migrations.
def _shipped_files() -> list[Path]:
    files = [p for p in (ROOT / "library_identity").rglob("*.py")
             if "demo" not in p.relative_to(ROOT).parts]
    return files + sorted((ROOT / "macros").glob("*.sql")) \
        + sorted((ROOT / "migrations").glob("*.sql"))


def test_a_column_the_write_back_sets_is_named_in_two_files_at_most() -> None:
    """One entry in the declaration, the standalone DDL, and at most one more file: the
    write-back, the grants and doctor take the columns from the declaration. Names a text
    search cannot tell apart are left out: ordinary words (method, notes, source) and the
    fields of LML's contract that share a column's name (external_id, track_position,
    wikidata_qid: the loader reads them from LML's answers), and the name of a column
    another table has, read only. The project's own tables that keep a person's ids
    (migrations) name them as their own columns."""
    contract_fields = {name for model in vars(contract).values()
                       if isinstance(model, type) and model.__module__ == contract.__name__
                       for name in (model.model_fields if issubclass(model, BaseModel)
                                    else getattr(model, "__annotations__", {}))}
    # And a name another table declares for a column nobody writes (rotation's
    # discogs_release_id, which the backfill reads).
    read_elsewhere = {c for t in tables.tables() for c in t.data_types
                      if c not in t.written_by}
    written = sorted({c for t in tables.tables() for c in t.written("write_back")
                      if "_" in c and c != "library_id"
                      and c not in contract_fields | read_elsewhere})
    assert "unresolved_attempted_at" in written and "track_artist_link_method" in written
    texts = {p: p.read_text(encoding="utf-8") for p in _shipped_files()}
    naming = {column: sorted(str(p.relative_to(ROOT)) for p, text in texts.items()
                             if re.search(rf"\b{column}\b", text))
              for column in written}
    too_many = {c: files for c, files in naming.items() if len(files) > 2}
    assert not too_many, too_many
