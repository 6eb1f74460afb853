"""The loader's exceptions and the exit code each one ends a command with.

Every message is safe to print: no key, password or DSN (LMLError scrubs what LML sent).

    ValueError
    └── ConfigurationError      a setting the loader cannot use                  exit 2
    RuntimeError
    ├── DatabaseError           unreachable, not migrated, cannot be prepared    exit 6
    ├── DbtError                dbt failed (a gate, or the database refused it)  exit 1 / 6
    ├── LMLError                a call to LML failed                             exit 3
    │   ├── LMLAuthError        LML refused the key
    │   ├── LMLMalformedResponse
    │   └── LMLInterrupted      asked to stop while waiting to retry
    ├── LMLUnavailable          LML unreachable or kept failing before the job   exit 3
    │   └── LMLRouteMissing     the deployment lacks a route the job needs
    ├── PreflightFailed         the database is not ready for the role (doctor)  exit 6
    ├── RunLocked               another run of the same job holds the lock       exit 4
    ├── InvariantViolation      a run's counters do not add up                   exit 1
    ├── ReportModelsMissing     the report views are not built yet (rebuilt, never exits)
    ├── SeedError               the sample cannot be written                     exit 2
    ├── StationLive             on air past the quiet period's ceiling           exit 1
    └── NoOnAirLog              the quiet period needs a flowsheet table         exit 2

psycopg's InsufficientPrivilege and OperationalError exit 6 too. The exit codes:
"""

from __future__ import annotations

import sys
from typing import Any

from library_identity import secrets

EXIT_OK = 0
EXIT_GATE = 1  # a gate, invariant or data-quality check failed
EXIT_USAGE = 2  # usage or configuration error
EXIT_LML = 3  # LML unavailable or refusing our key
EXIT_LOCKED = 4  # another run of the same job is in progress
EXIT_ALERT = 5  # rotation stale-reference alert
EXIT_DB = 6  # database unavailable, or not ready for the role (see `doctor`)
EXIT_INTERRUPTED = 130  # SIGINT/SIGTERM, after the batches in flight were landed


class ConfigurationError(ValueError):
    """A setting the loader cannot use; the message is safe to print (exit 2)."""


class DatabaseError(RuntimeError):
    """The database could not be reached or prepared; the message is safe to print."""


class DbtError(RuntimeError):
    """dbt failed; the message names the failing nodes."""


class LMLError(RuntimeError):
    """A call to LML failed; `retryable` says whether the failure was transient."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 attempts: int = 1) -> None:
        super().__init__(secrets.scrub(message))
        self.status = status
        self.retryable = retryable
        self.attempts = attempts


class LMLAuthError(LMLError):
    """LML refused the credentials (401/403): no point in calling it again this run."""


class LMLMalformedResponse(LMLError):
    """LML answered 200 with a body that is not the JSON object the contract promises."""


class LMLInterrupted(LMLError):
    """The run was asked to stop while this call waited to be sent again."""


class LMLUnavailable(RuntimeError):
    """LML could not be reached or kept failing; the job stopped (exit 3)."""


class LMLRouteMissing(LMLUnavailable):
    """The LML deployment does not serve a route the job needs."""


class PreflightFailed(RuntimeError):
    """The database is not ready for the project (server version, station tables and
    columns, the role's privileges, migrations); nothing was written. `failed` holds the
    checks that failed (library_identity.preflight.Check)."""

    def __init__(self, message: str, failed: list[Any]) -> None:
        super().__init__(message)
        self.failed = failed


class RunLocked(RuntimeError):
    """Another run of the same job holds the lock."""


class InvariantViolation(RuntimeError):
    """A run's counters do not add up: every scanned row must land in exactly one bucket."""


class ReportModelsMissing(RuntimeError):
    """The report views do not exist yet (dbt has not built them)."""


class SeedError(RuntimeError):
    """The sample cannot be written; the message says why and is safe to print."""


class StationLive(RuntimeError):
    """The station stayed on air past the quiet period's ceiling; nothing more is sent or
    written."""


class NoOnAirLog(RuntimeError):
    """The quiet period needs wxyc_schema.flowsheet, and the database has none."""


# How dbt words a database that went away or refused a privilege.
_DBT_DATABASE_FAILURES = (
    "server closed the connection", "terminating connection", "connection refused",
    "could not connect", "connection to server", "the database system is shutting down",
    "password authentication failed", "permission denied",
)


def note_saved(exc: BaseException, saved: str) -> None:
    """Say on a failure what its run kept, for the last line of the failure (`aftermath`)."""
    exc.saved = saved  # type: ignore[attr-defined]


def saved_by(exc: BaseException) -> str | None:
    return getattr(exc, "saved", None)


def aftermath(code: int, command: str, saved: str | None = None) -> str | None:
    """What a failure's last line adds for the failures a scheduler meets (stopped, LML or
    the database down, the lock busy): what was kept, and what to run next."""
    if code not in (EXIT_INTERRUPTED, EXIT_LML, EXIT_DB, EXIT_LOCKED):
        return None
    again = f"run `{command}` again"
    then = {
        EXIT_INTERRUPTED: f"{again}: it carries on with what was not landed yet" if saved
        else again,
        EXIT_LML: f"once LML answers (`library-identity doctor` checks it), {again}",
        EXIT_DB: f"`library-identity doctor` says what the database lacks; {again} once it "
                 "passes",
        EXIT_LOCKED: f"nothing: the run in progress carries on; {again} after it, if needed",
    }[code]
    kept = saved or ("nothing: this run did not start" if code == EXIT_LOCKED
                     else "nothing was written")
    return f"Saved: {kept}. Next: {then}."


def exit_code_of(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and message for a failure the loader knows, None for a bug."""
    message = str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, PreflightFailed):
        return EXIT_DB, message
    if isinstance(exc, RunLocked):
        return EXIT_LOCKED, message
    if isinstance(exc, LMLError | LMLUnavailable):
        return EXIT_LML, message
    if isinstance(exc, ConfigurationError):
        return EXIT_USAGE, message
    if isinstance(exc, DatabaseError):
        return EXIT_DB, message
    # A process that never loaded psycopg (`--help`, a failure before any connection)
    # cannot hold one of its errors.
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return EXIT_DB, f"the database user lacks a privilege: {message.splitlines()[0]}"
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return EXIT_DB, f"database unavailable: {message.strip().splitlines()[0]}"
    if isinstance(exc, DbtError):
        if any(marker in message.lower() for marker in _DBT_DATABASE_FAILURES):
            return EXIT_DB, f"database unavailable or refused dbt: {message}"
        return EXIT_GATE, message
    if isinstance(exc, InvariantViolation | StationLive):
        return EXIT_GATE, message
    if isinstance(exc, SeedError | NoOnAirLog):
        return EXIT_USAGE, message
    return None
