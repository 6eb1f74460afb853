"""A resolve pays for dbt only when it has work: with the deployed candidates current and
nothing to merge it reads the view as it is and never loads dbt; a changed model, a
changed var or a view rebuilt by another dbt run is built again before it is read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import STANDIN_KEY

from library_identity import dbt, dbt_builds, dbt_names, paths
from library_identity.db import Database
from library_identity.demo.standin.server import StandIn
from library_identity.lml.client import LMLClient
from library_identity.resolve import candidates
from library_identity.resolve.resolve_job import ResolveOptions, ResolveResult, resolve

N_ROWS = 600

# The command line in a fresh process; its last stderr line says whether dbt was loaded.
PROBE = """
import json, sys
sys.argv = ["library-identity", *json.loads(sys.argv[1])]
from library_identity.__main__ import run
try:
    run()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in sys.modules if m == "dbt" or m.startswith("dbt."))
print(json.dumps({"code": code, "dbt_modules": loaded, "sentry": "sentry_sdk" in sys.modules}),
      file=sys.stderr)
"""


def run(db: Database, standin: StandIn, *, merge: bool = True, **options: Any
        ) -> ResolveResult:
    with LMLClient(base_url=standin.url, api_key=STANDIN_KEY) as client:
        return resolve(db, client, ResolveOptions(**options), merge=merge)


def scalar(db: Database, query: str, *params: Any) -> Any:
    with db.connect() as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def age(db: Database, ids: list[int], days: int) -> None:
    """Move every time the candidate rules read for these rows `days` into the past."""
    shift = f"interval '{days} days'"
    latest = dbt_names.qualified(dbt_names.VERDICT_STATE)
    with db.connect() as conn:
        conn.execute(f"update identity_loader.raw_verdicts set attempted_at = attempted_at "
                     f"- {shift} where library_id = any(%s)", (ids,))
        conn.execute(f"update {latest} set latest_attempted_at = latest_attempted_at - {shift}, "
                     f"last_resolved_verdict_at = last_resolved_verdict_at - {shift} "
                     "where library_id = any(%s)", (ids,))
        conn.execute(f"update wxyc_schema.library_identity set last_verified_at = "
                     f"last_verified_at - {shift} where library_id = any(%s)", (ids,))
        conn.execute(f"update wxyc_schema.library set unresolved_attempted_at = "
                     f"unresolved_attempted_at - {shift} where id = any(%s)", (ids,))


def test_a_run_with_nothing_due_reads_the_deployed_view_and_never_loads_dbt(
        db: Database, standin: StandIn) -> None:
    first = run(db, standin)
    assert first.status == "succeeded" and first.counters.total.scanned > 0
    assert first.merge is not None and first.merge.merge_id is not None
    env = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(["resolve", "--json", "--no-progress"])],
        env={**env, "DATABASE_URL": db.conninfo, "LML_URL": standin.url,
             "LML_API_KEY": STANDIN_KEY}, capture_output=True, text=True, timeout=300)
    probe = json.loads(proc.stderr.strip().splitlines()[-1])
    # Neither dbt nor, without a DSN, Sentry was loaded.
    assert probe == {"code": 0, "dbt_modules": [], "sentry": False}, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["candidates_from"] == "deployed"
    assert summary["counters"]["total"]["scanned"] == 0
    assert summary["timings"]["dbt_s"] == summary["timings"]["dbt_parse_s"] == 0
    assert summary["merge"] == {"success": True, "merge_id": None, "counts": {},
                                "skipped": {}, "failures": [], "warnings": []}
    recorded = scalar(db, "select counters -> 'dbt' from identity_loader.runs "
                          "where run_id = %s", summary["run_id"])
    assert recorded == {"candidates": "deployed", "seconds": 0.0, "parse_seconds": 0.0}
    # The first run's record says dbt merged it.
    assert scalar(db, "select (counters -> 'dbt' ->> 'seconds')::float from "
                      "identity_loader.runs where run_id = %s", first.run_id) > 0


def test_verdicts_not_merged_yet_are_taken_in_before_the_candidates_are_read(
        db: Database, standin: StandIn) -> None:
    landed = run(db, standin, merge=False)
    assert landed.counters.total.scanned > 0
    # The verdict state the view reads has not taken them in: dbt builds first, and
    # none of the rows answered comes back.
    again = run(db, standin, merge=False)
    assert again.candidates_from == "built"
    assert again.counters.total.scanned == 0


def test_a_changed_stale_window_is_honoured_without_a_stale_view(
        db: Database, standin: StandIn) -> None:
    run(db, standin)
    aged = [row[0] for row in _rows(db, "select library_id from identity_loader.raw_verdicts "
                                        "order by library_id limit 30")]
    age(db, aged, 3)
    default = run(db, standin)
    assert (default.candidates_from, default.counters.total.scanned) == ("deployed", 0)
    assert default.timings["dbt_s"] == 0
    shorter = run(db, standin, stale_days=2, unresolved_retry_days=2)
    assert shorter.candidates_from == "built"
    assert shorter.counters.total.scanned == len(aged)
    age(db, aged, 3)
    back = run(db, standin)  # the 7-day windows again: the view is rebuilt for them
    assert (back.candidates_from, back.counters.total.scanned) == ("built", 0)
    # Another dbt run that rebuilds the view for other windows is noticed too.
    assert candidates.deployed(db, ResolveOptions().dbt_vars())
    rebuilt = dbt.run_dbt(db, ["run", "--select", dbt_names.LIBRARY_CANDIDATES],
                          {"stale_days": 2, "unresolved_retry_days": 2})
    assert rebuilt.success, rebuilt.failures
    assert not candidates.deployed(db, ResolveOptions().dbt_vars())
    after = run(db, standin)
    assert (after.candidates_from, after.counters.total.scanned) == ("built", 0)


def test_a_changed_model_is_built_before_it_is_read(
        db: Database, standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    for name in ("dbt_project.yml", "profiles.yml", "selectors.yml"):
        project.mkdir(exist_ok=True)
        shutil.copy(paths.PROJECT_DIR / name, project / name)
    for folder in ("models", "macros", "seeds", "tests/generic", "tests/singular"):
        shutil.copytree(paths.PROJECT_DIR / folder, project / folder)
    model = project / "models" / "marts" / "loader" / "library_candidates.sql"
    text = model.read_text(encoding="utf-8")
    assert "where {{ mode }}_reason is not null" in text
    model.write_text(text.replace("where {{ mode }}_reason is not null",
                                  "where {{ mode }}_reason is not null and library_id % 3 = 0"),
                     encoding="utf-8")
    vars_ = ResolveOptions().dbt_vars()
    assert dbt_builds.project_stamp(vars_, project) != dbt_builds.project_stamp(vars_)
    monkeypatch.setenv(paths.STATE_DIR_ENV, str(tmp_path / "state"))
    monkeypatch.setattr(paths, "PROJECT_DIR", project)
    assert not candidates.deployed(db, vars_)
    result = run(db, standin, merge=False)
    assert result.candidates_from == "built"
    assert result.counters.total.scanned == scalar(
        db, "select count(*) from wxyc_schema.library where artist_name is not null "
            "and mod(id, 3) = 0")


def _rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(query).fetchall()
