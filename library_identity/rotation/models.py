"""The rotation's dbt models: the refresh candidates (distinct identities of active
rotation rows) and the coverage counts, built as views and read by the rotation jobs."""

from __future__ import annotations

import psycopg
from psycopg import sql

from library_identity import dbt_names
from library_identity.db import Database
from library_identity.dbt import compile_models, run_dbt
from library_identity.dbt_names import ROTATION_COVERAGE, ROTATION_REFRESH_CANDIDATES
from library_identity.errors import DbtError
from library_identity.rotation.options import STATEMENT_TIMEOUT_MS

MODELS = [ROTATION_REFRESH_CANDIDATES, ROTATION_COVERAGE]
WITH_PARENTS = [f"+{model}" for model in MODELS]


def build_models(db: Database) -> None:
    """Have dbt (re)build the two rotation models and what they read (all views)."""
    outcome = run_dbt(db, ["run", "--select", *WITH_PARENTS])
    if not outcome.success:
        raise DbtError("dbt could not build the rotation models: " + "; ".join(outcome.failures))


def read_candidates(conn: psycopg.Connection, compiled: dict[str, str] | None = None
                    ) -> tuple[list[int], int]:
    """(distinct identity ids of active rotation rows in ascending order, active rows that
    have no identity yet), from the two models, or from their compiled SQL."""
    def source(model: str) -> sql.Composable:
        if compiled is None:
            return dbt_names.relation(model)
        return dbt_names.compiled_view(conn, model, compiled[model])

    rows = conn.execute(sql.SQL("select lml_identity_id from {} where lml_identity_id is not "
                                "null order by 1").format(
        source(ROTATION_REFRESH_CANDIDATES))).fetchall()
    row = conn.execute(sql.SQL("select active_without_lml_identity from {}").format(
        source(ROTATION_COVERAGE))).fetchone()
    return list(dict.fromkeys(int(r[0]) for r in rows)), int(row[0]) if row and row[0] else 0


def read_candidates_without_building(db: Database) -> tuple[list[int], int]:
    """The candidates from the models' compiled SQL, so a dry run rebuilds nothing. The
    views they read are created first only where they do not exist yet (definitions, no
    data)."""
    compiled = compile_models(db, MODELS)
    for attempt in (1, 2):
        with db.connect(statement_timeout_ms=STATEMENT_TIMEOUT_MS,
                        application_name="library-identity:reader") as conn:
            try:
                return read_candidates(conn, compiled)
            except psycopg.errors.UndefinedTable:
                if attempt == 2:
                    raise
        outcome = run_dbt(db, ["run", "--select", *WITH_PARENTS, "--exclude", *MODELS])
        if not outcome.success:
            raise DbtError("dbt could not build the rotation models' inputs: "
                           + "; ".join(outcome.failures))
    raise AssertionError("unreachable")
