"""Offline stand-in for dbt's `exceptions` context object, so that sqlfluff's jinja
templater can render macros that raise on bad input."""


def raise_compiler_error(message: str = "") -> str:
    return ""


def warn(message: str = "") -> str:
    return ""
