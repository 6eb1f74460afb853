"""JSON for the hot paths: orjson, with the standard library behind it for the values
orjson refuses but JSON allows (integers beyond 64 bits), so such a value fails one row
rather than a whole batch."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pydantic_core


def loads(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def dumps(value: Any) -> str:
    """Compact JSON text (NUL characters, if any, stay escaped: see library_identity.db.has_nul)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return pydantic_core.to_json(value).decode()
