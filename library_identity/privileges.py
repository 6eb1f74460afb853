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


def _t(table: str) -> str:
    return f"{STATION_SCHEMA}.{table}"


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
        Privilege("table", _t("library"), "the catalogue: what to resolve",
                  privileges="select"),
        Privilege("table", _t("artists"), "artist names, the V/A marker, per-track links",
                  privileges="select"),
        Privilege("table", _t("compilation_track_artist"),
                  "compilation credits: the V/A cohort and the per-track links",
                  privileges="select"),
        Privilege("table", _t("rotation"), "the records on air: backfill, refresh, coverage",
                  privileges="select"),
        Privilege("table", _t("flowsheet"),
                  "the on-air log: `rotation backfill` pauses while the station is live",
                  privileges="select"),
        Privilege("table", _t("library_identity"),
                  "read, insert and update the identity verdict of each library row",
                  privileges="select, insert, update"),
        # `review apply`: a person's `reject` removes the identity row (archived in the
        # history first); no verdict ever deletes one.
        Privilege("table", _t("library_identity"),
                  "`review apply`: an identity a person rejects is removed (archived first)",
                  privileges="delete"),
        Privilege("table", _t("library_identity_source"),
                  "one row per (library row, source); sources LML no longer reports for a "
                  "row are deleted (only the project's own rows)",
                  privileges="select, insert, update, delete"),
        Privilege("table", _t("library_identity_history"),
                  "every superseded identity is archived before it is overwritten",
                  privileges="select, insert"),
        Privilege("sequence", HISTORY_SEQUENCE, "history_id of an archived row",
                  privileges="usage"),
        Privilege("column", _t("library"),
                  "the no-match stamp that station tools read", privileges="update",
                  columns=("unresolved_attempted_at",)),
        Privilege("column", _t("compilation_track_artist"),
                  "per-track artist links on compilations (never a librarian's)",
                  privileges="update",
                  columns=("track_artist_id", "track_artist_link_confidence",
                           "track_artist_link_method", "track_position")),
        Privilege("column", _t("rotation"), "`rotation backfill` fills the LML identity",
                  privileges="update", columns=("lml_identity_id",)),
        Privilege("table", _t("library_watermark"),
                  "the station's watermark triggers run as the writing role and update it",
                  privileges="select, update"),
    ]


def grants_sql(role: str, database: str) -> str:
    """The whole script a DBA runs, one statement a line (ConfigurationError for a role or
    database no statement can name)."""
    check_role(role)
    check_name(database, "the database")
    return "\n".join(p.sql(role, database) for p in privileges()) + "\n"
