"""The coverage report as tables on the terminal (`library-identity report`)."""

from __future__ import annotations

from typing import Any

from library_identity.cli.output import print_table
from library_identity.report.data import Report
from library_identity.report.page import COHORT_LABELS, COMPILATION_COUNTERS, COVERAGE_MEASURES, fmt

TERMINAL_RUNS = 10


def print_coverage(report: Report) -> None:
    cohorts = ("va", "non_va", "all")
    rows = [(label, *(_cell(report.coverage(c)[column], column) for c in cohorts))
            for column, label in COVERAGE_MEASURES]
    print_table("library identity coverage", ("measure", *(COHORT_LABELS[c] for c in cohorts)),
                rows)


def print_merge_skipped(report: Report) -> None:
    cohorts = ("va", "non_va", "all")
    rows = [(reason, *(by_cohort.get(c, 0) for c in cohorts))
            for reason, by_cohort in report.merge_skipped_reasons()]
    if rows:
        print_table("merge skipped: verdicts not stored, by reason",
                    ("reason", *(COHORT_LABELS[c] for c in cohorts)), rows)


def _cell(value: Any, column: str = "") -> Any:
    # Ints stay ints so print_table groups their digits; everything else is text.
    return value if isinstance(value, int) and not isinstance(value, bool) else fmt(value, column)


def _print_banded(report: Report, section: str, dimension: str, measure: str,
                  title: str) -> None:
    resolved = report.coverage()["resolved"]
    bands = report.band_labels(present_in=section)
    rows = []
    for name, total, by_band in report.totals_by(section, dimension, measure):
        share = f"{100.0 * total / resolved:.2f}%" if resolved else "n/a"
        rows.append((name, total, share, *(by_band.get(b, 0) for b in bands)))
    print_table(title, (dimension, "rows", "% of resolved", *bands), rows)


def print_age(report: Report) -> None:
    rows = [(r["age_bucket"], r["identities"], r["stale_identities"])
            for r in report.sections["identity_age"]]
    print_table("identity age", ("age", "covered rows", "stale"), rows)


def print_rotation(report: Report) -> None:
    row = report.rotation()
    if row is None:
        return
    print_table("rotation coverage", ("measure", "value"), [
        ("active rotation rows", row["active"]),
        ("with a Discogs release id", row["active_with_discogs"]),
        ("with a release id and an LML identity", row["active_with_lml"]),
        ("resolvable coverage", fmt(row["resolvable_coverage_pct"], "resolvable_coverage_pct")),
        (f"gate (>= {row['gate_min_pct']:g}%)", "PASS" if row["gate_passes"] else "FAIL"),
    ])


def print_runs(report: Report) -> None:
    churn = {r["run_id"]: r for r in report.sections["run_churn"]}
    rows = []
    for r in report.sections["run_history"][::-1][:TERMINAL_RUNS]:
        c = churn.get(r["run_id"], {})
        rows.append((f"#{r['run_number']}", f"{r['started_at']:%Y-%m-%d %H:%M}", r["mode"] or "",
                     r["status"],
                     _cell(r["scanned"]), _cell(r["resolved"]), _cell(r["resolved_compilation"]),
                     _cell(r["unresolved"]), _cell(r["skipped"]),
                     fmt(r["covered_pct_after"], "covered_pct_after"),
                     _cell(c.get("appeared")), _cell(c.get("changed")),
                     _cell(c.get("disappeared"))))
    print_table(f"resolve runs (latest {TERMINAL_RUNS})",
                ("run", "started", "mode", "status", "scanned", "resolved", "compilation",
                 "unresolved", "skipped", "covered after", "appeared", "changed",
                 "disappeared"), rows)


def print_compilation_runs(report: Report) -> None:
    rows = [(f"#{r['run_number']}", r["mode"] or "",
             *(_cell(r[column]) for column, _ in COMPILATION_COUNTERS))
            for r in report.sections["run_history"][::-1][:TERMINAL_RUNS]]
    print_table(f"compilation links per run (latest {TERMINAL_RUNS})",
                ("run", "mode", *(label for _, label in COMPILATION_COUNTERS)), rows)


def print_merge_skips(report: Report) -> None:
    rows = [(r["skip_level"], r["reason"], r["items"], r["library_rows"])
            for r in report.sections["merge_skips"]]
    print_table("not written by the merge", ("level", "reason", "items", "library rows"), rows)


def print_anomalies(report: Report) -> None:
    rows = [(r["description"], r["station_rows"]) for r in report.sections["station_anomalies"]
            if r["station_rows"]]
    if rows:
        print_table("station anomalies (reported only)", ("anomaly", "station rows"), rows)


def print_report(report: Report) -> None:
    print_coverage(report)
    print_merge_skipped(report)
    _print_banded(report, "identity_by_method", "method", "identities", "matched via: method")
    _print_banded(report, "identity_by_source", "source", "library_rows", "matched via: source")
    print_age(report)
    print_runs(report)
    print_compilation_runs(report)
    print_rotation(report)
    print_merge_skips(report)
    print_anomalies(report)
