"""The worklist as rows a person reads: the same cells in the page's table, its CSV link
and `library-identity review export`."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors

from library_identity.db import Database
from library_identity.errors import ReportModelsMissing
from library_identity.report import data
from library_identity.tables import declared_columns

KIND_LABELS = {"unresolved": "unresolved albums", "refused": "identities the merge refused",
               "low-confidence": "low-confidence identities"}
COHORTS = {"va": "V/A", "non_va": "non-V/A"}
# The station identity's id columns a person may fill or correct: library_identity's
# columns its declaration marks `review`.
ID_COLUMNS = declared_columns("station", "library_identity", "review")
# (CSV header, rpt_worklist column)
FIELDS = (("library_id", "library_id"), ("kind", "kind"), ("artist", "artist_name"),
          ("title", "album_title"), ("cohort", "cohort"), ("times_tried", "times_tried"),
          ("last_tried", "last_tried_at"), ("why", "why"), ("method", "method"),
          ("confidence", "confidence"), *((c, c) for c in ID_COLUMNS))
HEADER = (*(name for name, _ in FIELDS), "decision", "note")


def model_kind(kind: str) -> str:
    """The CLI's and the page's kind (low-confidence) as rpt_worklist spells it."""
    return kind.replace("-", "_")


def cell(column: str, value: Any) -> str:
    """One worklist value as a CSV cell (spreadsheet-safe; see report.data.csv_cell)."""
    if column == "kind":
        value = value.replace("_", "-")
    elif column == "cohort":
        value = COHORTS.get(value, value)
    elif column == "last_tried_at" and value is not None:
        value = value.isoformat(timespec="seconds")
    return data.csv_cell(value)


def cells(row: dict[str, Any]) -> list[str]:
    """A worklist row as its CSV cells, decision and note empty."""
    return [*(cell(column, row[column]) for _, column in FIELDS), "", ""]


def read(conn: psycopg.Connection, kind: str | None = None) -> list[dict[str, Any]]:
    """The worklist rows (of one kind), in the order a person works through them."""
    try:
        rows = data.select_model(conn, data.WORKLIST_MODEL, data.WORKLIST_ORDER)
    except errors.UndefinedTable as exc:
        raise ReportModelsMissing(str(exc).splitlines()[0]) from None
    return [r for r in rows if kind is None or r["kind"] == model_kind(kind)]


def load(db: Database, kind: str | None = None, *, refresh_models: bool = True
         ) -> list[dict[str, Any]]:
    """Build the report views (like `report`) and read the worklist."""
    if not refresh_models:
        try:
            with data.views_lock(db, shared=True), data.connect(db) as conn:
                return read(conn, kind)
        except ReportModelsMissing:
            pass
    with data.views_lock(db, shared=False):
        data.refresh(db)
        with data.connect(db) as conn:
            return read(conn, kind)


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(cells(r) for r in rows)
    return buffer.getvalue()
