"""The run's candidates: dbt decides who needs resolving, the loader pages a snapshot.

dbt deploys `library_candidates` (a view) for the chosen mode; the loader then copies it
into a temporary table once, so the run works on a fixed set (rows landed during the run
never come back in the same run) and pages it by library_id cursor, never OFFSET.

dbt runs only when the deployment is not current (library_identity.dbt_builds: another
project, other vars, a relation rebuilt or dropped since) or when verdicts landed since
the last merge (the verdict state the view reads has not taken them in yet). Otherwise
the deployed view is read as it is, and dbt is never loaded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from library_identity import dbt_builds, dbt_names
from library_identity.db import Database
from library_identity.dbt import DbtOutcome, compile_model, run_dbt
from library_identity.errors import DbtError
from library_identity.resolve.merge import has_pending
from library_identity.resolve.options import COHORTS, Partition


@dataclass(frozen=True)
class Candidate:
    """One library row to send to LML, as the snapshot holds it."""

    library_id: int
    artist_name: str
    album_title: str
    legacy_release_id: int | None
    cohort: str

    def as_input(self) -> dict[str, Any]:
        return {"library_id": self.library_id, "artist_name": self.artist_name,
                "album_title": self.album_title, "legacy_release_id": self.legacy_release_id}


def build_candidates(db: Database, dbt_vars: Mapping[str, Any]) -> DbtOutcome:
    """Have dbt rebuild the candidate model (and what it reads) for these vars, and the
    views the run's merge reads (selector candidates); record what it deployed."""
    stamp = dbt_builds.project_stamp(dbt_vars)
    with db.connect() as conn:
        dbt_builds.forget(conn, dbt_names.CANDIDATES_SELECTOR)
        conn.commit()
    outcome = run_dbt(db, ["run", "--selector", dbt_names.CANDIDATES_SELECTOR], dbt_vars)
    if not outcome.success:
        raise DbtError("dbt could not build the candidates: " + "; ".join(outcome.failures))
    with db.connect() as conn:
        dbt_builds.record(conn, dbt_names.CANDIDATES_SELECTOR, stamp, outcome.relations)
        conn.commit()
    return outcome


def deployed(db: Database, dbt_vars: Mapping[str, Any]) -> bool:
    """Whether the deployed candidates can be read as they are: the last build for these
    vars still stands, and no verdict landed since the last merge."""
    stamp = dbt_builds.project_stamp(dbt_vars)
    with db.connect() as conn:
        return (not has_pending(conn)
                and dbt_builds.deployed(conn, dbt_names.CANDIDATES_SELECTOR, stamp))


def prepare(db: Database, dbt_vars: Mapping[str, Any]) -> bool:
    """Make the candidate view current for these vars; True when dbt had to build it."""
    if deployed(db, dbt_vars):
        return False
    build_candidates(db, dbt_vars)
    return True


def compiled_candidates(db: Database, dbt_vars: Mapping[str, Any]) -> str:
    """The candidate model's SQL for these vars, without building it (for dry runs).

    Its upstream models are views; where they do not exist yet they are created first
    (view definitions only, no data)."""
    with db.connect() as conn:
        missing = conn.execute(
            "select to_regclass(%s) is null", (dbt_names.qualified(dbt_names.IDENTITY_STATUS),)
        ).fetchone()
    if missing and missing[0]:
        outcome = run_dbt(db, ["run", "--select", f"+{dbt_names.LIBRARY_CANDIDATES}",
                               "--exclude", dbt_names.LIBRARY_CANDIDATES], dbt_vars)
        if not outcome.success:
            raise DbtError("dbt could not build the candidates' inputs: "
                           + "; ".join(outcome.failures))
    return compile_model(db, dbt_names.LIBRARY_CANDIDATES, dbt_vars)


def snapshot(conn: psycopg.Connection, *, partition: Partition | None, limit: int | None,
             compiled: str | None = None,
             cohorts: tuple[str, ...] = COHORTS) -> dict[str, int]:
    """Copy the candidates (the dbt model, or its compiled SQL) into
    pg_temp.run_candidates; returns rows per cohort."""
    source = (dbt_names.compiled_view(conn, dbt_names.LIBRARY_CANDIDATES, compiled)
              if compiled is not None else dbt_names.relation(dbt_names.LIBRARY_CANDIDATES))
    where = sql.SQL("artist_name is not null and cohort = any(%s)")
    params: list[Any] = [list(cohorts)]
    if partition and partition.count > 1:
        # The non-negative remainder: Postgres's % keeps the sign of a negative id, which
        # would put that row in no partition.
        where = sql.SQL("{} and (library_id %% %s + %s) %% %s = %s").format(where)
        params += [partition.count, partition.count, partition.count, partition.index]
    limit_sql = sql.SQL("")
    if limit is not None:
        # --limit keeps the V/A cohort first, like the run order.
        limit_sql = sql.SQL(" order by (cohort = 'va') desc, library_id limit %s")
        params.append(limit)
    conn.execute("drop table if exists pg_temp.run_candidates")
    conn.execute(
        sql.SQL("create temp table run_candidates as "
                "select library_id, artist_name, album_title, legacy_release_id, cohort "
                "from {} where {}{}").format(
            source, where, limit_sql),
        params)
    conn.execute("create index on pg_temp.run_candidates (cohort, library_id)")
    conn.execute("analyze pg_temp.run_candidates")
    rows = conn.execute(
        "select cohort, count(*) from pg_temp.run_candidates group by cohort").fetchall()
    conn.commit()
    return {cohort: count for cohort, count in rows}


_PAGE_SQL = ("select library_id, artist_name, album_title, legacy_release_id, cohort "
             "from pg_temp.run_candidates where cohort = %s{} order by library_id limit %s")
# The first page has no lower bound: any id is a candidate, negative and zero included.
_FIRST_PAGE_SQL = _PAGE_SQL.format("")
_NEXT_PAGE_SQL = _PAGE_SQL.format(" and library_id > %s")


def pages(conn: psycopg.Connection, cohort: str, batch_size: int) -> Iterator[list[Candidate]]:
    """Pages of the snapshot for one cohort, by library_id cursor."""
    rows = conn.execute(_FIRST_PAGE_SQL, (cohort, batch_size)).fetchall()
    while True:
        conn.commit()
        if not rows:
            return
        yield [Candidate(*row) for row in rows]
        rows = conn.execute(_NEXT_PAGE_SQL, (cohort, rows[-1][0], batch_size)).fetchall()
