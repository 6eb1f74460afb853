"""Job settings declared once: each field of a job's options carries its default, its
range, its help text and the environment variable that may set it (`setting`); the
command line's options (`library_identity.cli.app.options_from`), the config file's keys
and the range checks (`check_ranges`) derive from that declaration. A field's option is
the field's name with dashes, without the `_s` of a field in seconds (`timeout_s`:
`--timeout`)."""

from __future__ import annotations

import math
import typing
from dataclasses import Field, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Setting:
    help: str
    min: float | None = None
    max: float | None = None
    why: str = ""  # said after a range, e.g. "LML's cap"
    env: str | None = None  # the environment variable that sets it, below the flag

    def check(self, value: float, name: str = "") -> None:
        """ValueError when `value` is outside the range (or not a finite number); the
        message starts with `name` when given."""
        name = f"{name} " if name else ""
        low, high = self.min, self.max
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name}must be a finite number, got {value}")
        if low is not None and high is not None and not low <= value <= high:
            why = f" ({self.why})" if self.why else ""
            raise ValueError(f"{name}must be between {_num(low)} and {_num(high)}{why}, "
                             f"got {value}")
        if low is not None and value < low:
            raise ValueError(f"{name}must be at least {_num(low)}, got {value}")
        if high is not None and value > high:
            raise ValueError(f"{name}must be at most {_num(high)}, got {value}")

    def describe_range(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{_num(self.min)}..{_num(self.max)}"
        if self.min is not None:
            return f">= {_num(self.min)}"
        return "" if self.max is None else f"<= {_num(self.max)}"


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None,
            why: str = "", env: str | None = None) -> Any:
    """A dataclass field with its default, range (inclusive), help text and environment
    variable."""
    return field(default=default, metadata={
        "setting": Setting(help=help, min=min, max=max, why=why, env=env)})


def _num(value: float) -> str:
    return f"{value:g}"


def flag_name(field_name: str) -> str:
    return field_name.removesuffix("_s").replace("_", "-")


def setting_of(cls: type, name: str) -> tuple[Field[Any], Setting, type]:
    """The field, its declaration and its value type (int or float; `int | None` is int)."""
    found = {f.name: f for f in fields(cls)}[name]
    hint = typing.get_type_hints(cls)[name]
    kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
    return found, found.metadata["setting"], kind


def check_ranges(options: Any) -> None:
    """Raise ValueError naming the option (as the command line spells it) for a value
    outside its declared range; None (unset) always passes."""
    for f in fields(options):
        declared: Setting | None = f.metadata.get("setting")
        value = getattr(options, f.name)
        if declared is not None and value is not None:
            declared.check(value, flag_name(f.name))
