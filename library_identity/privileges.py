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

# The serial sequence behind library_identity_history.history_id, under Postgres's default
# name; doctor checks the real one (pg_get_serial_sequence) and names it when it differs.
HISTORY_SEQUENCE = f"{STATION_SCHEMA}.library_identity_history_history_id_seq"


def quote_ident(name: str) -> str:
    """An SQL identifier, quoted unless it is a plain lower-case name."""
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


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
    """The whole script a DBA runs, one statement a line."""
    return "\n".join(p.sql(role, database) for p in privileges()) + "\n"
