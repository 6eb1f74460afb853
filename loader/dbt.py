"""Runs dbt in-process against the same database as the loader."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loader.db import Database
from loader.dbt_names import PROJECT_DIR
from loader.errors import DbtError


@dataclass(frozen=True)
class DbtOutcome:
    success: bool
    failures: list[str]
    warnings: list[str]


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_dbt(db: Database, args: Sequence[str], dbt_vars: Mapping[str, Any] | None = None,
            *, quiet: bool = True) -> DbtOutcome:
    """Invoke `dbt <args>` for this project; returns what passed, failed and warned."""
    from dbt.cli.main import dbtRunner

    cli_args = [*args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    if dbt_vars:
        cli_args += ["--vars", json.dumps(dict(dbt_vars))]
    if quiet:
        # Nothing on stdout (it may carry a JSON report); failures come back in DbtOutcome.
        cli_args = ["--log-level", "none", *cli_args]
    errors: list[str] = []

    def collect_errors(event: Any) -> None:
        # An operation's error reaches only the event log (its result has no message).
        if event.info.level == "error" and event.info.msg:
            errors.append(str(event.info.msg))

    with _environ(db.dbt_env()):
        result = dbtRunner(callbacks=[collect_errors]).invoke(cli_args)
    failures: list[str] = []
    warnings: list[str] = []
    for node_result in getattr(result.result, "results", None) or []:
        status = str(getattr(node_result, "status", ""))
        name = (getattr(getattr(node_result, "node", None), "unique_id", None)
                or getattr(node_result, "unique_id", None) or "dbt")
        message = getattr(node_result, "message", "") or ""
        if not message and status == "error" and errors:
            message = " ".join(errors)
        if status in ("error", "fail", "runtime error"):
            failures.append(f"{name}: {status} {message}".strip())
        elif status == "warn":
            warnings.append(f"{name}: {message}".strip())
    if result.exception is not None:
        failures.append(f"dbt: {result.exception}")
    return DbtOutcome(success=bool(result.success), failures=failures, warnings=warnings)


def compile_model(db: Database, model: str, dbt_vars: Mapping[str, Any] | None = None) -> str:
    """The compiled SQL of one model (`dbt compile`), which creates nothing."""
    return compile_models(db, [model], dbt_vars)[model]


def compile_models(db: Database, models: Sequence[str],
                   dbt_vars: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The compiled SQL of each model, in one `dbt compile` (which creates nothing)."""
    from dbt.cli.main import dbtRunner

    cli_args = ["--log-level", "none", "compile", "--select", *models,
                "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    if dbt_vars:
        cli_args += ["--vars", json.dumps(dict(dbt_vars))]
    with _environ(db.dbt_env()):
        result = dbtRunner().invoke(cli_args)
    compiled = {getattr(r.node, "name", None): getattr(r.node, "compiled_code", None)
                for r in getattr(result.result, "results", None) or []}
    missing = [m for m in models if not compiled.get(m)]
    if not result.success or missing:
        raise DbtError(f"dbt could not compile {', '.join(missing or models)}: "
                       f"{result.exception or 'no SQL'}")
    return {m: str(compiled[m]) for m in models}
