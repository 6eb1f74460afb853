"""One place that knows which strings are secret and how to scrub them from text."""

from __future__ import annotations

import re
from collections.abc import Iterable

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@\s]+)@", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<k>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)
_BEARER = re.compile(r"(?P<k>\bbearer\s+)(?P<tok>[^\s\"',]+)", re.I)
_SECRETS: set[str] = set()

MASK = "***"


def register(*values: str | None) -> None:
    """Remember values (API keys, DSN passwords) that must never be printed."""
    for value in values:
        if value and len(value) >= 4:
            _SECRETS.add(value)


def registered() -> Iterable[str]:
    return tuple(_SECRETS)


def scrub(text: str) -> str:
    """Mask registered secrets, URL passwords, password= pairs and bearer tokens."""
    if not text:
        return text
    for value in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}:{MASK}@", text)
    text = _KEYWORD_PASSWORD.sub(lambda m: f"{m.group('k')}{MASK}", text)
    return _BEARER.sub(lambda m: f"{m.group('k')}{MASK}", text)
