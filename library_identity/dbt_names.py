"""The names the loader and the dbt project share, in one place.

- The schema dbt builds the project's models in: `LIBRARY_IDENTITY_DBT_SCHEMA` (default
  `identity`). profiles.yml reads the same variable; `Database.dbt_env()` passes it to dbt
  and every reader here resolves a model through `relation()`, so the two never diverge.
- The models the loader reads, and the one seed (each declared as a dbt exposure in
  models/exposures.yml, so `dbt ls --select +exposure:…` shows what a reader depends on).
- The selectors of selectors.yml and the operation the merge runs.
- The vars the loader passes (declared, with their defaults, in dbt_project.yml), and
  those defaults read back from dbt_project.yml.
"""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING, Any

from library_identity.errors import ConfigurationError
from library_identity.paths import PROJECT_DIR

if TYPE_CHECKING:  # psycopg is loaded by what connects, not by the command line's names
    import psycopg
    from psycopg import sql

SCHEMA_ENV = "LIBRARY_IDENTITY_DBT_SCHEMA"
DEFAULT_SCHEMA = "identity"

# Models the loader reads (models/exposures.yml declares each).
LIBRARY_CANDIDATES = "library_candidates"
# The merge's incremental verdict state: `seed --replace` empties it with the log it describes.
VERDICT_STATE = "int_verdicts__latest"
IDENTITY_STATUS = "int_library__identity_status"
# The merge watermark (the last verdict an applied merge covered), computed once.
MERGE_WATERMARK = "int_merges__watermark"
ROTATION_REFRESH_CANDIDATES = "rotation_refresh_candidates"
ROTATION_COVERAGE = "rotation_coverage"
ROTATION_REFRESH_RESULTS = "stg_loader__rotation_refresh_results"
# A seed (seeds/reports/confidence_bands.csv), not a model: a selection that builds the reports
# must load it too (selectors reports and reports_with_inputs).
CONFIDENCE_BANDS = "confidence_bands"
REPORT_MODELS = (
    "rpt_library_coverage", "rpt_identity_by_method", "rpt_identity_by_source",
    "rpt_identity_age", "rpt_run_history", "rpt_run_churn", "rpt_rotation_coverage",
    "rpt_merge_skips", "rpt_library_merge_skipped", "rpt_station_anomalies",
    "rpt_alerts", "rpt_worklist", CONFIDENCE_BANDS,
)
READ_MODELS = (LIBRARY_CANDIDATES, IDENTITY_STATUS, VERDICT_STATE, MERGE_WATERMARK,
               ROTATION_REFRESH_CANDIDATES,
               ROTATION_COVERAGE, ROTATION_REFRESH_RESULTS, *REPORT_MODELS)

# selectors.yml
CANDIDATES_SELECTOR = "candidates"
MERGE_SELECTOR = "merge"
MERGE_WITH_INPUTS_SELECTOR = "merge_with_inputs"
GATES_SELECTOR = "gates"
REPORTS_SELECTOR = "reports"
REPORTS_WITH_INPUTS_SELECTOR = "reports_with_inputs"
SELECTORS = (CANDIDATES_SELECTOR, MERGE_SELECTOR, MERGE_WITH_INPUTS_SELECTOR, GATES_SELECTOR,
             REPORTS_SELECTOR, REPORTS_WITH_INPUTS_SELECTOR)
# `dbt build` of a reports selector: the views and the seed, without the audit tests.
REPORTS_RESOURCE_TYPES = ("--resource-type", "model", "--resource-type", "seed")

# macros/write_back.sql: applies the merge's change sets in one transaction.
WRITE_BACK_OPERATION = "apply_write_back"

# The vars the loader passes; dbt_project.yml declares each with its default.
CANDIDATE_MODE_VAR = "candidate_mode"
STALE_DAYS_VAR = "stale_days"
UNRESOLVED_RETRY_DAYS_VAR = "unresolved_retry_days"
FULL_REBUILD_VAR = "merge_full_rebuild"
PASSED_VARS = (CANDIDATE_MODE_VAR, STALE_DAYS_VAR, UNRESOLVED_RETRY_DAYS_VAR, FULL_REBUILD_VAR)


def schema() -> str:
    """The schema dbt builds the project's models in, read when it is needed (a test or
    a command may set the variable after import). profiles.yml hands it to dbt as it is,
    where SQL reads it unquoted: only a plain lower-case name means the same schema to
    dbt and to the loader (ConfigurationError otherwise)."""
    name = os.environ.get(SCHEMA_ENV) or DEFAULT_SCHEMA
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ConfigurationError(
            f"{SCHEMA_ENV} must be a plain lower-case schema name (letters a-z, digits and _, "
            f"not starting with a digit, at most 63 characters), got {name!r}")
    return name


def relation(model: str) -> sql.Identifier:
    """A model the loader reads, qualified with the dbt schema."""
    from psycopg import sql

    return sql.Identifier(schema(), model)


def qualified(model: str) -> str:
    """The same as quoted text, for to_regclass()."""
    return f'"{schema()}"."{model}"'


def compiled_view(conn: psycopg.Connection, model: str, code: str) -> sql.Composable:
    """A model's compiled SQL as a temporary view on `conn`, in place of its relation (a
    dry run reads the model without building it). The view is created without parameters,
    so the SQL reaches the server exactly as dbt compiled it."""
    from psycopg import sql

    name = f"compiled_{model}"
    conn.execute(sql.SQL("create or replace temp view {} as {}").format(
        sql.Identifier(name), sql.SQL(code)))
    return sql.Identifier("pg_temp", name)


@functools.cache
def project_vars() -> dict[str, Any]:
    """The vars of dbt_project.yml: the one home of the rules SQL and Python share (the
    0.70 confidence gate, the rotation coverage gate, the candidate defaults, ...)."""
    import yaml

    with (PROJECT_DIR / "dbt_project.yml").open(encoding="utf-8") as handle:
        return dict(yaml.safe_load(handle).get("vars") or {})
