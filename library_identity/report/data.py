"""The coverage report's numbers: dbt's report models (models/marts/reports), read with plain SQL
in one snapshot, so the terminal table, JSON, CSV and the HTML page all show the same
figures."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg import errors, sql

from library_identity.db import Database
from library_identity.dbt import run_dbt
from library_identity.dbt_names import (
    CONFIDENCE_BANDS,
    REPORTS_RESOURCE_TYPES,
    REPORTS_SELECTOR,
    REPORTS_WITH_INPUTS_SELECTOR,
    relation,
)
from library_identity.errors import DatabaseError, DbtError, ReportModelsMissing
from library_identity.jobs.lock import REPORT_VIEWS_LOCK_KEY
from library_identity.report.sections import SECTION_NAMES, SECTIONS

REPORT_VERSION = 1
# Station roles may default to a few seconds; a report on a large library needs longer.
STATEMENT_TIMEOUT_MS = 120_000
# The planner overestimates the report views' window functions over joins by orders of
# magnitude, so Postgres would JIT-compile them: seconds of compiling for queries that
# run in a fraction of one.
SESSION_SETTINGS = {"jit": "off"}
# How long a report waits for another report's build of the views (a few seconds each, a
# minute or so where the merge never built what they read).
VIEWS_LOCK_WAIT_MS = 600_000


BANDS_MODEL = CONFIDENCE_BANDS
# Read with the sections, shown apart: what needs a person (the page leads with them).
ALERTS_MODEL, ALERTS_ORDER = "rpt_alerts", ("alert_order", "alert", "job")
WORKLIST_MODEL = "rpt_worklist"
WORKLIST_ORDER = ("kind_order", "artist_name", "album_title", "library_id")


@dataclass
class Report:
    generated_at: datetime
    sections: dict[str, list[dict[str, Any]]]
    bands: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    worklist: list[dict[str, Any]] = field(default_factory=list)

    # -- accessors the renderers share ---------------------------------------------------
    def coverage(self, cohort: str = "all") -> dict[str, Any]:
        return next(r for r in self.sections["library_coverage"] if r["cohort"] == cohort)

    def merge_skipped_reasons(self) -> list[tuple[str, dict[str, int]]]:
        """(reason, {cohort: rows}) for merge-skipped rows, most rows first."""
        out: dict[str, dict[str, int]] = {}
        for row in self.sections["library_merge_skipped"]:
            out.setdefault(row["reason"], {})[row["cohort"]] = int(row["library_rows"])
        return sorted(out.items(), key=lambda item: (-item[1].get("all", 0), item[0]))

    def rotation(self) -> dict[str, Any] | None:
        rows = self.sections["rotation_coverage"]
        return rows[0] if rows else None

    def band_labels(self, *, present_in: str | None = None) -> list[str]:
        """Band labels best first, "none" last (a stored confidence in no band, e.g. NULL);
        with present_in, only the bands that section has rows in."""
        labels = [*(b["confidence_band"] for b in self.bands), "none"]
        if present_in is None:
            return labels
        present = {r["confidence_band"] for r in self.sections[present_in]}
        return [b for b in labels if b in present]

    def stale_identities(self) -> int:
        return sum(int(r["stale_identities"]) for r in self.sections["identity_age"])

    def totals_by(self, section: str, dimension: str, measure: str
                  ) -> list[tuple[str, int, dict[str, int]]]:
        """(value, total, {band: count}) per method or source, in the model's order."""
        out: dict[str, tuple[int, dict[str, int]]] = {}
        for row in self.sections[section]:
            total, by_band = out.get(row[dimension], (0, {}))
            by_band[row["confidence_band"]] = int(row[measure])
            out[row[dimension]] = (total + int(row[measure]), by_band)
        return [(name, total, by_band) for name, (total, by_band) in out.items()]

    # -- machine formats -----------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {"report_version": REPORT_VERSION, "generated_at": self.generated_at,
                **{name: self.sections[name] for name in SECTION_NAMES},
                "alerts": self.alerts}

    def to_json(self, sections: Sequence[str] = SECTION_NAMES) -> str:
        data = {k: v for k, v in self.as_dict().items()
                if k not in SECTION_NAMES or k in sections}
        if tuple(sections) != SECTION_NAMES:
            data.pop("alerts")
        return json.dumps(data, default=_json_default, indent=2)

    def csv_rows(self, sections: Sequence[str] = SECTION_NAMES) -> Iterator[list[str]]:
        """Long format, one value per line: section, key, metric, value."""
        yield ["section", "key", "metric", "value"]
        for section in SECTIONS:
            if section.name not in sections:
                continue
            for row in self.sections[section.name]:
                key = spreadsheet_safe(section.key_of(row))
                for metric, value in row.items():
                    if metric not in section.keys:
                        yield [section.name, key, metric, csv_cell(value)]

    def to_csv(self, sections: Sequence[str] = SECTION_NAMES) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(self.csv_rows(sections))
        return buffer.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


# A cell a spreadsheet would read as a formula (OWASP's CSV injection rule); a number's
# own minus sign is not one.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(text: str) -> str:
    """Text as a CSV cell no spreadsheet evaluates: a leading `'` before a formula."""
    if text.startswith(_FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def from_spreadsheet_safe(text: str) -> str:
    """A cell read back: the quote spreadsheet_safe put before a formula taken off, so
    an exported value comes back as it was."""
    if text.startswith("'") and spreadsheet_safe(text[1:]) == text:
        return text[1:]
    return text


def csv_cell(value: Any) -> str:
    """A value as a CSV report cell: csv_value's text, made spreadsheet-safe unless the
    value is a number."""
    text = csv_value(value)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return text
    return spreadsheet_safe(text)


def plain(value: Any) -> Any:
    """Database values as JSON-friendly Python: numeric → int or float, uuid → str."""
    if isinstance(value, Decimal):
        # Counts (sums) have no fractional digits; percentages keep theirs as floats.
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, UUID):
        return str(value)
    return value


def refresh(db: Database, dbt_vars: Mapping[str, Any] | None = None) -> None:
    """(Re)build the report views and load the seed they read; on a database where the
    merge never ran, with the views and tables they read (never the merge models, which
    are not among them)."""
    outcome = run_dbt(db, ["build", "--selector", REPORTS_SELECTOR, *REPORTS_RESOURCE_TYPES],
                      dbt_vars)
    if not outcome.success:
        outcome = run_dbt(db, ["build", "--selector", REPORTS_WITH_INPUTS_SELECTOR,
                               *REPORTS_RESOURCE_TYPES], dbt_vars)
    if not outcome.success:
        raise DbtError("dbt could not build the report models: " + "; ".join(outcome.failures))


def select_model(conn: psycopg.Connection, model: str, order_by: Sequence[str] = ()
                 ) -> list[dict[str, Any]]:
    """All rows of one report model, as dicts of plain values."""
    query = sql.SQL("select * from {}").format(relation(model))
    if order_by:
        query += sql.SQL(" order by {}").format(sql.SQL(", ").join(map(sql.Identifier,
                                                                        order_by)))
    cur = conn.execute(query)
    names = [c.name for c in cur.description or ()]
    return [{n: plain(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def connect(db: Database, application_name: str = "library-identity:report"
            ) -> psycopg.Connection:
    """A session for reading the report models."""
    return db.connect(application_name=application_name,
                      statement_timeout_ms=STATEMENT_TIMEOUT_MS, settings=SESSION_SETTINGS)


def read_report(db: Database) -> Report:
    """Every report model in one repeatable-read snapshot (so now() and the log are the
    same for all of them)."""
    with connect(db) as conn:
        conn.execute("set transaction isolation level repeatable read, read only")
        try:
            row = conn.execute("select now()").fetchone()
            assert row is not None
            sections = {s.name: select_model(conn, s.model, s.order_by) for s in SECTIONS}
            bands = select_model(conn, BANDS_MODEL, ("band_order",))
            alerts = select_model(conn, ALERTS_MODEL, ALERTS_ORDER)
            worklist = select_model(conn, WORKLIST_MODEL, WORKLIST_ORDER)
        except errors.UndefinedTable as exc:
            raise ReportModelsMissing(str(exc).splitlines()[0]) from None
    return Report(generated_at=row[0], sections=sections, bands=bands, alerts=alerts,
                  worklist=worklist)


@contextlib.contextmanager
def views_lock(db: Database, *, shared: bool) -> Iterator[None]:
    """Hold the report views' advisory lock (shared to read them, exclusive to build
    them) on a session of its own, waiting up to VIEWS_LOCK_WAIT_MS for it."""
    conn = db.connect(autocommit=True, application_name="library-identity:report-lock",
                      statement_timeout_ms=VIEWS_LOCK_WAIT_MS)
    try:
        take = "pg_advisory_lock_shared" if shared else "pg_advisory_lock"
        try:
            conn.execute(f"select {take}(%s)", (REPORT_VIEWS_LOCK_KEY,))
        except errors.QueryCanceled:
            raise DatabaseError(
                f"another report kept the report views locked for {VIEWS_LOCK_WAIT_MS // 1000}"
                " s (building or reading them); run the report again later") from None
        yield
    finally:
        conn.close()  # ending the session releases the lock


def load_report(db: Database, *, refresh_models: bool = True,
                dbt_vars: Mapping[str, Any] | None = None) -> Report:
    """Build the report views (unless told not to) and read them; without a refresh, the
    views are still built if they are missing. Concurrent reports wait for each other's
    build instead of racing dbt over the same views."""
    if not refresh_models:
        try:
            with views_lock(db, shared=True):
                return read_report(db)
        except ReportModelsMissing:
            pass
    with views_lock(db, shared=False):
        refresh(db, dbt_vars)
        try:
            return read_report(db)
        except ReportModelsMissing:
            # Another dbt build (a resolve's, say) replaced a view the reports read, which
            # drops them; build them once more.
            refresh(db, dbt_vars)
            try:
                return read_report(db)
            except ReportModelsMissing as exc:
                raise DatabaseError(f"the report views were dropped while being read ({exc}): "
                                    "another dbt build is replacing the views they read; run "
                                    "the report again") from None
