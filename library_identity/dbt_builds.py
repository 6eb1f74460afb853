"""What a dbt build deployed, so a later run can use it without starting dbt.

A build of a selection records, in identity_loader.dbt_builds (one row per dbt schema and
selection), the project's stamp and the relations it built with a digest of their
definitions. The deployment still stands while:

- the stamp is the same: the project's files (models, macros, seeds, dbt_project.yml,
  selectors.yml, profiles.yml), the vars it is built with (the project's defaults with
  those passed over them) and the dbt release. A changed model or a changed var (a stale
  window, say) changes it;
- every relation it built still exists, and each view's definition is the one the build
  left. Another dbt run that rebuilt one of them differently (other vars, another
  project), or dropped one, changes the digest.

A relation's data is never part of it: the views read the station's tables as they are,
and the tables among the relations (the verdict state) are the merge's to keep current.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
import yaml

from library_identity import dbt_names, paths
from library_identity.db import LOADER_SCHEMA

TABLE = f"{LOADER_SCHEMA}.dbt_builds"
STAMPED_FILES = ("dbt_project.yml", "selectors.yml", "profiles.yml", "packages.yml")
STAMPED_FOLDERS = ("models", "macros", "seeds")
DBT_PACKAGES = ("dbt-core", "dbt-postgres")


def project_stamp(dbt_vars: Mapping[str, Any], project_dir: Path | None = None) -> str:
    """The stamp of the dbt project as a build with these vars would deploy it."""
    project = project_dir or paths.PROJECT_DIR
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    files = [project / name for name in STAMPED_FILES if (project / name).is_file()]
    for folder in STAMPED_FOLDERS:
        files += sorted(p for p in (project / folder).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        add(path.relative_to(project).as_posix(), path.read_bytes())
    with (project / "dbt_project.yml").open(encoding="utf-8") as handle:
        defaults = dict(yaml.safe_load(handle).get("vars") or {})
    add("vars", json.dumps({**defaults, **dbt_vars}, sort_keys=True, default=str).encode())
    for package in DBT_PACKAGES:
        try:
            add(package, metadata.version(package).encode())
        except metadata.PackageNotFoundError:
            add(package, b"")
    return digest.hexdigest()


_DEFINITIONS_SQL = """
    select count(*) filter (where c.oid is null),
           md5(coalesce(string_agg(
               r.name || ':' || coalesce(c.relkind::text, '-') || ':'
               || coalesce(case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid) end,
                           ''), E'\\n' order by r.name), ''))
    from unnest(%s::text[]) as r (name)
    left join pg_class as c on c.oid = to_regclass(r.name)
"""


def _definitions(conn: psycopg.Connection, relations: Sequence[str]) -> tuple[int, str]:
    """(relations missing, digest of the relations' kinds and view definitions)."""
    row = conn.execute(_DEFINITIONS_SQL, (list(relations),)).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def _has_table(conn: psycopg.Connection) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (TABLE,)).fetchone()
    return bool(row and row[0])


def forget(conn: psycopg.Connection, selection: str) -> None:
    """Before a build of the selection: until it has finished, nothing of it is trusted."""
    if _has_table(conn):
        conn.execute(f"delete from {TABLE} where dbt_schema = %s and selection = %s",
                     (dbt_names.schema(), selection))


def forget_all(conn: psycopg.Connection) -> None:
    """After a migration: the relations' inputs may have changed under them."""
    if _has_table(conn):
        conn.execute(f"delete from {TABLE}")


def record(conn: psycopg.Connection, selection: str, stamp: str,
           relations: Sequence[str]) -> None:
    """After a build of the selection: what it deployed."""
    if not _has_table(conn):
        return
    missing, definitions = _definitions(conn, relations)
    if missing:  # dropped meanwhile by another build: nothing to trust
        forget(conn, selection)
        return
    conn.execute(
        f"insert into {TABLE} (dbt_schema, selection, project_stamp, relations, definitions) "
        "values (%s, %s, %s, %s, %s) on conflict (dbt_schema, selection) do update set "
        "project_stamp = excluded.project_stamp, relations = excluded.relations, "
        "definitions = excluded.definitions, built_at = excluded.built_at",
        (dbt_names.schema(), selection, stamp, sorted(relations), definitions))


def deployed(conn: psycopg.Connection, selection: str, stamp: str) -> bool:
    """Whether the last build of the selection, with this stamp, still stands."""
    if not _has_table(conn):
        return False
    row = conn.execute(
        f"select project_stamp, relations, definitions from {TABLE} "
        "where dbt_schema = %s and selection = %s", (dbt_names.schema(), selection)).fetchone()
    if row is None or row[0] != stamp or not row[1]:
        return False
    missing, definitions = _definitions(conn, row[1])
    return missing == 0 and definitions == row[2]
