"""After landing: dbt merges the latest verdicts into the identity tables and runs the
data-quality gates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loader.db import Database
from loader.dbt import DbtOutcome, run_dbt

# Everything except the loader's input views, which the next run rebuilds anyway.
MERGE_SELECTOR = ["build", "--exclude", "library_candidates"]


def merge(db: Database, dbt_vars: Mapping[str, Any]) -> DbtOutcome:
    return run_dbt(db, MERGE_SELECTOR, dbt_vars)
