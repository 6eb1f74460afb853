"""`library-identity rotation backfill | refresh | coverage`."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from library_identity.cli.app import (
    FiniteFloat,
    Settings,
    fail,
    job_failed,
    main,
    options_from,
    pass_settings,
    run_job,
)
from library_identity.cli.output import print_table
from library_identity.config import setting_of
from library_identity.errors import (
    EXIT_ALERT,
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)
from library_identity.rotation.options import GATE_MIN_PCT, BackfillOptions, RefreshOptions

if TYPE_CHECKING:
    from library_identity.rotation.backfill import BackfillResult
    from library_identity.rotation.coverage import Coverage
    from library_identity.rotation.refresh import RefreshResult

log = logging.getLogger("library_identity.rotation")


@main.group()
def rotation() -> None:
    """The rotation (records on air now): fill LML identities, warm LML's cache, coverage."""


Result = TypeVar("Result", "BackfillResult", "RefreshResult")


def _show(result: Result, as_json: Callable[[Result], dict[str, Any]] | None,
          print_result: Callable[[Result], None]) -> None:
    """One JSON object on stdout (a dry run's report or the summary), else the tables;
    exit 130 when the run was interrupted."""
    from library_identity.jobs.job import run_saved

    if as_json is not None:
        click.echo(json.dumps(as_json(result)))
    else:
        print_result(result)
    if result.status == "interrupted":
        fail("interrupted: stopped on a signal after landing the calls in flight",
             EXIT_INTERRUPTED, run_saved(result.run_id, result.status, dry_run=result.dry_run))
    if result.shortfall is not None:  # the run outcome rule (jobs.outcome)
        fail(result.shortfall.message, result.shortfall.exit_code,
             run_saved(result.run_id, result.status, dry_run=result.dry_run))


# -- backfill -----------------------------------------------------------------------------
@rotation.command("backfill")
@options_from(BackfillOptions, without=("max_consecutive_failures",))
@click.option("--stale-handles", is_flag=True,
              help="Re-resolve the handles LML no longer knows (the latest cache refresh "
                   "answered not_found: `rotation refresh`'s stale-reference alert) instead "
                   "of filling empty ones; a handle is replaced only while the row holds it.")
@click.option("--dry-run", is_flag=True,
              help="Call LML and count, write nothing; print one JSON report on stdout.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@pass_settings
def backfill_command(settings: Settings, options: BackfillOptions, as_json: bool) -> None:
    """Fill rotation.lml_identity_id for active rows with a Discogs release id.

    Asks LML's identity/resolve (source discogs_release) for each such row and writes the
    identity only if the row still has none and still has the same release id; a row
    changed meanwhile is left alone and counted as raced. A 422 counts as unresolved.
    Before each call it waits while the station is on air (a track in the on-air log
    within the lookback).
    """
    options = _station_quiet_period(click.get_current_context(), options)
    from library_identity.rotation.backfill import backfill, dry_run_report

    result = run_job(settings, options, backfill, lml_needed=True)
    _show(result, dry_run_report if options.dry_run else _backfill_summary if as_json else None,
          _print_backfill)


# The station's job reads its quiet period from these (pause and ceiling in ms): each fills
# in for its setting here when that is given neither as a flag, nor in our own
# variable, nor in the config file.
STATION_QUIET_ENV = {"quiet_lookback_s": ("LIVE_ACTIVITY_LOOKBACK_SECONDS", 1, "seconds"),
                     "quiet_pause_s": ("LIVE_ACTIVITY_PAUSE_MS", 1000, "milliseconds"),
                     "quiet_max_wait_s": ("LIVE_ACTIVITY_MAX_PAUSE_MS", 1000, "milliseconds")}


def _station_quiet_period(ctx: click.Context, options: BackfillOptions) -> BackfillOptions:
    """The options with the station's quiet-period variables in, converted to seconds; a
    value there that is not a number in range exits 2, naming the variable."""
    settings: dict[str, float] = {}
    for name, (env, per_second, unit) in STATION_QUIET_ENV.items():
        raw = os.environ.get(env, "").strip()
        if not raw or ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
            continue
        least = (setting_of(BackfillOptions, name)[1].min or 0) * per_second
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < least:
            fail(f"{env} must be a number of {unit}, at least {least:g}; got {raw!r}",
                 EXIT_USAGE)
        settings[name] = value / per_second
    return replace(options, **settings)


def _backfill_summary(result: BackfillResult) -> dict[str, Any]:
    return {"run_id": str(result.run_id) if result.run_id else None, "status": result.status,
            "seconds": round(result.seconds, 2), "candidates": result.candidates,
            "counters": result.counters.as_dict()}


def _print_backfill(result: BackfillResult) -> None:
    c = result.counters.as_dict()
    rows = [(key, c[key]) for key in ("scanned", "resolved", "unresolved", "lml_error",
                                      "invalid_response", "raced", "minted",
                                      "lml_total_calls", "quiet_pauses")]
    rows.append(("LML latency (ms)", round(result.counters.lml_total_latency_ms)))
    print_table(f"rotation backfill {result.run_id} — {result.status} in "
                f"{result.seconds:.1f}s", ("counter", "value"), rows)


# -- refresh ------------------------------------------------------------------------------
@rotation.command("refresh")
@options_from(RefreshOptions)
@click.option("--dry-run", is_flag=True,
              help="Print one JSON report of the ids and batches a run would send; call "
                   "nothing, write nothing (LML_URL not needed).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@pass_settings
def refresh_command(settings: Settings, options: RefreshOptions, as_json: bool) -> None:
    """Warm LML's cache for every release identity in the active rotation.

    Checks LML first (/health, and that the refresh route exists), then sends the distinct
    lml_identity_id of active rotation rows in batches, lands every per-id answer, and
    retries `error` items once in a later batch. Exit 5 when the not_found share is above
    the alert threshold (stale handles in rotation.lml_identity_id).
    """
    # A dry run sends nothing, so it needs no LML settings.
    from library_identity.rotation.refresh import dry_run_report as refresh_dry_run_report
    from library_identity.rotation.refresh import refresh

    result = run_job(settings, options, refresh, lml_needed=not options.dry_run)
    _show(result, refresh_dry_run_report if options.dry_run
          else _refresh_summary if as_json else None, _print_refresh)
    if result.alert is not None and result.alert.fired:
        sys.exit(EXIT_ALERT)  # the run logged the WARNING line; the summary repeats it


def _refresh_summary(result: RefreshResult) -> dict[str, Any]:
    return {"run_id": str(result.run_id) if result.run_id else None, "status": result.status,
            "seconds": round(result.seconds, 2), "identities": result.identities,
            "counters": result.counters.as_dict(),
            "alert": result.alert.as_dict() if result.alert else None}


def _print_refresh(result: RefreshResult) -> None:
    c = result.counters.as_dict()
    keys = ("identities_scanned", "identities_resolved", "warmed_releases", "warmed_artists",
            "not_found", "not_implemented", "lml_error", "lml_error_items", "lml_error_batch",
            "retried", "failed_batches", "skipped_null_identity", "lml_total_calls")
    rows: list[tuple[Any, ...]] = [(key, c[key]) for key in keys]
    rows.append(("LML latency (ms)", round(result.counters.lml_total_latency_ms)))
    print_table(f"rotation refresh {result.run_id} — {result.status} in "
                f"{result.seconds:.1f}s", ("counter", "value"), rows)
    if result.alert is not None and result.alert.fired:
        click.echo(f"STALE-REFERENCE ALERT: {result.alert.describe()}")


# -- coverage -----------------------------------------------------------------------------
@rotation.command("coverage")
@click.option("--min-pct", type=FiniteFloat(0, 100), default=GATE_MIN_PCT,
              show_default=True, help="Resolvable coverage gate.")
@click.option("--strict", is_flag=True, help="Exit 1 when coverage is below the gate.")
@click.option("--json", "as_json", is_flag=True, help="Print the coverage as JSON.")
@pass_settings
def coverage_command(settings: Settings, min_pct: float, strict: bool, as_json: bool) -> None:
    """Active rotation rows, how many have an LML identity, how many could (have a Discogs
    release id), resolvable coverage %, and when each identity's cache was last warmed."""
    from library_identity.db import require_migrated
    from library_identity.rotation.coverage import read_coverage

    db = settings.database()
    try:
        with db.connect() as conn:
            require_migrated(conn)
        coverage = read_coverage(db)
    except Exception as exc:
        job_failed(exc)
    passes = coverage.gate_passes(min_pct)
    if as_json:
        click.echo(json.dumps({**coverage.as_dict(), "gate_min_pct": min_pct,
                               "gate_passes": passes}))
    else:
        _print_coverage(coverage)
    if not passes:
        click.echo(f"WARNING: resolvable coverage {coverage.resolvable_coverage_pct}% is "
                   f"below the {min_pct:g}% gate; run `library-identity rotation backfill`",
                   err=True)
        if strict:
            sys.exit(EXIT_GATE)
    sys.exit(EXIT_OK)


def _print_coverage(c: Coverage) -> None:
    def when(value: Any) -> str:
        return "never" if value is None else f"{value:%Y-%m-%d %H:%M:%S %Z}"

    pct = "n/a" if c.resolvable_coverage_pct is None else f"{c.resolvable_coverage_pct:.2f}%"
    print_table("rotation coverage", ("measure", "value"), [
        ("active rotation rows", c.active),
        ("with a Discogs release id", c.active_with_discogs),
        ("with both a release id and an LML identity", c.active_with_lml),
        ("without an LML identity", c.active_without_lml_identity),
        ("resolvable coverage", pct),
        ("distinct identities", c.identities),
        ("identities never warmed", c.never_warmed),
        ("oldest last warm", when(c.oldest_last_warm)),
        ("newest last warm", when(c.newest_last_warm)),
    ])
