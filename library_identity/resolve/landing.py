"""Lands a batch's verdicts in the append-only raw verdict log.

One transaction per batch: the COPY and the run's counters commit together, so a
killed run leaves exactly the batches it finished, each counted once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from library_identity.jobs.records import save_counters
from library_identity.tables import declared_columns

# The columns the loader lands, as the verdict log's declaration lists them.
COLUMNS = declared_columns("loader", "raw_verdicts", "landed")
_COPY_SQL = f"copy identity_loader.raw_verdicts ({', '.join(COLUMNS)}) from stdin"


def land_batch(conn: psycopg.Connection, run_id: uuid.UUID, rows: Sequence[tuple[Any, ...]],
               counters: dict[str, Any]) -> None:
    """COPY the rows (fastpath.classify builds them) and store the run's counters so far,
    in one transaction."""
    with conn.transaction(), conn.cursor() as cur:
        if rows:
            with cur.copy(_COPY_SQL) as copy:
                for row in rows:
                    copy.write_row(row)
        save_counters(conn, run_id, counters)
