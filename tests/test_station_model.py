"""The project's own station tables (migrations 0001 and 0003, for standalone and demo
databases) held to the station's schema file, and `migrate` held to its promise on a
station's own database: nothing in wxyc_schema that the station did not create changes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import station
from conftest import CLI

from library_identity import migrate
from library_identity.db import Database

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
