"""LML's limits and the bounds of the client's settings: plain values the command line
declares its options with, apart from the HTTP client, so that `--help` loads no HTTP
stack."""

from __future__ import annotations

from urllib.parse import urlsplit

LML_BULK_RESOLVE_CAP = 1000
# A server asking for a longer pause fails the call instead of stalling the run.
RETRY_AFTER_MAX_S = 120.0
# The pacing a client takes: slower than one call every 100 minutes, or a deadline past a
# day, is no setting a run can use (and past what timers and sockets can count in).
MIN_REQUESTS_PER_MINUTE = 0.01
MAX_TIMEOUT_S = 86_400.0
# How long a job waits for LML to come back mid-run before it stops (lml.outage).
DEFAULT_BUDGET_S = 300.0


def check_settings(base_url: str, api_key: str | None) -> None:
    """Refuse an LML URL that is not http(s) and a key no HTTP header can carry (the
    message never quotes the key)."""
    parts = urlsplit(base_url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("LML_URL must be an http:// or https:// URL with a host, e.g. "
                         "https://lml.example")
    if api_key is not None and not (api_key.isascii() and api_key.isprintable()
                                    and " " not in api_key and api_key):
        raise ValueError("LML_API_KEY must be printable ASCII without spaces or line breaks "
                         "(check for a stray newline or quote around the key)")
