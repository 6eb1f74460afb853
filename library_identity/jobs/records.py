"""Run records: one row per run in identity_loader.runs, with its counters and how it ended."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from library_identity import secrets

ERROR_MAX_CHARS = 2000


def mark_abandoned(conn: psycopg.Connection, job: str) -> int:
    """Runs left 'running' by a killed process become 'interrupted'. Only call with the lock
    held: then no live run of this job can exist."""
    cur = conn.execute(
        "update identity_loader.runs set status = 'interrupted', finished_at = now(), "
        "error = coalesce(error, 'process ended without finishing the run') "
        "where job = %s and status = 'running'", (job,))
    return cur.rowcount


def start_run(conn: psycopg.Connection, job: str, mode: str | None,
              options: dict[str, Any], run_id: uuid.UUID | None = None) -> uuid.UUID:
    run_id = run_id or uuid.uuid4()
    conn.execute(
        "insert into identity_loader.runs (run_id, job, mode, options) values (%s, %s, %s, %s)",
        (run_id, job, mode, Jsonb(options)))
    return run_id


def save_counters(conn: psycopg.Connection, run_id: uuid.UUID, counters: dict[str, Any]) -> None:
    conn.execute("update identity_loader.runs set counters = %s where run_id = %s",
                 (Jsonb(counters), run_id))


def finish_run(conn: psycopg.Connection, run_id: uuid.UUID, status: str,
               counters: dict[str, Any], error: str | None = None) -> None:
    # Scrubbed before it is cut, so no piece of a secret survives the cut.
    error = None if error is None else secrets.scrub(error)[:ERROR_MAX_CHARS]
    conn.execute(
        "update identity_loader.runs set status = %s, finished_at = now(), counters = %s, "
        "error = %s where run_id = %s", (status, Jsonb(counters), error, run_id))
