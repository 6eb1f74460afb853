"""What the rotation jobs share: the LML gate, the write connection, JSON for jsonb.

The resolve job has the same health check and reconnecting writer inline in
loader/resolve/run.py; both could move to one shared module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from pyrate_limiter import Limiter, Rate

from loader.db import Database, DatabaseError
from loader.lml.client import LMLAuthError, LMLClient, LMLError
from loader.resolve.run import LMLUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
# The station's rotation jobs run with 60 s; its default of 5 s is too short (schema §6 #8).
STATEMENT_TIMEOUT_MS = 60_000
WRITER_APPLICATION_NAME = "library-identity:writer"
# Mirrors stg_station__rotation.is_active (station-schema §1.7); used where the job must
# read and write the station table itself rather than a dbt view.
ACTIVE_ROTATION = "(kill_date is null or kill_date > current_date)"


class LMLRouteMissing(LMLUnavailable):
    """The LML deployment does not serve a route the job needs."""


def dumps(value: Any) -> str:
    """JSON for jsonb, which rejects \\u0000 (an exception message could carry one)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("\\u0000", "")


def limit_rate(client: LMLClient, requests_per_minute: float) -> LMLClient:
    """Give `client` its one-request-per-interval limiter (taken per attempt, retries
    included, shared by all threads).

    Workaround: LMLClient(requests_per_minute=...) raises TypeError in __post_init__
    (pyrate_limiter's Duration.MINUTE does not support division), so the client is built
    without a rate and the same limiter is installed here. Drop this once the client
    computes the interval from Duration.MINUTE.value.
    """
    if requests_per_minute <= 0:
        raise ValueError("requests per minute must be above 0")
    client.requests_per_minute = requests_per_minute
    client._limiter = Limiter(Rate(1, max(1, int(60_000 / requests_per_minute))))
    return client


def check_health(client: LMLClient) -> None:
    """GET /health must answer 200 (healthy or degraded)."""
    try:
        result = client.health()
    except LMLError as exc:
        raise LMLUnavailable(f"LML is not reachable at {client.base_url}: {exc}") from None
    if result.status != 200:
        raise LMLUnavailable(f"LML at {client.base_url} reports itself unhealthy "
                             f"(HTTP {result.status})")


def require_route(client: LMLClient, path: str, invalid_body: Any) -> int:
    """Probe `path` with a body LML must reject (lml-contract §3.1): any answer but 404/405
    proves the route exists, 422 being the expected one. Returns the probe's status."""
    try:
        status = client.probe(path, invalid_body)
    except LMLError as exc:
        raise LMLUnavailable(f"LML at {client.base_url} did not answer the probe of {path}: "
                             f"{exc}") from None
    if status in (404, 405):
        raise LMLRouteMissing(f"LML at {client.base_url} has no {path} (probe answered HTTP "
                              f"{status}); this LML deployment cannot serve the job, nothing "
                              "was sent")
    if status in (401, 403):
        # The route exists, but every batch would be refused: stop before the first one.
        raise LMLAuthError(f"LML refused the API key on {path} (HTTP {status}); check "
                           "LML_API_KEY", status=status)
    return status


class Writer:
    """The job's write connection, opened on first use and reopened after a drop."""

    def __init__(self, db: Database, *, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
                 application_name: str = WRITER_APPLICATION_NAME) -> None:
        self.db = db
        self.statement_timeout_ms = statement_timeout_ms
        self.application_name = application_name
        self._conn: psycopg.Connection | None = None

    def conn(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.db.connect(statement_timeout_ms=self.statement_timeout_ms,
                                         application_name=self.application_name)
        return self._conn

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """`work` (one transaction) on the connection; after a dropped connection, once more
        on a new one. A second drop raises DatabaseError; other database errors propagate."""
        for attempt in (1, 2):
            try:
                return work(self.conn())
            except psycopg.OperationalError as exc:
                self.close()
                if attempt == 2:
                    raise DatabaseError(f"lost the database connection while writing "
                                        f"({type(exc).__name__}); committed batches are safe, "
                                        "re-run to continue") from None
                log.warning("db_reconnect reason=%s", type(exc).__name__)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
