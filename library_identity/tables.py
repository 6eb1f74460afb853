"""The tables and columns the project reads or writes, read from their one declaration:
the dbt sources files (models/staging/station/_station__sources.yml for the station's,
models/staging/loader/_loader__sources.yml for the project's own), each column with its
`data_type` and `meta` for what only this project knows.

`doctor` and the jobs' preflight compare the station's with the database, so a station
schema that drifted is named before anything is written; the grants and the verdict log's
landing columns derive from it too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from library_identity.db import STATION_SCHEMA
from library_identity.paths import PROJECT_DIR

DECLARATIONS = {
    "station": PROJECT_DIR / "models" / "staging" / "station" / "_station__sources.yml",
    "loader": PROJECT_DIR / "models" / "staging" / "loader" / "_loader__sources.yml",
}

# Type families (pg_type.typname) the project's SQL works with. The catalogue, not
# information_schema: that hides the columns a role has no privilege on.
INTEGER = ("int4", "int8", "int2")
TEXT = ("text", "varchar", "bpchar")
TIMESTAMPTZ = ("timestamptz",)
REAL = ("float4", "float8")
UUID = ("uuid",)
DATE = ("date",)
BOOLEAN = ("bool",)
ENUM = ("enum",)  # any enum type (pg_type.typtype 'e'), read as text

# A declared data_type (format_type's spelling) -> the family a database may hold instead.
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"(small|big)?int(eger)?", INTEGER),
    (r"text|character varying(\(\d+\))?|character(\(\d+\))?", TEXT),
    (r"timestamp with time zone", TIMESTAMPTZ),
    (r"real|double precision", REAL),
    (r"uuid", UUID),
    (r"date", DATE),
    (r"boolean", BOOLEAN),
)

# What each `needed_for` key in the declaration means, said where a check fails.
NEEDED_FOR = {
    "on_air_log": ("only `rotation backfill`'s quiet period reads it; --quiet-lookback 0 "
                   "runs without it"),
}
ON_AIR_LOG_USE = NEEDED_FOR["on_air_log"]


def family(data_type: str) -> tuple[str, ...]:
    """The types a database may use for a column declared as `data_type`; anything the
    table above does not name is an enum of the station's."""
    for pattern, types in _FAMILIES:
        if re.fullmatch(pattern, data_type):
            return types
    return ENUM


@dataclass(frozen=True)
class Table:
    name: str
    # The declaration as written: data types, who writes each column, the grants.
    data_types: dict[str, str]
    # Columns an older station database may lack; the project then reads NULL.
    optional: tuple[str, ...] = ()
    # Set for a table only one use needs: the other commands run without it.
    needed_for: str | None = None
    written_by: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{STATION_SCHEMA}.{self.name}"

    @property
    def columns(self) -> dict[str, tuple[str, ...]]:
        """Each column and the types a database may hold it as."""
        return {column: family(data_type) for column, data_type in self.data_types.items()}

    def written(self, by: str) -> tuple[str, ...]:
        """The columns `by` (write_back, backfill) writes, in declaration order."""
        return tuple(c for c, who in self.written_by.items() if who == by)


def _table(entry: dict[str, Any]) -> Table:
    meta = entry.get("meta") or {}
    data_types: dict[str, str] = {}
    written_by: dict[str, str] = {}
    optional = []
    for column in entry.get("columns") or ():
        data_types[column["name"]] = column["data_type"]
        column_meta = column.get("meta") or {}
        if column_meta.get("written_by"):
            written_by[column["name"]] = column_meta["written_by"]
        if column_meta.get("optional"):
            optional.append(column["name"])
    needed = meta.get("needed_for")
    return Table(entry["name"], data_types, optional=tuple(optional),
                 needed_for=NEEDED_FOR[needed] if needed else None, written_by=written_by,
                 meta=meta)


@functools.cache
def _declared(source_name: str) -> tuple[dict[str, Any], ...]:
    document = yaml.safe_load(DECLARATIONS[source_name].read_text(encoding="utf-8"))
    (source,) = [s for s in document["sources"] if s["name"] == source_name]
    return tuple(source["tables"])


@functools.cache
def tables() -> tuple[Table, ...]:
    """Every declared station table, in declaration order."""
    return tuple(_table(entry) for entry in _declared("station"))


def column_meta(source_name: str, table_name: str, key: str) -> dict[str, Any]:
    """Column name -> the value of meta `key`, for the columns of a declared table that
    set it, in declaration order."""
    (entry,) = [t for t in _declared(source_name) if t["name"] == table_name]
    return {c["name"]: (c.get("meta") or {})[key] for c in entry.get("columns") or ()
            if (c.get("meta") or {}).get(key)}


def declared_columns(source_name: str, table_name: str, flag: str) -> tuple[str, ...]:
    """The columns of a declared table whose meta sets `flag`, in declaration order."""
    return tuple(column_meta(source_name, table_name, flag))
