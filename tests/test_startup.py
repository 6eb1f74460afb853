"""What the command line loads to start: `--help`, a command's `--help` and a usage error
load no dbt, no charts and no report; each command loads them when it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Loaded only by the commands that use them.
HEAVY = ("dbt", "matplotlib", "numpy", "agate", "library_identity.report.data",
         "library_identity.report.page", "library_identity.report.charts",
         "library_identity.resolve.resolve_job", "library_identity.jobs.job")
# The drivers and clients a command loads when it connects or calls LML.
CLIENTS = ("psycopg", "httpx", "sentry_sdk", "pydantic", "yoyo")

LOADED = """
import json, sys
sys.argv = ["library-identity", *json.loads(sys.argv[1])]
from library_identity.__main__ import run
try:
    run()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(k for k, v in sys.modules.items() if v)}),
      file=sys.stderr)
"""


def loaded_by(*args: str) -> tuple[int, set[str]]:
    """The exit code of the command line with these arguments, and every module loaded
    when it ended, in a fresh process."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "LML_URL", "LML_API_KEY", "SENTRY_DSN")}
    proc = subprocess.run([sys.executable, "-c", LOADED, json.dumps(args)], env={
        **env, "LIBRARY_IDENTITY_CONFIG": "/dev/null"}, capture_output=True, text=True,
        timeout=120)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def roots(modules: set[str], wanted: tuple[str, ...]) -> list[str]:
    return sorted(w for w in wanted
                  if any(m == w or m.startswith(f"{w}.") for m in modules))


@pytest.mark.parametrize("args", [
    ("--help",), ("resolve", "--help"), ("doctor", "--help"), ("report", "--help"),
    ("rotation", "refresh", "--help"), ("merge", "--help"), ("demo", "--help"),
    ("resolve", "--batch-size", "0"),
])
def test_the_command_line_starts_without_dbt_or_the_report(args: tuple[str, ...]) -> None:
    code, modules = loaded_by(*args)
    assert code in (0, 2), code
    assert roots(modules, HEAVY) == []
    assert roots(modules, CLIENTS) == []


def test_the_probe_sees_what_a_command_loads() -> None:
    # The same probe on a command that connects: it does show the driver (and a test
    # above that finds nothing is not blind).
    code, modules = loaded_by("--database-url", "postgresql://nobody@127.0.0.1:1/none",
                              "migrate", "--status")
    assert code != 0
    assert "psycopg" in roots(modules, CLIENTS)
