"""dbt-project-evaluator's rules, applied to the parsed manifest with the project's own
conventions stated here; seeds/dbt_project_evaluator_exceptions.csv lists the findings the
project keeps, each with its reason. A finding not in that file fails the test, and so does
an exception that no longer matches a finding."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from library_identity import dbt
from library_identity.db import Database

ROOT = Path(__file__).resolve().parent.parent
EXCEPTIONS = ROOT / "seeds" / "dbt_project_evaluator_exceptions.csv"

# The project's conventions: the folder a model lives in fixes its prefix.
PREFIXES = {
    "staging": ("stg_",),
    "intermediate": ("int_",),
    "marts/station": ("wb_",),
    "marts/reports": ("rpt_",),
    "marts/loader": ("",),
    "marts/gates": ("",),
}
NOT_IN_MARTS = ("stg_", "int_")


@pytest.fixture(scope="module")
def manifest(make_database: Any) -> Any:
    db: Database = make_database()
    parsed, _ = dbt.manifest(db, {})
    return parsed


def _models(manifest: Any) -> dict[str, Any]:
    return {uid: node for uid, node in manifest.nodes.items()
            if node.resource_type.value == "model"}


def _folder(node: Any) -> str:
    parts = Path(node.original_file_path).parts[1:-1]  # below models/
    return "/".join(parts[:2]) if parts and parts[0] == "marts" else (parts[0] if parts else "")


def findings(manifest: Any) -> set[tuple[str, str]]:
    """(rule, node name) for every finding."""
    found: set[tuple[str, str]] = set()
    models = _models(manifest)
    tests_by_model: dict[str, list[Any]] = defaultdict(list)
    for node in manifest.nodes.values():
        if node.resource_type.value == "test":
            for parent in node.depends_on.nodes:
                tests_by_model[parent].append(node)
    source_readers: dict[str, list[str]] = defaultdict(list)

    for uid, node in models.items():
        name, folder = node.name, _folder(node)
        parents = node.depends_on.nodes
        sources = [p for p in parents if p.startswith("source.")]
        for source in sources:
            source_readers[source].append(name)
        # Naming: the folder's prefix.
        prefixes = PREFIXES.get(folder)
        if prefixes is None:
            found.add(("model_in_unknown_folder", name))
        elif not any(name.startswith(p) for p in prefixes) or (
                folder.startswith("marts") and name.startswith(NOT_IN_MARTS)):
            found.add(("model_naming_convention", name))
        if folder == "staging" and not name.startswith("stg_"):
            found.add(("model_naming_convention", name))
        # Only staging models read sources, and a staging model reads nothing else.
        if sources and folder != "staging":
            found.add(("direct_join_to_source" if len(sources) < len(parents)
                       else "source_read_outside_staging", name))
        if folder == "staging" and len(sources) < len(parents):
            found.add(("staging_depends_on_model", name))
        # Every model documented, and its grain tested.
        if not node.description.strip():
            found.add(("undocumented_model", name))
        if not _has_primary_key_test(node, tests_by_model[uid]):
            found.add(("missing_primary_key_tests", name))

    # Source fan-out: one staging model per source table.
    for source, readers in source_readers.items():
        if len(readers) > 1:
            found.add(("source_fanout", source.split(".", 2)[2]))

    # Exposures depend on public models only.
    for exposure in manifest.exposures.values():
        for parent in exposure.depends_on.nodes:
            node = manifest.nodes.get(parent)
            if node is not None and node.resource_type.value == "model" \
                    and str(node.access.value) != "public":
                found.add(("exposure_parent_not_public", node.name))
    return found


def _has_primary_key_test(node: Any, tests: list[Any]) -> bool:
    """unique and not_null on one column, a unique combination of columns, or an enforced
    contract's primary key."""
    if any(c.type.value == "primary_key" for c in node.constraints or ()):
        return True
    for column in node.columns.values():
        if any(c.type.value == "primary_key" for c in column.constraints or ()):
            return True
    by_column: dict[str, set[str]] = defaultdict(set)
    for test in tests:
        meta = getattr(test, "test_metadata", None)
        if meta is None:
            continue
        if meta.name in ("unique_combination_of_columns", "unique_key"):
            return True
        column = getattr(test, "column_name", None)
        if column:
            by_column[column].add(meta.name)
    return any({"unique", "not_null"} <= names for names in by_column.values())


def exceptions() -> dict[tuple[str, str], str]:
    with EXCEPTIONS.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert all(row["reason"].strip() for row in rows), "every exception says why"
    return {(row["rule"], row["name"]): row["reason"] for row in rows}


def test_the_project_follows_the_evaluators_rules(manifest: Any) -> None:
    found, kept = findings(manifest), exceptions()
    unexplained = sorted(found - set(kept))
    assert not unexplained, f"findings without an exception and its reason: {unexplained}"
    stale = sorted(set(kept) - found)
    assert not stale, f"exceptions that match no finding any more: {stale}"


def test_the_rules_see_what_they_check(manifest: Any) -> None:
    """Each rule finds a planted breach (so a rule that checks nothing cannot pass)."""
    models = _models(manifest)
    staging = next(n for n in models.values() if n.name == "stg_station__library")
    mart = next(n for n in models.values() if n.name == "library_candidates")
    saved = (staging.name, staging.description, mart.depends_on.nodes[:])
    try:
        staging.name = "station_library"
        staging.description = ""
        mart.depends_on.nodes.append("source.library_identity.station.library")
        found = findings(manifest)
    finally:
        staging.name, staging.description, mart.depends_on.nodes[:] = saved
    assert ("model_naming_convention", "station_library") in found
    assert ("undocumented_model", "station_library") in found
    assert ("direct_join_to_source", "library_candidates") in found
    assert ("source_fanout", "station.library") in found
