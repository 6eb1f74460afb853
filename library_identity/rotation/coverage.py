"""`rotation coverage`: how much of the active rotation has an LML release identity, and
how recently each identity's cache was warmed.

The counts and the percentage come from dbt's rotation_coverage model. The per-identity
warm ages (oldest and newest last warm, identities never warmed) are computed here over
dbt's views, because rotation_coverage only carries one global last_warmed_at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from library_identity.db import Database
from library_identity.dbt_names import (
    ROTATION_COVERAGE,
    ROTATION_REFRESH_CANDIDATES,
    ROTATION_REFRESH_RESULTS,
    relation,
)
from library_identity.rotation.models import build_models
from library_identity.rotation.options import GATE_MIN_PCT, STATEMENT_TIMEOUT_MS

_COVERAGE_SQL = sql.SQL(
    "select active, active_with_discogs, active_with_lml, active_without_lml_identity, "
    "resolvable_coverage_pct, last_warmed_at from {coverage}")
# Per identity of the current rotation: its latest `warmed` answer.
_WARM_AGES_SQL = sql.SQL("""
    with last_warm as (
        select identity_id, max(refreshed_at) as last_warmed_at
        from {results}
        where status = 'warmed'
        group by identity_id
    )
    select count(*),
           count(*) filter (where w.last_warmed_at is null),
           min(w.last_warmed_at),
           max(w.last_warmed_at)
    from {candidates} c
    left join last_warm w on w.identity_id = c.lml_identity_id
""")


@dataclass(frozen=True)
class Coverage:
    active: int
    active_with_discogs: int
    active_with_lml: int
    active_without_lml_identity: int
    resolvable_coverage_pct: float | None  # None: no active row has a release id
    last_warmed_at: datetime | None  # newest warm of any identity, as the model reports it
    identities: int
    never_warmed: int
    oldest_last_warm: datetime | None
    newest_last_warm: datetime | None

    def gate_passes(self, min_pct: float = GATE_MIN_PCT) -> bool:
        # Nothing resolvable means nothing missing.
        return self.resolvable_coverage_pct is None or self.resolvable_coverage_pct >= min_pct

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data


def read_coverage(db: Database, *, prepare: bool = True) -> Coverage:
    if prepare:
        build_models(db)
    with db.connect(statement_timeout_ms=STATEMENT_TIMEOUT_MS,
                    application_name="library-identity:reader") as conn:
        row = conn.execute(_COVERAGE_SQL.format(coverage=relation(ROTATION_COVERAGE))
                           ).fetchone()
        ages = conn.execute(_WARM_AGES_SQL.format(
            results=relation(ROTATION_REFRESH_RESULTS),
            candidates=relation(ROTATION_REFRESH_CANDIDATES))).fetchone()
    assert row is not None and ages is not None  # both are aggregates: always one row
    pct = None if row[4] is None else float(row[4])
    return Coverage(active=int(row[0]), active_with_discogs=int(row[1]),
                    active_with_lml=int(row[2]), active_without_lml_identity=int(row[3]),
                    resolvable_coverage_pct=pct, last_warmed_at=row[5],
                    identities=int(ages[0]), never_warmed=int(ages[1]),
                    oldest_last_warm=ages[2], newest_last_warm=ages[3])
