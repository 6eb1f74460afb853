"""The `library-identity` command group, its settings and exit codes.

Exit codes: 0 ok; 1 a gate, invariant or data-quality check failed; 2 usage or
configuration error; 3 LML unavailable or refusing our key; 4 another run of the same job
is in progress; 5 rotation stale-reference alert; 6 database unavailable;
130 interrupted (SIGINT/SIGTERM), after the batches in flight were landed.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from loader import secrets, telemetry
from loader.db import DEFAULT_DATA_DIR, Database, DatabaseError, resolve_database

log = logging.getLogger("library_identity")

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_LML, EXIT_LOCKED, EXIT_ALERT, EXIT_DB = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130


@dataclass
class Settings:
    database_url: str | None
    data_dir: Path
    lml_url: str | None
    lml_api_key: str | None
    sentry_dsn: str | None
    sentry_environment: str
    sentry_traces_sample_rate: float
    sentry_naming: str = telemetry.DEFAULT_SENTRY_NAMING
    _db: Database | None = None

    def job_database(self) -> Database:
        """The database, with Sentry started for a job run (when configured)."""
        from loader.telemetry import init_sentry

        db = self.database()
        init_sentry(self.sentry_dsn, environment=self.sentry_environment,
                    traces_sample_rate=self.sentry_traces_sample_rate,
                    naming=self.sentry_naming)
        return db

    def database(self) -> Database:
        if self._db is None:
            try:
                self._db = resolve_database(self.database_url, self.data_dir)
            except DatabaseError as exc:
                fail(str(exc), EXIT_DB)
        return self._db


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {secrets.scrub(message)}", err=True)
    sys.exit(code)


def job_failed(exc: BaseException) -> NoReturn:
    """Every job's failures, mapped to their exit codes in one place."""
    from loader.dbt import DbtError
    from loader.lml.client import LMLAuthError
    from loader.lml.gate import LMLUnavailable
    from loader.resolve.counters import InvariantViolation
    from loader.runs import RunLocked

    if isinstance(exc, RunLocked):
        fail(str(exc), EXIT_LOCKED)
    if isinstance(exc, LMLAuthError | LMLUnavailable):
        fail(str(exc), EXIT_LML)
    if isinstance(exc, DatabaseError):
        fail(str(exc), EXIT_DB)
    if isinstance(exc, InvariantViolation | DbtError):
        fail(str(exc), EXIT_GATE)
    raise exc


@contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set an event instead of killing the process, so the batch in
    flight is finished and landed; a second signal stops at once."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("received %s: finishing the batches in flight, then stopping",
                    signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--database-url", envvar="DATABASE_URL", metavar="URL",
              help="Postgres to use (env DATABASE_URL). Unset: an embedded Postgres whose data "
                   "lives in --data-dir and stays up between commands.")
@click.option("--data-dir", envvar="LIBRARY_IDENTITY_DATA_DIR", type=click.Path(path_type=Path),
              default=DEFAULT_DATA_DIR, show_default=True,
              help="Folder for the embedded Postgres (env LIBRARY_IDENTITY_DATA_DIR). Keep it "
                   "in a project folder, not a home directory.")
@click.option("--lml-url", envvar="LML_URL", metavar="URL",
              help="LML base URL (env LML_URL); a trailing /api/v1 or / is stripped.")
@click.option("--lml-api-key", envvar="LML_API_KEY", metavar="KEY",
              help="LML bearer key (env LML_API_KEY). Never printed or logged.")
@click.option("--sentry-dsn", envvar="SENTRY_DSN", metavar="DSN",
              help="Send run traces and errors to Sentry (env SENTRY_DSN). Off when unset.")
@click.option("--sentry-environment", envvar="SENTRY_ENVIRONMENT", default="production",
              show_default=True, help="Sentry environment tag (env SENTRY_ENVIRONMENT).")
@click.option("--sentry-traces-sample-rate", envvar="SENTRY_TRACES_SAMPLE_RATE", default=1.0,
              type=click.FloatRange(0, 1), show_default=True,
              help="Share of runs traced (env SENTRY_TRACES_SAMPLE_RATE).")
@click.option("--sentry-naming", envvar="SENTRY_NAMING",
              type=click.Choice(sorted(telemetry.SENTRY_NAMES)),
              default=telemetry.DEFAULT_SENTRY_NAMING, show_default=True,
              help="Transaction names and counter keys in Sentry: the station's jobs' own "
                   "(their alerts keep working) or this project's (env SENTRY_NAMING).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              envvar="LOG_FORMAT", show_default=True, help="Log lines on stderr (env LOG_FORMAT).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="library-identity")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, data_dir: Path, lml_url: str | None,
         lml_api_key: str | None, sentry_dsn: str | None, sentry_environment: str,
         sentry_traces_sample_rate: float, sentry_naming: str, log_format: str,
         verbose: bool) -> None:
    """Keep the station's library linked to Discogs, MusicBrainz, Wikidata, Spotify,
    Apple Music and Bandcamp identities through LML.

    Exit codes: 0 ok; 1 gate/invariant failure; 2 usage or configuration error;
    3 LML unavailable or refusing the key; 4 another run in progress; 5 rotation
    stale-reference alert; 6 database unavailable; 130 interrupted.
    """
    secrets.register(lml_api_key, sentry_dsn)
    telemetry.setup_logging(logging.DEBUG if verbose else logging.INFO, log_format == "json")
    ctx.obj = Settings(database_url=database_url or None, data_dir=data_dir,
                       lml_url=lml_url or None, lml_api_key=lml_api_key or None,
                       sentry_dsn=sentry_dsn or None, sentry_environment=sentry_environment,
                       sentry_traces_sample_rate=sentry_traces_sample_rate,
                       sentry_naming=sentry_naming)


pass_settings = click.make_pass_decorator(Settings)


def lml_client(settings: Settings, **kwargs: Any):
    from loader.lml.client import LMLClient

    if not settings.lml_url:
        fail("LML_URL is not set (use --lml-url or the LML_URL environment variable; "
             "`library-identity demo` runs against the built-in stand-in)", EXIT_USAGE)
    return LMLClient(base_url=settings.lml_url, api_key=settings.lml_api_key, **kwargs)


