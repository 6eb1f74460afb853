"""What a role needs to run every command against an existing station database.

One list, shared by `library-identity grants` (the SQL a DBA runs), `doctor` and the jobs'
preflight (each line checked with Postgres's has_*_privilege functions), and the README's
section for the station's DBA (kept in step by a test).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from library_identity import dbt_names
from library_identity.db import LOADER_SCHEMA, STATION_SCHEMA
from library_identity.errors import ConfigurationError
from library_identity.tables import tables

# The serial sequence behind library_identity_history.history_id, under Postgres's default
# name; doctor checks the real one (pg_get_serial_sequence) and names it when it differs.
HISTORY_SEQUENCE = f"{STATION_SCHEMA}.library_identity_history_history_id_seq"


# Postgres's key words that cannot stand as a plain name everywhere (pg_get_keywords()
# with catcode <> 'U', PostgreSQL 14 to 17): a name that is one is quoted.
_KEY_WORDS_TEXT = """
    all analyse analyze and any array as asc asymmetric authorization between bigint binary
    bit boolean both case cast char character check coalesce collate collation column
    concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user dec decimal default
    deferrable desc distinct do else end except exists extract false fetch float for
    foreign freeze from full grant greatest group grouping having ilike in initially inner
    inout int integer intersect interval into is isnull join json json_array json_arrayagg
    json_exists json_object json_objectagg json_query json_scalar json_serialize json_table
    json_value lateral leading least left like limit localtime localtimestamp merge_action
    national natural nchar none normalize not notnull null nullif numeric offset on only
    or order out outer overlaps overlay placing position precision primary real references
    returning right row select session_user setof similar smallint some substring
    symmetric system_user table tablesample then time timestamp to trailing treat trim true
    union unique user using values varchar variadic verbose when where window with
    xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi
    xmlroot xmlserialize xmltable
"""
_KEY_WORDS = frozenset(_KEY_WORDS_TEXT.split())
NAME_MAX_BYTES = 63  # Postgres cuts a longer name short (NAMEDATALEN - 1)


def quote_ident(name: str) -> str:
    """The one quoting rule for every identifier the tool prints: a plain lower-case name
    that is no key word as it is, anything else in double quotes (quotes doubled)."""
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name not in _KEY_WORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def check_name(name: str, what: str) -> None:
    """ConfigurationError unless `name` can be an identifier: not empty, no NUL, and no
    longer than Postgres keeps."""
    if not name or "\0" in name:
        raise ConfigurationError(f"{what} must be a non-empty name without NUL characters")
    if len(name.encode()) > NAME_MAX_BYTES:
        raise ConfigurationError(f"{what} {name[:20]!r}... is longer than the "
                                 f"{NAME_MAX_BYTES} bytes Postgres keeps of a name")


def check_role(role: str) -> None:
    """ConfigurationError unless `role` names one role: `public` is every role (a grant
    to it gives everyone write access), `none` none."""
    check_name(role, "the role")
    meaning = {"public": "every role", "none": "no role"}.get(role.lower())
    if meaning:
        raise ConfigurationError(f"{role!r} is not a role a grant can name (Postgres reads it "
                                 f"as {meaning}); name the login role the jobs run as")


@dataclass(frozen=True)
class Privilege:
    """One GRANT (or schema) line: what it gives, how to check it as the role, and why.

    kind and target say what to check:
    - database: target is a comma-separated privilege list on the current database;
    - schema_owner: the schema `target` must exist and belong to the role;
    - schema: USAGE on schema `target`;
    - table: `privileges` on table `target`;
    - column: `privileges` on each of `columns` of table `target`;
    - sequence: `privileges` on sequence `target`;
    - function: EXECUTE on function `target` (a signature).
    """

    kind: str
    target: str
    why: str
    privileges: str = ""
    columns: tuple[str, ...] = ()
    # Set for a line only one use needs (see tables.Table.needed_for).
    needed_for: str | None = None

    def sql(self, role: str, database: str) -> str:
        """The exact statement a DBA runs for this line."""
        to = quote_ident(role)
        if self.kind == "database":
            return f"grant {self.privileges} on database {quote_ident(database)} to {to};"
        if self.kind == "schema_owner":
            return f"create schema if not exists {quote_ident(self.target)} authorization {to};"
        if self.kind == "schema":
            return f"grant usage on schema {quote_ident(self.target)} to {to};"
        if self.kind == "table":
            return f"grant {self.privileges} on {self.target} to {to};"
        if self.kind == "column":
            return (f"grant {self.privileges} ({', '.join(self.columns)}) "
                    f"on {self.target} to {to};")
        if self.kind == "sequence":
            return f"grant {self.privileges} on sequence {self.target} to {to};"
        if self.kind == "function":
            return f"grant execute on function {self.target} to {to};"
        raise ValueError(f"unknown privilege kind {self.kind}")

    def label(self) -> str:
        """A short name for the checklist. (One branch per kind, like sql(): the same
        dispatch, but every kind's label differs from its statement in every part.)"""
        if self.kind == "database":
            return f"{self.privileges.upper()} on the database"
        if self.kind == "schema_owner":
            return f"schema {self.target} owned by the role"
        if self.kind == "schema":
            return f"USAGE on schema {self.target}"
        if self.kind == "column":
            return f"{self.privileges.upper()} ({', '.join(self.columns)}) on {self.target}"
        if self.kind == "function":
            return f"EXECUTE on {self.target}"
        return f"{self.privileges.upper()} on {self.target}"


def privileges() -> list[Privilege]:
    """Every line, in the order a DBA runs them."""
    return [
        Privilege("database", "", "connect; the jobs keep their candidates and dbt its "
                  "merge batches in temporary tables", privileges="connect, temporary"),
        Privilege("schema_owner", LOADER_SCHEMA,
                  "the project's own tables (migrations, runs, landed verdicts, refresh "
                  "results, the merges and their skips and history links); `migrate` "
                  "creates them"),
        Privilege("schema_owner", dbt_names.schema(),
                  "dbt's models: candidates, status views, merge state, reports "
                  f"(env {dbt_names.SCHEMA_ENV}, default {dbt_names.DEFAULT_SCHEMA})"),
        Privilege("schema", STATION_SCHEMA, "the station's tables live there"),
        Privilege("schema", "public", "the rotation's bin type (freq_enum) lives there"),
        Privilege("function", f"{STATION_SCHEMA}.fold_artist_name(text)",
                  "compilation credits are matched to catalogue artists by folded name"),
        *_station_lines(),
    ]


def _station_lines() -> list[Privilege]:
    """The station tables' lines, from their declaration (tables.py): each table's
    grant, the history sequence, then the column grants on what the jobs write."""
    declared = tables()
    lines = [Privilege("table", t.qualified, t.meta["why"], privileges=t.meta["grant"],
                       needed_for=t.needed_for) for t in declared if t.meta.get("grant")]
    lines.append(Privilege("sequence", HISTORY_SEQUENCE, "history_id of an archived row",
                           privileges="usage"))
    lines += [Privilege("column", t.qualified, t.meta["column_why"],
                        privileges=t.meta["column_grant"], columns=tuple(t.written_by))
              for t in declared if t.meta.get("column_grant")]
    return lines


def grants_sql(role: str, database: str) -> str:
    """The whole script a DBA runs, one statement a line (ConfigurationError for a role or
    database no statement can name)."""
    check_role(role)
    check_name(database, "the database")
    return "\n".join(p.sql(role, database) for p in privileges()) + "\n"


def owned_schemas() -> list[str]:
    """The schemas the role must own: the project's own tables and dbt's models."""
    return [p.target for p in privileges() if p.kind == "schema_owner"]


def takeover_sql(role: str, database: str) -> str:
    """Every grant, then the statements that hand the project's schemas and every object
    in them to `role`: for a database migrated (or built by dbt) as another role, such
    as a superuser. Run it as a superuser or as the objects' owner."""
    script = grants_sql(role, database)
    schemas = owned_schemas()
    to = quote_ident(role)
    lines = [f"alter schema {quote_ident(schema)} owner to {to};" for schema in schemas]
    names = ", ".join("'" + schema.replace("'", "''") + "'" for schema in schemas)
    literal = "'" + role.replace("'", "''") + "'"
    # Sequences a table owns follow their table; array and row types follow theirs.
    lines.append(f"""do $$
declare
    obj record;
begin
    for obj in
        select case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
                              when 'S' then 'sequence' when 'f' then 'foreign table'
                              else 'table' end as kind,
               c.oid::regclass::text as name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ({names}) and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
          and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                          and d.objid = c.oid and d.deptype in ('a', 'i')
                          and d.refclassid = 'pg_class'::regclass)
        union all
        select case p.prokind when 'p' then 'procedure' when 'a' then 'aggregate'
                              else 'function' end, p.oid::regprocedure::text
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ({names})
        union all
        select 'type', t.oid::regtype::text
        from pg_type t join pg_namespace n on n.oid = t.typnamespace
        where n.nspname in ({names}) and t.typtype in ('e', 'd', 'r', 'm')
    loop
        execute format('alter %s %s owner to %I', obj.kind, obj.name, {literal});
    end loop;
end
$$;""")
    return script + "\n".join(lines) + "\n"
