"""`library-identity resolve`: candidates (dbt) → LML bulk-resolve → raw verdicts → merge."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from library_identity.cli.app import (
    Settings,
    fail,
    graceful_stop,
    job_failed,
    lml_client,
    main,
    options_from,
    pass_settings,
)
from library_identity.cli.output import print_table
from library_identity.errors import EXIT_GATE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from library_identity.resolve.counters import SKIP_BUCKETS, dry_run_report
from library_identity.resolve.options import COHORTS, MODES, Partition, ResolveOptions
from library_identity.telemetry import printable

if TYPE_CHECKING:
    from library_identity.resolve.merge import MergeOutcome
    from library_identity.resolve.resolve_job import ResolveResult

log = logging.getLogger("library_identity.resolve")


@contextmanager
def progress_reporter(enabled: bool) -> Iterator[tuple[Any, Any]]:
    """A progress bar on a terminal, a log line every ~10% otherwise."""
    totals: dict[str, int] = {}
    done: dict[str, int] = {}
    if enabled and sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        bar = Progress("[progress.description]{task.description}", BarColumn(),
                       MofNCompleteColumn(), TimeRemainingColumn(), transient=False)
        tasks: dict[str, Any] = {}

        def on_candidates(counts: dict[str, int]) -> None:
            for cohort in ("va", "non_va"):
                tasks[cohort] = bar.add_task(f"{cohort:>6}", total=counts.get(cohort, 0))

        def advance(cohort: str, rows: int) -> None:
            bar.advance(tasks[cohort], rows)

        with bar:
            yield on_candidates, advance
        return

    def on_candidates_log(counts: dict[str, int]) -> None:
        totals.update(counts)
        log.info("candidates va=%d non_va=%d", counts.get("va", 0), counts.get("non_va", 0))

    def advance_log(cohort: str, rows: int) -> None:
        before = done.get(cohort, 0)
        done[cohort] = before + rows
        total = max(1, totals.get(cohort, 1))
        if done[cohort] * 10 // total != before * 10 // total or done[cohort] >= total:
            log.info("progress cohort=%s rows=%d/%d", cohort, done[cohort], total)

    yield on_candidates_log, advance_log


def summary(result: ResolveResult) -> dict[str, Any]:
    return {
        "run_id": str(result.run_id) if result.run_id else None,
        "status": result.status,
        "seconds": round(result.seconds, 2),
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "candidates_from": result.candidates_from,
        "candidates": result.candidates,
        "pacing": result.pacing,
        "lml_outage": result.outage,
        "counters": result.counters.as_dict(),
        "merge": None if result.merge is None else merge_summary(result.merge),
    }


def print_summary(result: ResolveResult) -> None:
    c = {cohort: result.counters.cohorts[cohort] for cohort in ("va", "non_va")}
    total = result.counters.total
    rows: list[tuple[Any, ...]] = [
        ("scanned", c["va"].scanned, c["non_va"].scanned, total.scanned),
        ("resolved", c["va"].rows_resolved, c["non_va"].rows_resolved, total.rows_resolved),
        ("resolved (compilation)", c["va"].rows_resolved_compilation,
         c["non_va"].rows_resolved_compilation, total.rows_resolved_compilation),
        ("unresolved", c["va"].rows_unresolved, c["non_va"].rows_unresolved,
         total.rows_unresolved),
    ]
    rows += [(f"skipped: {b}", c["va"].rows_skipped[b], c["non_va"].rows_skipped[b],
              total.rows_skipped[b]) for b in SKIP_BUCKETS]
    rows += [
        ("source rows skipped (null)", c["va"].source_rows_skipped_null_confidence,
         c["non_va"].source_rows_skipped_null_confidence,
         total.source_rows_skipped_null_confidence),
        ("LML calls", c["va"].lml_total_calls, c["non_va"].lml_total_calls,
         total.lml_total_calls),
        ("LML latency (ms)", round(c["va"].lml_total_latency_ms),
         round(c["non_va"].lml_total_latency_ms), round(total.lml_total_latency_ms)),
    ]
    title = f"resolve run {result.run_id} — {result.status} in {result.seconds:.1f}s"
    print_table(title, ("counter", "va", "non_va", "total"), rows)
    if result.pacing:
        click.echo(f"LML pace: {pace_line(result.pacing)}")
    if result.outage.get("lml_outages"):
        click.echo(outage_line(result.outage))
    if result.merge is not None:
        print_merge(result.merge)


def outage_line(outage: dict[str, float]) -> str:
    return (f"LML outages waited out: {outage['lml_outages']:g} "
            f"({outage['lml_outage_wait_s']:g} s in all)")


def merge_summary(outcome: MergeOutcome) -> dict[str, Any]:
    return {"success": outcome.success, "merge_id": outcome.merge_id,
            "counts": outcome.counts, "skipped": outcome.skips,
            "failures": outcome.failures, "warnings": outcome.warnings}


def print_merge(outcome: MergeOutcome) -> None:
    if outcome.merge_id is None and outcome.success:
        click.echo("merge: nothing new to merge")
    elif outcome.counts:
        rows = [(name.replace("_", " "), value) for name, value in outcome.counts.items()]
        rows += [(f"skipped: {reason}", n) for reason, n in outcome.skips.items()]
        print_table(f"merge {outcome.merge_id}", ("what", "rows"), rows)
    state = "passed" if outcome.success else "FAILED (no station table changed)"
    click.echo(f"merge and gates: {state}")
    for line in outcome.failures + outcome.warnings:
        click.echo(f"  {printable(line)}")


def report_merge(outcome: MergeOutcome, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(merge_summary(outcome)))
    else:
        print_merge(outcome)


@main.command("merge")
@click.option("--full-rebuild", is_flag=True,
              help="Replay the whole verdict log instead of the verdicts landed since the last "
                   "merge (e.g. after a merge rule changed). Writes only what then differs.")
@click.option("--json", "as_json", is_flag=True, help="Print the merge summary as JSON.")
@pass_settings
def merge_command(settings: Settings, full_rebuild: bool, as_json: bool) -> None:
    """Merge the landed verdicts into the station's identity tables.

    dbt brings the verdict state up to date and computes the change sets, its gates check
    them, then one transaction writes identity rows, sources, history, compilation links
    and no-match stamps. Takes the resolve lock: never runs beside a resolve.
    """
    from library_identity.preflight import require_database_ready
    from library_identity.resolve import resolve_job

    db = settings.job_database()
    try:
        require_database_ready(db)  # before any lock, run record or write
        outcome = resolve_job.merge_only(db, ResolveOptions(), full_rebuild=full_rebuild)
        if not outcome.success:
            resolve_job.require_database(db, outcome, "the dbt merge")
    except Exception as exc:
        job_failed(exc)
    report_merge(outcome, as_json)
    sys.exit(EXIT_OK if outcome.success else EXIT_GATE)


def pace_line(pacing: dict[str, Any]) -> str:
    if pacing["mode"] == "fixed":
        text = f"fixed at {pacing['settled_concurrency']} calls in flight"
    else:
        text = (f"settled at {pacing['settled_concurrency']} calls in flight (adaptive "
                f"{pacing['min_concurrency']}..{pacing['max_concurrency']}, peak "
                f"{pacing['peak_concurrency']}, mean {pacing['mean_concurrency']}): "
                f"{pacing['reason']}")
    if pacing["retry_after_paused_s"]:
        text += f"; paused {pacing['retry_after_paused_s']:g}s for Retry-After"
    return text


def _partition(_ctx: click.Context, _param: click.Parameter, given: str | None
               ) -> Partition | None:
    try:
        return Partition.parse(given) if given else None
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def _cohorts(_ctx: click.Context, _param: click.Parameter, given: tuple[str, ...]
             ) -> tuple[str, ...]:
    return tuple(c for c in COHORTS if c in given) or COHORTS  # V/A first, each once


@main.command("resolve")
@click.option("--mode", type=click.Choice(MODES), default="full", show_default=True,
              help="full: never attempted, stale or retry-due rows; legacy: the old "
                   "canonical-only scope; recheck: every unresolved row.")
@options_from(ResolveOptions)
@click.option("--partition", metavar="I/N", callback=_partition,
              help="Only rows with library_id % N = I.")
@click.option("--cohort", "cohorts", type=click.Choice(COHORTS), multiple=True,
              default=COHORTS, callback=_cohorts,
              help="Only this cohort (repeatable; default both, V/A first).")
@click.option("--dry-run", is_flag=True,
              help="Call LML and count, write nothing; print one JSON report on stdout.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.option("--no-merge", is_flag=True, help="Land verdicts only; skip the dbt merge.")
@click.option("--merge-only", is_flag=True, help="Only run the dbt merge and gates.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on a terminal.")
@pass_settings
def resolve_command(settings: Settings, options: ResolveOptions, as_json: bool,
                    no_merge: bool, merge_only: bool, progress: bool) -> None:
    """Resolve library rows through LML and land the raw verdicts, then merge.

    Runs dbt's candidate models, calls LML's bulk-resolve in batches (V/A cohort first),
    lands every trusted verdict append-only, checks the counter invariant, then runs the
    dbt merge and its gates.
    """
    try:
        options.validate()
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    if merge_only and (options.dry_run or no_merge):
        fail("--merge-only cannot be combined with --dry-run or --no-merge", EXIT_USAGE)
    from library_identity.jobs.job import run_saved
    from library_identity.preflight import require_database_ready
    from library_identity.resolve import resolve_job

    # LML settings are checked before the database is touched.
    client = None if merge_only else lml_client(settings, **options.client_settings())
    db = settings.job_database()
    try:
        require_database_ready(db)  # before any lock, run record or write
        if client is None:
            outcome = resolve_job.merge_only(db, options)
            if not outcome.success:
                resolve_job.require_database(db, outcome, "the dbt merge")
            report_merge(outcome, as_json)
            sys.exit(EXIT_OK if outcome.success else EXIT_GATE)
        with client, graceful_stop() as stop, \
                progress_reporter(progress and not as_json) as (on_candidates, advance):
            result = resolve_job.resolve(db, client, options, stop=stop, progress=advance,
                             merge=not no_merge, on_candidates=on_candidates)
    except Exception as exc:
        job_failed(exc)
    if options.dry_run:
        click.echo(json.dumps(dry_run_report(result.counters, options.mode)))
    elif as_json:
        click.echo(json.dumps(summary(result)))
    else:
        print_summary(result)
    if result.status == "interrupted":
        fail("interrupted: stopped on a signal after landing the batches in flight",
             EXIT_INTERRUPTED, run_saved(result.run_id, result.status, dry_run=options.dry_run))
    if result.status == "failed":
        fail(result.error or "the run failed",
             result.shortfall.exit_code if result.shortfall else EXIT_GATE,
             run_saved(result.run_id, result.status, dry_run=options.dry_run))
    if result.status == "gate_failed":
        sys.exit(EXIT_GATE)
