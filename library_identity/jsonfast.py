"""The one JSON boundary: every body LML sends is parsed here, and every value landed from
it is encoded here.

`loads` takes orjson's fast path, and the standard library for what orjson refuses but a
row may still carry (integers beyond 64 bits, NaN, a lone surrogate escape), so one odd
value costs one row rather than a whole batch. Whatever the bytes, it returns a value or
raises ValueError: never a RecursionError or another type. Depth is bounded before the
standard library parses anything (orjson bounds its own at 1024).

`dumps` gives JSON text a jsonb column can hold, or raises NotJSON (a ValueError) saying
why not: NaN or Infinity, a lone surrogate, nesting deeper than LANDING_MAX_DEPTH, a
type JSON has no word for. NUL characters are left to `db.has_nul`, since some callers
drop them rather than refuse the value.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

import orjson

# What the standard-library fallback parses at most: deeper bodies are refused before
# parsing, well inside the interpreter's recursion limit. LML's answers nest 7 levels.
PARSE_MAX_DEPTH = 512
# orjson's encoder stops at 254 levels; the fallback encoder is held to the same bound, so
# a value lands or not whichever encoder took it.
LANDING_MAX_DEPTH = 254

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class NotJSON(ValueError):
    """A value no jsonb column can hold."""


class _NotANumber:
    """Stands for NaN, Infinity or a float beyond double range: no encoder accepts it, so
    the result carrying it is refused when landed, and no check takes it for a number."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def depth(text: bytes | str) -> int:
    """How deeply arrays and objects nest in JSON text (brackets inside strings aside)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    steps = [_STEP[b] for b in _STRING.sub(b'""', data) if b in _STEP]
    return max(accumulate(steps), default=0)


def _float(text: str) -> float | _NotANumber:
    value = float(text)
    return value if math.isfinite(value) else _NotANumber(text)


def loads(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    if depth(body) > PARSE_MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {PARSE_MAX_DEPTH} levels")
    try:
        return json.loads(body, parse_constant=_NotANumber, parse_float=_float)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"not JSON ({type(exc).__name__})") from None


def dumps(value: Any) -> str:
    """Compact JSON text (NUL characters, if any, stay escaped: see db.has_nul)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # beyond 64 bits, a surrogate, too deep, or a stand-in for NaN
        pass
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except RecursionError:
        raise NotJSON(f"nested deeper than {LANDING_MAX_DEPTH} levels") from None
    except (TypeError, ValueError):
        raise NotJSON("NaN, Infinity or a number beyond double range") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NotJSON("a lone surrogate in a string") from None
    if depth(text) > LANDING_MAX_DEPTH:
        raise NotJSON(f"nested deeper than {LANDING_MAX_DEPTH} levels")
    return text
