"""`library-identity demo`: the whole flow on the embedded defaults, start to finish."""

from __future__ import annotations

import contextlib
import secrets as pysecrets
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from library_identity import paths, secrets
from library_identity.cli.app import Settings, fail, main, pass_settings
from library_identity.cli.config_file import SECRETS_FILE_ENV, describe_source
from library_identity.errors import EXIT_ALERT, EXIT_GATE, EXIT_OK, EXIT_USAGE

# The settings that point the demo at something real; it writes there only when asked.
CONFIGURED_TARGETS = (("database_url", "DATABASE_URL"), ("lml_url", "LML_URL"))


def refuse_configured_targets(settings: Settings, ctx: click.Context) -> None:
    """Exit 2 when a database or an LML is configured (flag, environment or config file):
    the demo seeds a sample library, resolves and merges, and must not do that to a
    station by accident."""
    configured = [(name, describe_source(ctx, field)) for field, name in CONFIGURED_TARGETS
                  if getattr(settings, field)]
    if not configured:
        return
    what = " and ".join(f"{name} is set (by {source})" for name, source in configured)
    unset = [name for name, source in configured if source == "the environment"]
    unset += [SECRETS_FILE_ENV for _, source in configured if SECRETS_FILE_ENV in source]
    command = ["env", *(f"-u {name}" for name in unset)] if unset else []
    command.append("library-identity")
    if any("the config file" in source for _, source in configured):
        command.append("--config /dev/null")
    fail(f"{what}: the demo seeds a sample library, resolves and merges, so it runs only on "
         "the embedded database and the LML stand-in unless told otherwise; nothing was "
         f"written. Run it without them (`{' '.join(command)} demo`), or pass "
         "--use-configured to run it against them on purpose", EXIT_USAGE)


@contextlib.contextmanager
def lml_for_demo(settings: Settings) -> Iterator[bool]:
    """Use the configured LML if there is one, else the stand-in on loopback (yields True
    when it is the stand-in)."""
    if settings.lml_url:
        yield False
        return
    from library_identity.demo.standin.server import StandIn, StandInConfig

    key = pysecrets.token_urlsafe(24)
    secrets.register(key)
    with StandIn(StandInConfig(api_key=key)) as standin:
        settings.lml_url, settings.lml_api_key = standin.url, key
        try:
            yield True
        finally:
            settings.lml_url = settings.lml_api_key = None


@main.command()
@click.option("--rows", type=click.IntRange(min=0), default=64_676, show_default=True,
              help="Sample library size, used when the library is empty.")
@click.option("--concurrency", type=click.IntRange(min=1),
              help="A fixed number of LML calls in flight during the resolve run "
                   "(default: resolve's adaptive pace).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              default=lambda: paths.state_dir() / "report.html",
              show_default="report.html in the state folder",
              help="Where to write the coverage page.")
@click.option("--use-configured", is_flag=True,
              help="Run against the configured database and LML (DATABASE_URL, LML_URL, from "
                   "a flag, the environment or the config file) instead of refusing.")
@click.pass_context
@pass_settings
def demo(settings: Settings, ctx: click.Context, rows: int, concurrency: int | None,
         html_path: Path, use_configured: bool) -> None:
    """The whole flow on the embedded defaults: migrate, seed a sample library if empty,
    start the LML stand-in, resolve and merge, backfill and warm the rotation, then print
    the coverage and write the coverage page. With a database or an LML configured it
    refuses (exit 2) unless --use-configured; it names both before it writes anything."""
    from library_identity import migrate as migrations
    from library_identity.cli.report import report_command
    from library_identity.cli.resolve import resolve_command
    from library_identity.cli.rotation import backfill_command, refresh_command
    from library_identity.demo.seed import seed_library

    if not use_configured:
        refuse_configured_targets(settings, ctx)
        if settings.sentry_dsn:
            click.echo("demo: Sentry is off (a configured SENTRY_DSN is used only with "
                       "--use-configured)", err=True)
            settings.sentry_dsn = None
    db = settings.database()
    with lml_for_demo(settings) as using_standin:
        click.echo(f"demo: writes to the database {db.describe()}", err=True)
        click.echo(f"demo: calls LML at {settings.lml_url}"
                   f"{' (the stand-in on loopback)' if using_standin else ''}", err=True)
        migrations.apply(db)
        with db.connect() as conn:
            has_rows = conn.execute(
                "select exists (select 1 from wxyc_schema.library)").fetchone()
            if not (has_rows and has_rows[0]):
                summary = seed_library(conn, rows)
                click.echo(f"seeded {summary.library_rows:,} library rows "
                           f"in {summary.seconds:.1f}s", err=True)
        code = _step(ctx, "resolve", resolve_command, concurrency=concurrency)
        if code not in (EXIT_OK, EXIT_GATE):
            sys.exit(code)
        # The stand-in takes more than LML's production pace (20 calls a minute, 30 s
        # before an `error` item is asked again).
        pace = {"requests_per_minute": 600.0 if using_standin else 20.0}
        for name, command, params in (
                ("rotation backfill", backfill_command, pace),
                ("rotation refresh", refresh_command,
                 {**pace, "retry_delay_s": 1.0 if using_standin else 30.0})):
            step_code = _step(ctx, name, command, **params)
            if step_code not in (EXIT_OK, EXIT_ALERT):
                sys.exit(step_code)
    _step(ctx, "report", report_command, output_format="table", html_path=html_path,
          no_refresh=True)
    click.echo(f"coverage page: {html_path}", err=True)
    sys.exit(code)


def _step(ctx: click.Context, name: str, command: click.Command, **params: object) -> int:
    """Run one command as the demo's step; its exit code, without leaving the demo."""
    click.echo(f"\n== {name}", err=True)
    try:
        ctx.invoke(command, **params)
    except SystemExit as exc:
        return int(exc.code or 0)
    return EXIT_OK
