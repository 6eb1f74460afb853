"""The `library-identity` command group, its settings and exit codes.

Every failure is one `error:` line on stderr, never a traceback: the exit code of each
exception the loader knows is in library_identity/errors.py (`exit_code_of`).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from library_identity import dbt_names, paths, secrets, telemetry
from library_identity.cli import config_file
from library_identity.config import Setting, flag_name, setting_of
from library_identity.errors import (
    EXIT_DB,
    EXIT_GATE,
    EXIT_USAGE,
    ConfigurationError,
    DatabaseError,
    aftermath,
    exit_code_of,
    saved_by,
)

# The command line loads what a command uses when it runs, so `--help` and a usage error
# load no database driver, HTTP stack or dbt.
if TYPE_CHECKING:
    from library_identity.db import Database
    from library_identity.lml.client import LMLClient

log = logging.getLogger("library_identity")
R = TypeVar("R")


@dataclass
class Settings:
    database_url: str | None
    data_dir: Path
    lml_url: str | None
    lml_api_key: str | None
    sentry_dsn: str | None
    sentry_environment: str
    sentry_traces_sample_rate: float
    keep_server: bool = False
    sentry_naming: str = telemetry.DEFAULT_SENTRY_NAMING
    _db: Database | None = None

    def job_database(self) -> Database:
        """The database, with Sentry started for a job run (when configured)."""
        db = self.database()
        telemetry.init_sentry(self.sentry_dsn, environment=self.sentry_environment,
                    traces_sample_rate=self.sentry_traces_sample_rate,
                    naming=self.sentry_naming)
        return db

    def database(self) -> Database:
        """The database, reachable with the configured credentials (or exit 2/6)."""
        if self._db is None:
            from library_identity.db import resolve_database

            try:
                db = resolve_database(self.database_url, self.data_dir,
                                      keep_server=self.keep_server)
                with db.connect() as conn:
                    conn.execute("select 1")
            except ConfigurationError as exc:
                fail(str(exc), EXIT_USAGE)
            except DatabaseError as exc:
                fail(str(exc), EXIT_DB)
            self._db = db
        return self._db


def option(options: type, name: str, *decls: str, **extra: Any) -> Any:
    """A click option for one field of a job's options (library_identity.config.setting): its
    default, range, help and environment variable come from the field, and the command
    line refuses a value out of range with the same message as the options' validate()."""
    found, declared, kind = setting_of(options, name)
    bounds = declared.describe_range()
    help_text = f"{declared.help.rstrip('.')} ({bounds})." if bounds else declared.help
    env = {"envvar": declared.env, "show_envvar": True} if declared.env else {}
    return click.option(*(decls or (f"--{flag_name(name)}", name)),
                        **{"type": _Declared(declared, kind), "default": found.default,
                           "show_default": found.default is not None, "help": help_text,
                           **env, **extra})


def options_from(options: type, *, without: Collection[str] = ()
                 ) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Every declared setting of a job's options class (`option`), in the order the class
    declares them, as the command's options; the command is passed one `options` object,
    built from those and from its other options named after a field of the class
    (`--dry-run` fills `dry_run`). `without`: declared settings the command leaves at
    their default."""
    names = {f.name for f in fields(options)}
    declared = [f.name for f in fields(options)
                if "setting" in f.metadata and f.name not in without]

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(command)
        def with_options(*args: Any, **given: Any) -> R:
            own = {name: given.pop(name) for name in list(given) if name in names}
            return command(*args, options=options(**own), **given)

        for name in reversed(declared):  # click lists a command's options bottom-up
            option(options, name)(with_options)
        return with_options

    return decorate


class _Declared(click.ParamType):
    """An int or a finite float within a declared range."""

    def __init__(self, declared: Setting, kind: type) -> None:
        self.declared, self.kind = declared, kind
        self.name = "integer" if kind is int else "number"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = (click.INT if self.kind is int else FiniteFloat()).convert(value, param, ctx)
        try:
            self.declared.check(number)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return number


class FiniteFloat(click.FloatRange):
    """A float option that refuses nan and infinity (they pass every range comparison)."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


PROG = "library-identity"
_COMMAND_KEY = "library_identity.command"


def command_line() -> str:
    """The command being run, without its options (e.g. `library-identity rotation
    refresh`): what a failure tells the user to run again."""
    ctx = click.get_current_context(silent=True)
    words = ctx.meta.get(_COMMAND_KEY, []) if ctx is not None else []
    return " ".join((PROG, *words))


def fail(message: str, code: int, saved: str | None = None) -> NoReturn:
    """One `error:` line on stderr (a multi-line message is joined), then exit. For the
    failures a scheduler meets (exit 3, 4, 6, 130) the line ends with what was saved and
    what to run next."""
    line = " ".join(part.strip() for part in secrets.scrub(message).splitlines() if part.strip())
    after = aftermath(code, command_line(), saved)
    if after:
        line = line.rstrip()
        line = f"{line}{'' if line.endswith(('.', '?', '!')) else '.'} {after}"
    click.echo(f"error: {telemetry.printable(line, keep_lines=False)}", err=True)
    sys.exit(code)


def job_failed(exc: BaseException) -> NoReturn:
    """Every job's failures, mapped to their exit codes in one place."""
    if isinstance(exc, KeyboardInterrupt):
        # On its way out with exit 130: a further signal must not cut the clean-up short
        # (the embedded server's included) or end the process with a traceback.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    known = exit_code_of(exc)
    if known is not None:
        fail(known[1], known[0], saved_by(exc))
    if log.isEnabledFor(logging.DEBUG):  # -v: the traceback is wanted
        raise exc
    # A failure nobody foresaw still ends as one line; -v shows where it came from.
    fail(f"unexpected {type(exc).__name__}: {str(exc)[:300]} (run with -v for the traceback)",
         EXIT_GATE)


class _Group(click.Group):
    """The command group: a failure the loader knows ends as one `error:` line and its
    exit code, wherever it was raised (a second Ctrl-C included)."""

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:  # the meta dict is shared by the nested contexts
            ctx.meta.setdefault(_COMMAND_KEY, []).append(command.name)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            job_failed(exc)


def _read_config(ctx: click.Context, _param: click.Parameter, given: str | None) -> None:
    """Eager, so the file's values are in place before the group's other options are read
    (click takes a value from the command line, then the environment, then default_map)."""
    try:
        ctx.default_map = config_file.load(ctx, config_file.locate(given))
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)


def _terminate(_signum: int, _frame: Any) -> None:
    # SIGTERM ends a command like Ctrl-C does, so its clean-up (the embedded server
    # included) runs; jobs replace this with graceful_stop while they run.
    raise KeyboardInterrupt


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
            # Once stopping, the command is on its way out with exit 130: a further
            # signal must not cut its clean-up short or change its exit code.
            signal.signal(sig, signal.SIG_IGN if stop.is_set() else old)


_Group.group_class = _Group  # subgroups (rotation) name their commands the same way


@click.group(cls=_Group,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", envvar=config_file.CONFIG_ENV, metavar="PATH", is_eager=True,
              expose_value=False, callback=_read_config,
              help="TOML file of settings (env LIBRARY_IDENTITY_CONFIG; default "
                   "$XDG_CONFIG_HOME/library-identity/config.toml, read when it exists). A "
                   "flag beats an environment variable, which beats the file.")
@click.option("--database-url", envvar="DATABASE_URL", metavar="URL",
              help="Postgres to use (env DATABASE_URL). Unset: an embedded Postgres whose data "
                   "lives in --data-dir; it stops when the last command using it exits.")
@click.option("--keep-server", is_flag=True, envvar="LIBRARY_IDENTITY_KEEP_SERVER",
              help="Leave the embedded Postgres running when this command exits (env "
                   "LIBRARY_IDENTITY_KEEP_SERVER=1). The next command without it stops it.")
@click.option("--data-dir", envvar=paths.DATA_DIR_ENV, type=click.Path(path_type=Path),
              default=paths.default_data_dir,
              show_default="$XDG_DATA_HOME/library-identity, else "
                           "~/.local/share/library-identity; as root /var/lib/library-identity",
              help="Folder for the embedded Postgres (env LIBRARY_IDENTITY_DATA_DIR).")
@click.option("--lml-url", envvar="LML_URL", metavar="URL",
              help="LML base URL (env LML_URL); a trailing /api/v1 or / is stripped.")
@click.option("--lml-api-key", envvar="LML_API_KEY", metavar="KEY",
              help="LML bearer key (env LML_API_KEY). Never printed or logged.")
@click.option("--sentry-dsn", envvar="SENTRY_DSN", metavar="DSN",
              help="Send run traces and errors to Sentry (env SENTRY_DSN). Off when unset.")
@click.option("--sentry-environment", envvar="SENTRY_ENVIRONMENT", default="production",
              show_default=True, help="Sentry environment tag (env SENTRY_ENVIRONMENT).")
@click.option("--sentry-traces-sample-rate", envvar="SENTRY_TRACES_SAMPLE_RATE", default=1.0,
              type=FiniteFloat(0, 1), show_default=True,
              help="Share of runs traced (env SENTRY_TRACES_SAMPLE_RATE).")
@click.option("--sentry-naming", envvar="SENTRY_NAMING",
              type=click.Choice(sorted(telemetry.SENTRY_NAMES)),
              default=telemetry.DEFAULT_SENTRY_NAMING, show_default=True,
              help="Transaction names and counter keys in Sentry: the station's jobs' own "
                   "(their alerts keep working) or this project's (env SENTRY_NAMING).")
@click.option("--dbt-schema", envvar=dbt_names.SCHEMA_ENV, metavar="NAME",
              help=f"Schema dbt builds the project's models in (env {dbt_names.SCHEMA_ENV}; "
                   f"default {dbt_names.DEFAULT_SCHEMA}).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              envvar="LOG_FORMAT", show_default=True, help="Log lines on stderr (env LOG_FORMAT).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="library-identity")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, keep_server: bool, data_dir: Path,
         lml_url: str | None, lml_api_key: str | None, sentry_dsn: str | None,
         sentry_environment: str, sentry_traces_sample_rate: float, sentry_naming: str,
         dbt_schema: str | None, log_format: str, verbose: bool) -> None:
    """Keep the station's library linked to Discogs, MusicBrainz, Wikidata, Spotify,
    Apple Music and Bandcamp identities through LML.

    Exit codes: 0 ok; 1 gate/invariant failure; 2 usage or configuration error;
    3 LML unavailable or refusing the key; 4 another run in progress; 5 rotation
    stale-reference alert; 6 database unavailable, or not ready for the role (see doctor);
    130 interrupted.
    """
    secrets.register(lml_api_key, sentry_dsn, secrets.url_password(lml_url))
    if dbt_schema:
        # dbt's profile and dbt_names.schema() read the variable.
        os.environ[dbt_names.SCHEMA_ENV] = dbt_schema
    telemetry.setup_logging(logging.DEBUG if verbose else logging.INFO, log_format == "json")
    signal.signal(signal.SIGTERM, _terminate)
    ctx.obj = Settings(database_url=database_url or None, data_dir=data_dir,
                       lml_url=lml_url or None, lml_api_key=lml_api_key or None,
                       sentry_dsn=sentry_dsn or None, sentry_environment=sentry_environment,
                       sentry_traces_sample_rate=sentry_traces_sample_rate,
                       keep_server=keep_server, sentry_naming=sentry_naming)


pass_settings = click.make_pass_decorator(Settings)


def lml_client(settings: Settings, **kwargs: Any) -> LMLClient:
    from library_identity.lml.client import LMLClient

    if not settings.lml_url:
        fail("LML_URL is not set (use --lml-url or the LML_URL environment variable; "
             "`library-identity demo` runs against the built-in stand-in)", EXIT_USAGE)
    try:
        return LMLClient(base_url=settings.lml_url, api_key=settings.lml_api_key, **kwargs)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def run_job(settings: Settings, options: Any, job: Callable[..., R], *, lml_needed: bool) -> R:
    """Check the options, then the LML settings, before the database is touched; run the
    job until it ends or a signal stops it (the batch in flight is landed)."""
    from library_identity.preflight import require_database_ready

    try:
        options.validate()
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    client = lml_client(settings, **options.client_settings()) if lml_needed else None
    db = settings.job_database()
    try:
        require_database_ready(db)  # before any lock, run record or write
        if client is None:
            return job(db, None, options)
        with client, graceful_stop() as stop:
            return job(db, client, options, stop=stop)
    except Exception as exc:
        job_failed(exc)
