"""`library-identity report`: where identity coverage stands and where it is going."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from library_identity.cli.app import Settings, fail, job_failed, main, option, pass_settings
from library_identity.cli.output import print_table
from library_identity.db import require_migrated
from library_identity.dbt_names import STALE_DAYS_VAR
from library_identity.errors import EXIT_OK, EXIT_USAGE, DatabaseError, DbtError
from library_identity.report.data import SECTION_NAMES, Report, load_report
from library_identity.report.page import COHORT_LABELS, COMPILATION_COUNTERS, COVERAGE_MEASURES, fmt
from library_identity.resolve.job import ResolveOptions

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


@main.command("report")
@click.option("--format", "output_format", type=click.Choice(["table", "json", "csv"]),
              default="table", show_default=True,
              help="table: summary tables for a person; json: one object (report_version 1) "
                   "with every section; csv: section,key,metric,value lines.")
@click.option("--section", "sections", type=click.Choice(SECTION_NAMES), multiple=True,
              help="Only these sections in JSON or CSV (repeatable; default all).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as one self-contained HTML page with charts.")
@click.option("--no-refresh", is_flag=True,
              help="Read the report views as they are instead of rebuilding them with dbt "
                   "first (they are still built if missing).")
@option(ResolveOptions, "stale_days",
        help="An identity older than this many days counts as stale (use the value `resolve "
             "--stale-days` runs with; at least 1). Applied when the views are rebuilt.")
@pass_settings
def report_command(settings: Settings, output_format: str, sections: tuple[str, ...],
                   html_path: Path | None, no_refresh: bool, stale_days: int) -> None:
    """Library identity coverage: by cohort and status, matched via which methods and
    sources at what confidence, identity age, churn and coverage per resolve run, and
    rotation coverage against its gate.

    Rebuilds dbt's report models (models/marts/reports) and reloads the confidence bands seed
    unless --no-refresh, then reads them in one snapshot, so every format shows the same
    numbers.
    """
    if sections and output_format == "table":
        fail("--section applies to --format json or csv", EXIT_USAGE)
    db = settings.database()
    try:
        with db.connect() as conn:
            require_migrated(conn)
        report = load_report(db, refresh_models=not no_refresh,
                             dbt_vars={STALE_DAYS_VAR: stale_days})
    except (DatabaseError, DbtError) as exc:
        job_failed(exc)
    if html_path is not None:
        from library_identity.report import page

        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(page.render(report), encoding="utf-8")
        click.echo(f"wrote {html_path}", err=True)
    chosen = sections or SECTION_NAMES
    if output_format == "json":
        click.echo(report.to_json(chosen))
    elif output_format == "csv":
        click.echo(report.to_csv(chosen), nl=False)
    else:
        print_report(report)
    sys.exit(EXIT_OK)
