"""Setting up: migrate, seed, the LML stand-in, and dbt passthrough."""

from __future__ import annotations

import sys

import click

from library_identity import secrets
from library_identity.cli.app import FiniteFloat, Settings, fail, main, pass_settings
from library_identity.errors import (
    EXIT_DB,
    EXIT_GATE,
    EXIT_OK,
    EXIT_USAGE,
    DatabaseError,
    SeedError,
)


# -- migrate -----------------------------------------------------------------------------
@main.command()
@click.option("--rollback", "rollback_count", type=click.IntRange(min=1), metavar="N",
              help="Roll back the last N applied migrations instead of applying.")
@click.option("--status", "show_status", is_flag=True, help="List applied and pending migrations.")
@pass_settings
def migrate(settings: Settings, rollback_count: int | None, show_status: bool) -> None:
    """Apply the schema migrations (idempotent). Station tables are created only where the
    database lacks them; a station's own tables are never altered or dropped."""
    from library_identity import migrate as migrations

    db = settings.database()
    try:
        if show_status:
            st = migrations.status(db)
            for mid in st.applied:
                click.echo(f"applied  {mid}")
            for mid in st.pending:
                click.echo(f"pending  {mid}")
            return
        if rollback_count:
            done = migrations.rollback(db, rollback_count)
            click.echo(f"rolled back: {', '.join(done) or 'nothing'}")
            return
        done = migrations.apply(db)
    except DatabaseError as exc:
        fail(str(exc), EXIT_DB)
    click.echo(f"{db.describe()}: applied {', '.join(done)}" if done
               else f"{db.describe()}: up to date")


# -- seed --------------------------------------------------------------------------------
@main.command()
@click.option("--rows", type=click.IntRange(min=0), default=64_676, show_default=True,
              help="Library rows to generate.")
@click.option("--replace", is_flag=True, help="Wipe an existing sample library first.")
@pass_settings
def seed(settings: Settings, rows: int, replace: bool) -> None:
    """Fill the station tables with a deterministic synthetic library (same N, same rows)."""
    from library_identity import migrate as migrations
    from library_identity.demo.seed import seed_library

    db = settings.database()
    migrations.apply(db)
    try:
        with db.connect() as conn:
            summary = seed_library(conn, rows, replace=replace)
    except SeedError as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(f"seeded {summary.library_rows:,} library rows, {summary.va_rows:,} V/A, "
               f"{summary.compilation_track_rows:,} compilation credits, "
               f"{summary.active_rotation_rows:,} active rotation rows "
               f"in {summary.seconds:.1f}s")


# -- lml-standin -------------------------------------------------------------------------
@main.command("lml-standin")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--api-key", envvar="LML_STANDIN_API_KEY", default="standin-key",
              show_default=True, help="Key the stand-in accepts; '' disables auth.")
@click.option("--latency-ms", type=FiniteFloat(min=0), default=0,
              help="Added latency per API call.")
@click.option("--error-rate", type=FiniteFloat(0, 1), default=0.0,
              help="Share of API calls answered with --error-status.")
@click.option("--error-status", type=int, default=503, show_default=True)
@click.option("--timeout-rate", type=FiniteFloat(0, 1), default=0.0,
              help="Share of API calls that hang (--hang-seconds).")
@click.option("--hang-seconds", type=FiniteFloat(min=0), default=60.0, show_default=True)
@click.option("--short-rate", type=FiniteFloat(0, 1), default=0.0,
              help="Share of bulk responses missing their last result.")
@click.option("--foreign-id-rate", type=FiniteFloat(0, 1), default=0.0,
              help="Share of bulk responses with a library_id that was not sent.")
@click.option("--duplicate-id-rate", type=FiniteFloat(0, 1), default=0.0,
              help="Share of bulk responses answering one library_id twice.")
@click.option("--malformed-rate", type=FiniteFloat(0, 1), default=0.0,
              help="Share of responses with a body that is not JSON.")
@click.option("--bad-enum-rate", type=FiniteFloat(0, 1), default=0.0,
              help="Share of bulk responses with an unknown kind or out-of-range confidence.")
@click.option("--track-confidence-rate", type=FiniteFloat(0, 1), default=0.0,
              help="Share of bulk responses where each compilation has one credit with a "
                   "confidence outside 0..1.")
@click.option("--out-of-band-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of single-artist results (by library_id) whose confidence is just "
                   "under their method's band.")
@click.option("--cache-stats/--no-cache-stats", default=False,
              help="Send a cache_stats object (live LML sends null).")
@click.option("--no-refresh", is_flag=True, help="Serve without the refresh route (404).")
@click.option("--upstream-per-minute", type=click.FloatRange(min=0, min_open=True),
              help="Model LML's capacity: this replica's upstream (Discogs) calls a minute, "
                   "spent by bulk rows it has not seen (unlimited when unset; LML has 50).")
@click.option("--upstream-burst", type=click.FloatRange(min=1), default=10, show_default=True,
              help="Upstream calls the budget holds when full.")
@click.option("--row-cost", type=click.IntRange(min=0), default=1, show_default=True,
              help="Upstream calls for a bulk row not seen before (a seen row is a hit).")
@click.option("--when-dry", type=click.Choice(["queue", "429"]), default="queue",
              show_default=True, help="With the budget spent: queue the request until it is "
                                      "paid for, or answer 429 with Retry-After.")
@click.option("--live-per-minute", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Background load: the station's live lookups a minute, one upstream call "
                   "each, on the same budget (their waits are in /_standin/stats).")
@click.option("--warm-share", type=click.FloatRange(0, 1), default=0, show_default=True,
              help="Share of rows already cached when the stand-in starts (hits from the "
                   "first request).")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1,
              show_default=True, help="Run the capacity model's clock this many times "
                                      "faster (Retry-After then carries fractions).")
def lml_standin(host: str, port: int, api_key: str, latency_ms: float, error_rate: float,
                error_status: int, timeout_rate: float, hang_seconds: float, short_rate: float,
                foreign_id_rate: float, duplicate_id_rate: float, malformed_rate: float,
                bad_enum_rate: float, track_confidence_rate: float, out_of_band_rate: float,
                cache_stats: bool, no_refresh: bool, upstream_per_minute: float | None,
                upstream_burst: float, row_cost: int, when_dry: str, live_per_minute: float,
                warm_share: float, time_scale: float) -> None:
    """Run the project's LML stand-in on loopback: the LML contract with deterministic,
    realistic verdicts and fault injection, for demos, tests and benchmarks."""
    from library_identity.demo.standin.capacity import CapacitySettings
    from library_identity.demo.standin.server import StandInConfig, serve

    secrets.register(api_key)
    config = StandInConfig(
        api_key=api_key or None, latency_ms=latency_ms, error_rate=error_rate,
        error_status=error_status, timeout_rate=timeout_rate, hang_seconds=hang_seconds,
        short_rate=short_rate, foreign_id_rate=foreign_id_rate,
        duplicate_id_rate=duplicate_id_rate, malformed_rate=malformed_rate,
        bad_enum_rate=bad_enum_rate, track_confidence_rate=track_confidence_rate,
        out_of_band_rate=out_of_band_rate, cache_stats=cache_stats, refresh_enabled=not no_refresh)
    if upstream_per_minute is not None:
        config.capacity = CapacitySettings(
            per_minute=upstream_per_minute, burst=upstream_burst, row_cost=row_cost,
            when_dry=when_dry, live_per_minute=live_per_minute, time_scale=time_scale,
            warm_share=warm_share)
        try:
            config.capacity.validate()
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
    elif live_per_minute:
        fail("--live-per-minute needs --upstream-per-minute", EXIT_USAGE)
    serve(config, host, port)


# -- dbt ---------------------------------------------------------------------------------
@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@pass_settings
def dbt(settings: Settings, dbt_args: tuple[str, ...]) -> None:
    """Run dbt on this project against the same database, e.g. `library-identity dbt build`."""
    from library_identity.dbt import run_dbt

    outcome = run_dbt(settings.database(), list(dbt_args) or ["build"], quiet=False,
                      reuse_parse=False)
    sys.exit(EXIT_OK if outcome.success else EXIT_GATE)


