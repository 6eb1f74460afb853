"""The database half of `doctor`, which the jobs also run before they write anything:
server version, the station tables and columns, the role's privileges, the migrations.

Every lookup goes through the catalogue by name and OID (pg_class, pg_attribute, ...):
regclass casts and information_schema need the very privileges being checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from library_identity.db import LOADER_SCHEMA, STATION_SCHEMA, Database
from library_identity.errors import DatabaseError, PreflightFailed
from library_identity.paths import MIGRATIONS_DIR
from library_identity.privileges import Privilege, privileges, quote_ident
from library_identity.tables import Table, tables

MIN_SERVER_VERSION_NUM = 140000
# A privilege check's detail when the object itself is absent (not a denied privilege).
_ABSENT = ("missing", "schema missing", "function missing", "table missing", "sequence missing")
YOYO_MIGRATIONS_TABLE = "_yoyo_migration"


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    ok: bool
    detail: str = ""
    fix: str | None = None  # the exact statement or command that puts it right
    # Set when only one use needs it: a failure is a warning, and no job refuses on it.
    needed_for: str | None = None

    @property
    def blocking(self) -> bool:
        return not self.ok and self.needed_for is None


def failure(failed: list[Check]) -> PreflightFailed:
    """One line (the command line prints every failure as one `error:` line)."""
    items = [f"[FAIL] {c.name}" + (f" ({c.detail})" if c.detail else "")
             + (f", fix: {c.fix}" if c.fix else "") for c in failed]
    return PreflightFailed(
        f"the database is not ready for this role ({summary(failed)}); nothing was "
        f"written. {' '.join(items)} Run `library-identity doctor` for the checklist, "
        "`library-identity grants ROLE` for every grant.", failed)


def summary(failed: list[Check]) -> str:
    """What kinds of problem, in one line: the line a log or an exit-code check sees."""
    parts = []
    if any(c.section == "server" for c in failed):
        parts.append("server older than PostgreSQL 14")
    if any(c.section == "migrations" for c in failed):
        parts.append("not migrated: run `library-identity migrate`")
    missing = sum(c.section == "station schema" for c in failed)
    if missing:
        parts.append(f"{missing} station table{'s' if missing != 1 else ''} missing or "
                     "different")
    denied = sum(c.section.startswith("privileges") and c.detail not in _ABSENT
                 and "no such column" not in c.detail for c in failed)
    if denied:
        parts.append(f"permission denied: {denied} of the privileges it needs")
    return "; ".join(parts) or f"{len(failed)} problems"


def describe_check(check: Check) -> str:
    """One checklist entry, as doctor prints it: a mark, the name, the detail, and for a
    failed check the statement that puts it right."""
    mark = "ok  " if check.ok else "FAIL" if check.blocking else "warn"
    line = f"  [{mark}] {check.name}"
    if check.detail:
        line += f" ({check.detail})"
    if not check.ok and check.needed_for:
        line += f": {check.needed_for}"
    if check.fix and not check.ok:
        line += f"\n         fix: {check.fix}"
    return line


def database_checks(db: Database, migrations_dir: Path = MIGRATIONS_DIR) -> list[Check]:
    """Every database check, in checklist order. Reads the catalogue only."""
    try:
        conn = db.connect(autocommit=True, application_name="library-identity:doctor")
    except DatabaseError as exc:
        if "permission denied for database" not in str(exc):
            raise
        # Postgres names the missing privilege; the role and database are the URL's.
        line = next(p for p in privileges() if p.kind == "database")
        role, database = db.params.get("user", "ROLE"), db.params.get("dbname", "DATABASE")
        return [Check(f"privileges of {role}", line.label(), False, "missing CONNECT",
                      line.sql(role, database))]
    with conn:
        role = conn.execute("select current_user").fetchone()[0]  # type: ignore[index]
        database = conn.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        checks = [_server_version(conn)]
        checks += [_table(conn, table) for table in tables()]
        checks += [_privilege(conn, p, role, database) for p in privileges()]
        checks.append(_migrations(conn, migrations_dir))
    return checks


def require_database_ready(db: Database) -> None:
    """Raise PreflightFailed naming every missing piece, before a job writes anything."""
    failed = [c for c in database_checks(db) if c.blocking]
    if failed:
        raise failure(failed)


def _one(conn: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _server_version(conn: psycopg.Connection) -> Check:
    num = int(str(_one(conn, "select current_setting('server_version_num')")))
    version = str(_one(conn, "select current_setting('server_version')"))
    return Check("server", "PostgreSQL 14 or later", num >= MIN_SERVER_VERSION_NUM,
                 f"server {version}")


def _relation_oid(conn: psycopg.Connection, qualified: str) -> int | None:
    schema, name = qualified.split(".", 1)
    value = _one(conn, "select c.oid from pg_class c join pg_namespace n "
                 "on n.oid = c.relnamespace where n.nspname = %s and c.relname = %s",
                 (schema, name))
    return None if value is None else int(str(value))


def _table(conn: psycopg.Connection, table: Table) -> Check:
    name = f"table {table.qualified}"
    oid = _relation_oid(conn, table.qualified)
    if oid is None:
        return Check("station schema", name, False, "missing",
                     "a station database must have it; on a standalone database, run "
                     "`library-identity migrate`", needed_for=table.needed_for)
    rows = conn.execute(
        "select a.attname, case when t.typtype = 'e' then 'enum' else t.typname end "
        "from pg_attribute a join pg_type t on t.oid = a.atttypid "
        "where a.attrelid = %s and a.attnum > 0 and not a.attisdropped", (oid,)).fetchall()
    found = dict(rows)
    problems = []
    for column, types in table.columns.items():
        if column not in found:
            if column not in table.optional:
                problems.append(f"no column {column}")
        elif found[column] not in types:
            problems.append(f"{column} is {found[column]}, expected {' or '.join(types)}")
    return Check("station schema", name, not problems,
                 "; ".join(problems) if problems else f"{len(table.columns)} columns",
                 needed_for=table.needed_for)


def _privilege(conn: psycopg.Connection, p: Privilege, role: str, database: str) -> Check:
    fix = p.sql(role, database)
    ok, detail = _held(conn, p, role)
    if p.kind == "schema_owner" and not ok and detail.startswith(("owned by", "holds")):
        fix = (f"`library-identity grants {quote_ident(role)} --take-over`, its output run "
               "as a superuser")
    return Check(f"privileges of {role}", p.label(), ok, detail, None if ok else fix,
                 needed_for=p.needed_for)


def _each(privilege_list: str) -> list[str]:
    # has_*_privilege with a list answers whether ANY of them is held: ask one at a time.
    return [item.strip().upper() for item in privilege_list.split(",")]


def _held(conn: psycopg.Connection, p: Privilege, role: str) -> tuple[bool, str]:
    if p.kind == "database":
        missing = [priv for priv in _each(p.privileges) if not _one(
            conn, "select has_database_privilege(current_database(), %s)", (priv,))]
        return not missing, f"missing {', '.join(missing)}" if missing else ""
    if p.kind == "schema_owner":
        row = conn.execute(
            "select pg_get_userbyid(nspowner), pg_has_role(nspowner, 'USAGE') "
            "from pg_namespace where nspname = %s", (p.target,)).fetchone()
        if row is None:
            # A role that may create schemas (standalone, demo) gets it from migrate/dbt.
            if _one(conn, "select has_database_privilege(current_database(), 'CREATE')"):
                return True, "not yet created; the role may create it"
            return False, "missing"
        if not row[1]:
            return False, f"owned by {row[0]}, not {role}"
        # The schema is the role's; what a superuser migrate or dbt build left inside it
        # may not be (relations, functions and types owned by a role it is not).
        foreign = conn.execute(
            "select pg_get_userbyid(owner), count(*) from ("
            " select c.relowner from pg_class c join pg_namespace n"
            "  on n.oid = c.relnamespace where n.nspname = %(s)s"
            " union all select p.proowner from pg_proc p join pg_namespace n"
            "  on n.oid = p.pronamespace where n.nspname = %(s)s"
            " union all select t.typowner from pg_type t join pg_namespace n"
            "  on n.oid = t.typnamespace where n.nspname = %(s)s"
            ") as o(owner) where not pg_has_role(owner, 'USAGE') group by 1 order by 2 desc",
            {"s": p.target}).fetchall()
        if foreign:
            owners = ", ".join(f"{n} by {owner}" for owner, n in foreign)
            return False, f"holds objects owned by other roles ({owners})"
        return True, ""
    if p.kind == "schema":
        oid = _one(conn, "select oid from pg_namespace where nspname = %s", (p.target,))
        if oid is None:
            return False, "schema missing"
        return bool(_one(conn, "select has_schema_privilege(%s::oid, 'USAGE')", (oid,))), ""
    if p.kind == "function":
        schema, rest = p.target.split(".", 1)
        name, args = rest.rstrip(")").split("(", 1)
        oid = _one(conn, "select p.oid from pg_proc p join pg_namespace n "
                   "on n.oid = p.pronamespace where n.nspname = %s and p.proname = %s "
                   "and oidvectortypes(p.proargtypes) = %s", (schema, name, args))
        if oid is None:
            return False, "function missing"
        return bool(_one(conn, "select has_function_privilege(%s::oid, 'EXECUTE')", (oid,))), ""
    if p.kind == "sequence":
        return _sequence_held(conn, p)
    oid = _relation_oid(conn, p.target)
    if oid is None:
        return False, "table missing"
    if p.kind == "table":
        missing = [priv for priv in _each(p.privileges) if not _one(
            conn, "select has_table_privilege(%s::oid, %s)", (oid, priv))]
        return not missing, f"missing {', '.join(missing)}" if missing else ""
    if p.kind == "column":
        present = {r[0] for r in conn.execute(
            "select attname from pg_attribute where attrelid = %s and attnum > 0 "
            "and not attisdropped", (oid,))}
        missing = []
        for column in p.columns:
            if column not in present:
                missing.append(f"{column} (no such column)")
            elif not _one(conn, "select has_column_privilege(%s::oid, %s, %s)",
                          (oid, column, p.privileges.upper())):
                missing.append(column)
        return not missing, f"missing on {', '.join(missing)}" if missing else ""
    raise ValueError(f"unknown privilege kind {p.kind}")


def _sequence_held(conn: psycopg.Connection, p: Privilege) -> tuple[bool, str]:
    """The history_id sequence: the one the column really uses (serial or identity),
    named when it is not Postgres's default name."""
    row = conn.execute(
        "select s.oid, quote_ident(sn.nspname) || '.' || quote_ident(s.relname) "
        "from pg_class t join pg_namespace tn on tn.oid = t.relnamespace "
        "join pg_attribute a on a.attrelid = t.oid and a.attname = 'history_id' "
        "join pg_depend d on d.refobjid = t.oid and d.refobjsubid = a.attnum "
        "and d.classid = 'pg_class'::regclass and d.deptype in ('a', 'i') "
        "join pg_class s on s.oid = d.objid and s.relkind = 'S' "
        "join pg_namespace sn on sn.oid = s.relnamespace "
        "where tn.nspname = %s and t.relname = 'library_identity_history'",
        (STATION_SCHEMA,)).fetchone()
    if row is None:
        oid = _relation_oid(conn, p.target)
        if oid is None:
            return False, "sequence missing"
        name = p.target
    else:
        oid, name = int(row[0]), str(row[1])
    missing = [priv for priv in _each(p.privileges) if not _one(
        conn, "select has_sequence_privilege(%s::oid, %s)", (oid, priv))]
    if missing:
        detail = f"missing {', '.join(missing)}"
        if name != p.target:
            detail += f" (the sequence is {name}: grant on that name)"
        return False, detail
    return True, ""


def migration_ids(migrations_dir: Path) -> list[str]:
    """The migrations' ids as yoyo names them (each file's name without .sql), read from
    the folder without loading yoyo and its SQL parser."""
    return sorted(p.name[:-len(".sql")] for p in migrations_dir.glob("*.sql")
                  if not p.name.endswith(".rollback.sql"))


def _migrations(conn: psycopg.Connection, migrations_dir: Path) -> Check:
    wanted = migration_ids(migrations_dir)
    name = "migrations applied"
    oid = _relation_oid(conn, f"{LOADER_SCHEMA}.{YOYO_MIGRATIONS_TABLE}")
    applied: set[str] = set()
    if oid is not None:
        if not _one(conn, "select has_table_privilege(%s::oid, 'SELECT')", (oid,)):
            return Check("migrations", name, False,
                         f"cannot read {LOADER_SCHEMA}.{YOYO_MIGRATIONS_TABLE}",
                         f"the role must own schema {LOADER_SCHEMA} and its tables")
        applied = {r[0] for r in conn.execute(
            f"select migration_id from {LOADER_SCHEMA}.{YOYO_MIGRATIONS_TABLE}")}
    pending = [m for m in wanted if m not in applied]
    return Check("migrations", name, not pending,
                 f"pending: {', '.join(pending)}" if pending else f"{len(wanted)} applied",
                 "run `library-identity migrate`" if pending else None)
