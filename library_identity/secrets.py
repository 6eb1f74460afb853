"""One place that knows which strings are secret and how to scrub them from text."""

from __future__ import annotations

import re

# The password of a URL's user info: everything after the user's colon up to the last @
# before the path (a raw @ in a password is still the password's, as urlsplit reads it).
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/?#@\s]*):(?P<pw>[^/?#\s]+)@", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<k>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)
_BEARER = re.compile(r"(?P<k>\bbearer\s+)(?P<tok>[^\s\"',]+)", re.I)
_SECRETS: set[str] = set()

MASK = "***"
# The shortest piece of a secret masked where a text was cut (a shorter one could be any
# word); a secret is only registered when it is at least this long.
CUT_PIECE_MIN = 4
_ELLIPSES = ("...", "\u2026")


def register(*values: str | None) -> None:
    """Remember values (API keys, DSN passwords) that must never be printed."""
    for value in values:
        if value and len(value) >= CUT_PIECE_MIN:
            _SECRETS.add(value)


def url_password(url: str | None) -> str | None:
    """The password in a URL's user info (`scheme://user:password@host`), if any; read
    without parsing the URL, so even a URL nothing else can parse gives it up."""
    match = _URL_PASSWORD.search(url or "")
    return match.group("pw") if match else None


def mask_url(text: str) -> str:
    """The one rule for showing a URL (or text holding URLs): every password in a user
    info masked, the user and host kept."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}:{MASK}@", text)


def scrub(text: str) -> str:
    """Mask registered secrets, URL passwords, password= pairs and bearer tokens."""
    if not text:
        return text
    for value in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = mask_url(text)
    text = _KEYWORD_PASSWORD.sub(lambda m: f"{m.group('k')}{MASK}", text)
    return _mask_cut(_BEARER.sub(lambda m: f"{m.group('k')}{MASK}", text))


def _mask_cut(text: str) -> str:
    """Mask the start of a secret left at the end of a text that someone else cut
    (e.g. a message or an event field truncated before it reached us)."""
    body, tail = text, ""
    for ellipsis in _ELLIPSES:
        if text.endswith(ellipsis):
            body, tail = text[: -len(ellipsis)], ellipsis
            break
    for value in _SECRETS:
        for n in range(len(value) - 1, CUT_PIECE_MIN - 1, -1):
            if body.endswith(value[:n]):
                return body[:-n] + MASK + tail
    return text
