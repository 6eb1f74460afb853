"""After landing: dbt computes the merge's change sets and checks them (the gates), then
one write-back applies them to the station's tables in a single transaction."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from library_identity import dbt_names, telemetry
from library_identity.db import LOADER_SCHEMA, Database
from library_identity.dbt import DbtOutcome, run_dbt

log = logging.getLogger(__name__)

# The station's compilation_cta_match_gap rule: at least this many track keys match no
# credit row, and they are at least half of the track keys (rpt_alerts reads the same var).
COMPILATION_GAP_MIN_KEYS = int(dbt_names.project_vars()["cta_match_gap_min_keys"])
CTA_MATCH_GAP_STEP = "compilation_cta_match_gap"


@dataclass(frozen=True)
class MergeOutcome(DbtOutcome):
    merge_id: int | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    skips: dict[str, int] = field(default_factory=dict)


def _latest_merge_id(db: Database) -> int:
    with db.connect() as conn:
        row = conn.execute(f"select coalesce(max(merge_id), 0) from {LOADER_SCHEMA}.merges"
                           ).fetchone()
    return int(row[0]) if row else 0


def _applied(db: Database, after: int) -> tuple[int | None, dict[str, Any], dict[str, int]]:
    with db.connect() as conn:
        row = conn.execute(
            f"select merge_id, counts from {LOADER_SCHEMA}.merges where merge_id > %s "
            "order by merge_id desc limit 1", (after,)).fetchone()
        if row is None:
            return None, {}, {}
        skips = conn.execute(
            f"select skip_level || '.' || reason, count(*) from {LOADER_SCHEMA}.merge_skips "
            "where merge_id = %s group by 1 order by 1", (row[0],)).fetchall()
    return int(row[0]), dict(row[1]), {key: int(n) for key, n in skips}


def pending_verdicts(db: Database) -> int:
    """Verdicts landed since the last applied merge (0 before any dbt build)."""
    with db.connect() as conn:
        if not _watermark_built(conn):
            return 0
        row = conn.execute(sql.SQL(
            "select count(*) from {log} where verdict_id > (select merged_through from {mark})"
        ).format(log=sql.Identifier(LOADER_SCHEMA, "raw_verdicts"),
                 mark=dbt_names.relation(dbt_names.MERGE_WATERMARK))).fetchone()
    return int(row[0]) if row else 0


def _watermark_built(conn: psycopg.Connection) -> bool:
    row = conn.execute("select to_regclass(%s) is not null",
                       [dbt_names.qualified(dbt_names.MERGE_WATERMARK)]).fetchone()
    return bool(row and row[0])


def has_pending(conn: psycopg.Connection) -> bool:
    """Whether a merge has work: a verdict landed since the last applied merge (the log's
    last id against the watermark, int_merges__watermark; one probe of each index, where
    a count, or an exists the planner cannot bound, reads the log), or a person's decision
    not yet applied. Before any dbt build there is always work: the build comes first."""
    if not _watermark_built(conn):
        return True
    row = conn.execute(sql.SQL(
        "select (select coalesce(max(verdict_id), 0) from {log}) > "
        "(select merged_through from {mark}) "
        # A person's decisions (library-identity review) waiting for a write-back.
        "or exists (select 1 from {decisions} where applied_at is null)"
    ).format(log=sql.Identifier(LOADER_SCHEMA, "raw_verdicts"),
             mark=dbt_names.relation(dbt_names.MERGE_WATERMARK),
             decisions=sql.Identifier(LOADER_SCHEMA, "review_decisions"))).fetchone()
    return bool(row and row[0])


def merge(db: Database, dbt_vars: Mapping[str, Any], run_id: uuid.UUID | None = None, *,
          full_rebuild: bool = False, after_candidates: bool = False) -> MergeOutcome:
    """Build and check the change sets; when every gate passes, apply them. A failure at
    either step leaves every station table as it was; the next merge starts over from
    the same verdicts. With nothing landed since the last merge and no decision waiting
    there is nothing to do.
    `after_candidates`: this run's candidates build just refreshed the views it reads."""
    if not full_rebuild:
        with db.connect() as conn:
            if not has_pending(conn):
                return MergeOutcome(success=True, failures=[], warnings=[])
    # The same vars as the run's candidates build, so dbt's partial parse still holds
    # (any change of vars makes dbt parse the whole project again).
    variables = {**dbt_vars, dbt_names.FULL_REBUILD_VAR: True} if full_rebuild else dict(dbt_vars)
    # selectors.yml: the incremental state, the change sets and their gates; with the
    # staging views they read when no candidates build preceded the merge.
    selector = dbt_names.MERGE_SELECTOR if after_candidates and not full_rebuild \
        else dbt_names.MERGE_WITH_INPUTS_SELECTOR
    build_args = ["build", "--selector", selector]
    if full_rebuild:
        build_args.append("--full-refresh")
    built = run_dbt(db, build_args, variables)
    if not built.success:
        return MergeOutcome(success=False, failures=built.failures, warnings=built.warnings)
    before = _latest_merge_id(db)
    args = {"run_id": str(run_id)} if run_id else {}
    applied = run_dbt(db, ["run-operation", dbt_names.WRITE_BACK_OPERATION,
                           "--args", json.dumps(args)], variables)
    if not applied.success:
        return MergeOutcome(success=False, warnings=built.warnings,
                            failures=[f"write_back: {f}" for f in applied.failures]
                            or ["write_back: failed"])
    merge_id, counts, skips = _applied(db, before)
    warnings = list(built.warnings)
    gap = cta_match_gap(counts)
    if gap is not None:
        warnings.append(f"{CTA_MATCH_GAP_STEP}: {gap[0]} of {gap[1]} track keys match no "
                        "credit row")
        _report_gap(gap, merge_id, run_id)
    return MergeOutcome(success=True, failures=[], warnings=warnings,
                        merge_id=merge_id, counts=counts, skips=skips)


def cta_match_gap(counts: Mapping[str, Any]) -> tuple[int, int] | None:
    """(missed, track keys) when many answered track keys match no credit row: a sign
    that LML's echo of artist and title diverged from the station's credits."""
    keys = int(counts.get("compilation_track_keys", 0))
    missed = int(counts.get("compilation_track_rows_skipped_no_cta_match", 0))
    if missed >= COMPILATION_GAP_MIN_KEYS and 2 * missed >= keys > 0:
        return missed, keys
    return None


def _report_gap(gap: tuple[int, int], merge_id: int | None, run_id: uuid.UUID | None) -> None:
    """A log line and a Sentry event tagged with the step, as the station's consumer
    reports it."""
    missed, keys = gap
    log.warning("%s merge_id=%s run_id=%s track_keys=%d no_cta_match=%d", CTA_MATCH_GAP_STEP,
                merge_id, run_id or "-", keys, missed)
    with telemetry.sentry().new_scope() as scope:
        scope.set_tag("step", CTA_MATCH_GAP_STEP)
        scope.set_tag("run_id", str(run_id or "-"))
        scope.set_extra("compilation_track_keys", keys)
        scope.set_extra("compilation_track_rows_skipped_no_cta_match", missed)
        scope.fingerprint = ["library-identity", CTA_MATCH_GAP_STEP]
        telemetry.sentry().capture_message(
            f"{CTA_MATCH_GAP_STEP}: {missed} of {keys} track keys match no credit row",
            level="warning")
