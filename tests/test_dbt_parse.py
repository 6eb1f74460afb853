"""dbt parses the project once per process: the parse is shared by every command and by
every value of the vars that are only read when a node runs."""

from __future__ import annotations

from typing import Any

from library_identity import dbt, paths
from library_identity.db import Database

OTHER_VALUES = {"candidate_mode": "recheck", "stale_days": 30, "unresolved_retry_days": 2,
                "merge_full_rebuild": True}


def _fresh_parse(db: Database, dbt_vars: dict[str, Any]) -> Any:
    """A parse that ignores the rule under test: every var goes to the parser."""
    from dbt.cli.main import dbtRunner

    with dbt._environ(dbt._environment(db)):
        result = dbtRunner().invoke(["--log-level", "none", "parse",
                                     "--vars", dbt.json.dumps(dbt_vars),
                                     "--project-dir", str(paths.PROJECT_DIR),
                                     "--profiles-dir", str(paths.PROJECT_DIR)])
    assert result.success
    return _comparable(result.result.writable_manifest().to_dict())


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()
                if k not in ("created_at", "metadata")}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def test_execution_vars_do_not_change_the_parse(empty_db: Database) -> None:
    assert set(OTHER_VALUES) == dbt.EXECUTION_VARS
    assert _fresh_parse(empty_db, {}) == _fresh_parse(empty_db, OTHER_VALUES)


def test_a_parse_time_var_gets_its_own_parse(empty_db: Database) -> None:
    dbt.forget_manifests()
    gate = "test.library_identity.assert_library_identity_gate"
    default, parsed_now = dbt.manifest(empty_db, {"candidate_mode": "full"})
    assert parsed_now > 0
    assert default.nodes[gate].config.severity.lower() == "warn"
    strict, parsed_now = dbt.manifest(empty_db, {"identity_gate_severity": "error"})
    assert parsed_now > 0 and strict is not default
    assert strict.nodes[gate].config.severity.lower() == "error"
    again, parsed_now = dbt.manifest(empty_db, {"candidate_mode": "legacy", "stale_days": 3})
    assert again is default and parsed_now == 0.0


def test_one_parse_serves_every_command_and_execution_var(migrated_db: Database) -> None:
    dbt.forget_manifests()
    first = dbt.run_dbt(migrated_db, ["run", "--select", "+library_candidates"],
                        {"candidate_mode": "full"})
    assert first.success and first.parse_seconds > 0
    legacy = dbt.compile_model(migrated_db, "library_candidates", {"candidate_mode": "legacy"})
    full = dbt.compile_model(migrated_db, "library_candidates", {"candidate_mode": "full"})
    assert legacy != full  # the reused parse still renders each run's vars
    second = dbt.run_dbt(migrated_db, ["run", "--select", "+library_candidates"],
                         {"candidate_mode": "recheck", "stale_days": 3})
    assert second.success and second.parse_seconds == 0.0
    bad = dbt.run_dbt(migrated_db, ["run", "--select", "library_candidates"],
                      {"candidate_mode": "sideways"})
    assert not bad.success and bad.parse_seconds == 0.0
    assert "candidate_mode must be one of" in "\n".join(bad.failures)
