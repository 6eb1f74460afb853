"""Runs dbt in-process against the same database as the loader."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loader.db import Database

PROJECT_DIR = Path(__file__).resolve().parent.parent


class DbtError(RuntimeError):
    """dbt failed; the message names the failing nodes."""


# Vars read only when a node runs (in model and test bodies, never in config() calls,
# YAML or dbt_project.yml): a manifest parsed without them serves every value of them.
# tests/test_dbt_parse.py proves it by parsing with other values and comparing.
EXECUTION_VARS = frozenset({"candidate_mode", "stale_days", "unresolved_retry_days",
                            "gate_run_id"})
# Commands that run on a parsed manifest; the others (parse, debug, deps, clean, ...)
# are invoked as they are.
_MANIFEST_COMMANDS = frozenset({"build", "run", "test", "compile", "run-operation", "seed",
                                "snapshot", "list", "ls", "show"})
_KEEP_MANIFESTS = 2  # a resolve needs one; tests switch databases


@dataclass(frozen=True)
class DbtOutcome:
    success: bool
    failures: list[str]
    warnings: list[str]
    seconds: float = 0.0  # wall time in dbt, parse included
    parse_seconds: float = 0.0  # of which parsing the project (0 when a parse was reused)


@dataclass
class _Parsed:
    key: str
    manifest: Any
    seconds: float


_parsed: list[_Parsed] = []  # most recent last
_lock = threading.RLock()


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


def _project_args(dbt_vars: Mapping[str, Any] | None) -> list[str]:
    args = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    if dbt_vars:
        args += ["--vars", json.dumps(dict(dbt_vars), sort_keys=True)]
    return args


def parse_vars(dbt_vars: Mapping[str, Any] | None) -> dict[str, Any]:
    """The vars that can change what a parse produces."""
    return {k: v for k, v in (dbt_vars or {}).items() if k not in EXECUTION_VARS}


def manifest(db: Database, dbt_vars: Mapping[str, Any] | None = None) -> tuple[Any, float]:
    """The project parsed for this database and these vars: parsed once per process (dbt's
    own partial parsing makes that parse fast when nothing changed since the last
    process), then reused. Returns (manifest, seconds spent parsing now)."""
    from dbt.cli.main import dbtRunner

    env = db.dbt_env()
    wanted = parse_vars(dbt_vars)
    key = json.dumps([wanted, sorted(env.items())], sort_keys=True, default=str)
    with _lock:
        for parsed in _parsed:
            if parsed.key == key:
                _parsed.remove(parsed)
                _parsed.append(parsed)
                return parsed.manifest, 0.0
        started = time.perf_counter()
        with _environ(env):
            result = dbtRunner().invoke(["--log-level", "none", "parse",
                                         *_project_args(wanted)])
        if not result.success or result.result is None:
            raise DbtError(f"dbt could not parse the project: {result.exception or 'failed'}")
        parsed = _Parsed(key, result.result, time.perf_counter() - started)
        _parsed.append(parsed)
        del _parsed[:-_KEEP_MANIFESTS]
        return parsed.manifest, parsed.seconds


def forget_manifests() -> None:
    """Drop the parsed manifests (after the project's files changed in this process)."""
    with _lock:
        _parsed.clear()


def run_dbt(db: Database, args: Sequence[str], dbt_vars: Mapping[str, Any] | None = None,
            *, quiet: bool = True, reuse_parse: bool = True) -> DbtOutcome:
    """Invoke `dbt <args>` for this project; returns what passed, failed and warned.

    Commands that run on a manifest share one parse per process and set of parse-relevant
    vars (see EXECUTION_VARS); reuse_parse=False invokes dbt as it is (for arguments that
    may carry their own vars)."""
    from dbt.cli.main import dbtRunner

    started = time.perf_counter()
    cli_args = [*args, *_project_args(dbt_vars)]
    if quiet:
        # Nothing on stdout (it may carry a JSON report); failures come back in DbtOutcome.
        cli_args = ["--log-level", "none", *cli_args]
    with _lock:
        reuse = reuse_parse and bool(args) and args[0] in _MANIFEST_COMMANDS
        parsed, parse_seconds = manifest(db, dbt_vars) if reuse else (None, 0.0)
        with _environ(db.dbt_env()):
            result = dbtRunner(manifest=parsed).invoke(cli_args)
    failures: list[str] = []
    warnings: list[str] = []
    for node_result in getattr(result.result, "results", None) or []:
        status = str(getattr(node_result, "status", ""))
        name = getattr(getattr(node_result, "node", None), "unique_id", "?")
        message = getattr(node_result, "message", "") or ""
        if status in ("error", "fail", "runtime error"):
            failures.append(f"{name}: {status} {message}".strip())
        elif status == "warn":
            warnings.append(f"{name}: {message}".strip())
    if result.exception is not None:
        failures.append(f"dbt: {result.exception}")
    return DbtOutcome(success=bool(result.success), failures=failures, warnings=warnings,
                      seconds=time.perf_counter() - started, parse_seconds=parse_seconds)


def compile_model(db: Database, model: str, dbt_vars: Mapping[str, Any] | None = None) -> str:
    """The compiled SQL of one model (`dbt compile`), which creates nothing."""
    from dbt.cli.main import dbtRunner

    cli_args = ["--log-level", "none", "compile", "--select", model, *_project_args(dbt_vars)]
    with _lock:
        parsed, _ = manifest(db, dbt_vars)
        with _environ(db.dbt_env()):
            result = dbtRunner(manifest=parsed).invoke(cli_args)
    nodes = [r.node for r in getattr(result.result, "results", None) or []
             if getattr(r.node, "name", None) == model]
    if not result.success or not nodes or not nodes[0].compiled_code:
        raise DbtError(f"dbt could not compile {model}: {result.exception or 'no SQL'}")
    return str(nodes[0].compiled_code)
