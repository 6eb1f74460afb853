"""`library-identity demo`: the whole flow on the embedded defaults, start to finish."""

from __future__ import annotations

import contextlib
import secrets as pysecrets
import sys
from collections.abc import Iterator

import click

from loader import secrets
from loader.cli.app import EXIT_GATE, EXIT_OK, Settings, main, pass_settings


@contextlib.contextmanager
def lml_for_demo(settings: Settings) -> Iterator[Settings]:
    """Use the configured LML if there is one, else the stand-in on loopback."""
    if settings.lml_url:
        yield settings
        return
    from loader.standin.server import StandIn, StandInConfig

    key = pysecrets.token_urlsafe(24)
    secrets.register(key)
    with StandIn(StandInConfig(api_key=key)) as standin:
        click.echo(f"LML stand-in listening on {standin.url}", err=True)
        settings.lml_url, settings.lml_api_key = standin.url, key
        try:
            yield settings
        finally:
            settings.lml_url = settings.lml_api_key = None


@main.command()
@click.option("--rows", type=click.IntRange(min=0), default=64_676, show_default=True,
              help="Sample library size, used when the library is empty.")
@click.option("--concurrency", type=click.IntRange(min=1), default=2, show_default=True)
@click.pass_context
@pass_settings
def demo(settings: Settings, ctx: click.Context, rows: int, concurrency: int) -> None:
    """Migrate, seed a sample library if empty, start the LML stand-in (unless LML_URL is
    set), resolve the library, merge with dbt, and print the coverage."""
    from loader import migrate as migrations
    from loader.cli.resolve import resolve_command
    from loader.seed import seed_library

    db = settings.database()
    click.echo(f"database: {db.describe()}", err=True)
    migrations.apply(db)
    with db.connect() as conn:
        has_rows = conn.execute("select exists (select 1 from wxyc_schema.library)").fetchone()
        if not (has_rows and has_rows[0]):
            summary = seed_library(conn, rows)
            click.echo(f"seeded {summary.library_rows:,} library rows "
                       f"in {summary.seconds:.1f}s", err=True)
    with lml_for_demo(settings):
        code = EXIT_OK
        try:
            ctx.invoke(resolve_command, concurrency=concurrency)
        except SystemExit as exc:
            code = int(exc.code or 0)
    if code not in (EXIT_OK, EXIT_GATE):
        sys.exit(code)
    _print_coverage(settings)
    sys.exit(code)


def _print_coverage(settings: Settings) -> None:
    from loader.cli import report

    report.print_library_summary(settings.database())
