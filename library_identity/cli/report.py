"""`library-identity report`: where identity coverage stands and where it is going."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from library_identity.cli.app import Settings, fail, job_failed, main, option, pass_settings
from library_identity.dbt_names import STALE_DAYS_VAR
from library_identity.errors import EXIT_OK, EXIT_USAGE, DatabaseError, DbtError
from library_identity.report.sections import SECTION_NAMES
from library_identity.resolve.options import ResolveOptions


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
    from library_identity.db import require_migrated
    from library_identity.report.data import load_report

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
        from library_identity.cli.report_tables import print_report

        print_report(report)
    sys.exit(EXIT_OK)
