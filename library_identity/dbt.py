"""Runs dbt in-process against the same database as the loader."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from library_identity import paths
from library_identity.db import Database
from library_identity.errors import DbtError

# Vars read only when a node runs (in model and test bodies, never in config() calls,
# YAML or dbt_project.yml): a manifest parsed without them serves every value of them.
# tests/test_dbt_parse.py proves it by parsing with other values and comparing.
EXECUTION_VARS = frozenset({"candidate_mode", "stale_days", "unresolved_retry_days",
                            "merge_full_rebuild"})
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
    relations: tuple[str, ...] = ()  # the models it built, as quoted schema.name


@dataclass
class _Parsed:
    key: str
    manifest: Any
    seconds: float


_parsed: list[_Parsed] = []  # most recent last
_lock = threading.RLock()
_spent = [0.0, 0.0]  # seconds in dbt since the process started, and of them parsing


def time_spent(since: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """(seconds in dbt, of which parsing) in this process, or since an earlier reading."""
    with _lock:
        return _spent[0] - since[0], _spent[1] - since[1]


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


def _invoke(runner: Any, args: list[str]) -> Any:
    """dbtRunner.invoke, which returns every exception as its result's, a Ctrl-C included:
    that one is raised again, so a second Ctrl-C (or SIGTERM) stops the command at once
    (exit 130) instead of reading as a dbt failure with an empty message."""
    result = runner.invoke(args)
    if isinstance(result.exception, KeyboardInterrupt):
        raise KeyboardInterrupt
    return result


def _environment(db: Database) -> dict[str, str]:
    """The connection for profiles.yml, and where dbt writes: the state folder, never the
    (possibly read-only) installed project or the current directory."""
    return {**db.dbt_env(), "DBT_TARGET_PATH": str(paths.dbt_target_dir()),
            "DBT_LOG_PATH": str(paths.dbt_log_dir())}


def _project_args(dbt_vars: Mapping[str, Any] | None) -> list[str]:
    project = str(paths.PROJECT_DIR)
    args = ["--project-dir", project, "--profiles-dir", project]
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

    env = _environment(db)
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
            # No manifest.json: the parse lives in this process (and in dbt's own
            # partial-parse file, written either way); writing it costs about 0.5 s.
            result = _invoke(dbtRunner(), ["--log-level", "none", "parse", "--no-write-json",
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
    errors: list[str] = []

    def collect_errors(event: Any) -> None:
        # An operation's error reaches only the event log (its result has no message).
        if event.info.level == "error" and event.info.msg:
            errors.append(str(event.info.msg))

    with _lock:
        reuse = reuse_parse and bool(args) and args[0] in _MANIFEST_COMMANDS
        parsed, parse_seconds = manifest(db, dbt_vars) if reuse else (None, 0.0)
        with _environ(_environment(db)):
            result = _invoke(dbtRunner(manifest=parsed, callbacks=[collect_errors]), cli_args)
    failures: list[str] = []
    warnings: list[str] = []
    relations: list[str] = []
    for node_result in getattr(result.result, "results", None) or []:
        status = str(getattr(node_result, "status", ""))
        node = getattr(node_result, "node", None)
        name = (getattr(node, "unique_id", None)
                or getattr(node_result, "unique_id", None) or "dbt")
        if status == "success" and str(getattr(node, "resource_type", "")) == "model":
            relations.append(f'"{node.schema}"."{node.alias}"')
        message = getattr(node_result, "message", "") or ""
        if not message and status == "error" and errors:
            message = " ".join(errors)
        if status in ("error", "fail", "runtime error"):
            failures.append(f"{name}: {status} {message}".strip())
        elif status == "warn":
            warnings.append(f"{name}: {message}".strip())
    if result.exception is not None:
        failures.append(f"dbt: {result.exception}")
    seconds = time.perf_counter() - started
    with _lock:
        _spent[0] += seconds
        _spent[1] += parse_seconds
    return DbtOutcome(success=bool(result.success), failures=failures, warnings=warnings,
                      seconds=seconds, parse_seconds=parse_seconds, relations=tuple(relations))


def compile_model(db: Database, model: str, dbt_vars: Mapping[str, Any] | None = None) -> str:
    """The compiled SQL of one model (`dbt compile`), which creates nothing."""
    return compile_models(db, [model], dbt_vars)[model]


def compile_models(db: Database, models: Sequence[str],
                   dbt_vars: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The compiled SQL of each model, in one `dbt compile` (which creates nothing)."""
    from dbt.cli.main import dbtRunner

    started = time.perf_counter()
    cli_args = ["--log-level", "none", "compile", "--select", *models,
                *_project_args(dbt_vars)]
    with _lock:
        parsed, parse_seconds = manifest(db, dbt_vars)
        with _environ(_environment(db)):
            result = _invoke(dbtRunner(manifest=parsed), cli_args)
        _spent[0] += time.perf_counter() - started
        _spent[1] += parse_seconds
    compiled = {getattr(r.node, "name", None): getattr(r.node, "compiled_code", None)
                for r in getattr(result.result, "results", None) or []}
    missing = [m for m in models if not compiled.get(m)]
    if not result.success or missing:
        raise DbtError(f"dbt could not compile {', '.join(missing or models)}: "
                       f"{result.exception or 'no SQL'}")
    return {m: str(compiled[m]) for m in models}
