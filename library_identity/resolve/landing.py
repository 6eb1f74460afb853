"""Lands a batch's verdicts in the append-only raw verdict log.

One transaction per batch: the COPY and the run's counters commit together, so a
killed run leaves exactly the batches it finished, each counted once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from library_identity.db import jsonb_text
from library_identity.jobs.records import save_counters
from library_identity.resolve.verdicts import Verdict
from library_identity.tables import declared_columns

# The columns the loader lands, as the verdict log's declaration lists them.
COLUMNS = declared_columns("loader", "raw_verdicts", "landed")
_COPY_SQL = f"copy identity_loader.raw_verdicts ({', '.join(COLUMNS)}) from stdin"


def copy_row(run_id: uuid.UUID, v: Verdict) -> tuple[Any, ...]:
    """One raw_verdicts row, ready for COPY (JSON already text, so the batch loop can build
    rows in its worker threads)."""
    main = v.result.main
    return (
        run_id, v.candidate.library_id, v.candidate.cohort, v.result.kind, v.result.method,
        v.result.confidence,
        main.discogs_artist_id if main else None,
        main.musicbrainz_artist_id if main else None,
        main.wikidata_qid if main else None,
        main.spotify_artist_id if main else None,
        main.apple_music_artist_id if main else None,
        main.bandcamp_id if main else None,
        v.tracks_contract_version, v.tracks_attempted, len(v.result.tracks or ()),
        jsonb_text(v.candidate.as_input()), v.raw_json,
    )


def land_batch(conn: psycopg.Connection, run_id: uuid.UUID, rows: Sequence[tuple[Any, ...]],
               counters: dict[str, Any]) -> None:
    """COPY the rows (from copy_row) and store the run's counters so far, in one
    transaction."""
    with conn.transaction(), conn.cursor() as cur:
        if rows:
            with cur.copy(_COPY_SQL) as copy:
                for row in rows:
                    copy.write_row(row)
        save_counters(conn, run_id, counters)
