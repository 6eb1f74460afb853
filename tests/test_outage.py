"""A run rides out an LML restart: the stand-in is stopped mid-run and started again on
the same port. Within the outage budget the run finishes as if nothing happened; past it,
the run stops with exit 3 and keeps what it landed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI, STANDIN_KEY

from library_identity import migrate
from library_identity.db import Database
from library_identity.demo.seed import seed_library
from library_identity.demo.standin.refresh import refresh_item
from library_identity.demo.standin.server import (
    BULK_PATH,
    REFRESH_PATH,
    RESOLVE_PATH,
    StandIn,
    StandInConfig,
)
from library_identity.errors import EXIT_LML, EXIT_OK
from library_identity.lml.client import LMLClient
from library_identity.rotation.backfill import BackfillOptions, backfill
from library_identity.rotation.refresh import RefreshOptions, refresh

ROOT = Path(__file__).resolve().parent.parent
N_ROWS = 1500
OUTAGE_S = 20.0
# Small batches, two calls in flight and some latency: the run is mid-way when LML stops.
RESOLVE = ("resolve", "--no-progress", "--batch-size", "40", "--va-batch-size", "20",
           "--concurrency", "2")
LATENCY_MS = 150

# Each waits out a real restart of the stand-in: run once in CI, on PostgreSQL 14.22.
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Restartable:
    """The stand-in on one fixed port, which the test stops and starts again."""

    def __init__(self, config: StandInConfig) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bulk_calls = 0  # answered or not, over every start
        self.server: StandIn | None = None

    def start(self) -> None:
        self.server = StandIn(self.config, port=self.port).start()

    def stop(self) -> None:
        assert self.server is not None
        self.bulk_calls += self.calls(BULK_PATH)
        self.server.stop()
        self.server = None

    def calls(self, path: str) -> int:
        if self.server is None:
            return 0
        # Bulk and refresh calls with something in them: not the start-up's empty probes.
        return len([r for r in self.server.requests
                    if r.path == path and (r.batch_size or path == RESOLVE_PATH)])


@pytest.fixture
def lml() -> Iterator[Restartable]:
    standin = Restartable(StandInConfig(api_key=STANDIN_KEY, latency_ms=LATENCY_MS))
    standin.start()
    yield standin
    if standin.server is not None:
        standin.server.stop()


@pytest.fixture(scope="module")
def seeded(make_database: Callable[[], Database]) -> Database:
    db = make_database()
    migrate.apply(db)
    with db.connect() as conn:
        seed_library(conn, N_ROWS)
    return db


def start_run(db: Database, lml: Restartable, *args: str) -> subprocess.Popen[str]:
    assert lml.server is not None
    lml.server.clear_log()  # stop_mid_run counts this run's calls
    env = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    env |= {"DATABASE_URL": db.conninfo, "LML_URL": lml.url, "LML_API_KEY": STANDIN_KEY}
    return subprocess.Popen([*CLI, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_mid_run(lml: Restartable, proc: subprocess.Popen[str], after_calls: int) -> None:
    deadline = time.monotonic() + 180
    while lml.calls(BULK_PATH) < after_calls:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lml.stop()


def tables(db: Database) -> dict[str, Any]:
    """What the run leaves behind: the verdict log's counts and the identities stored."""
    with db.connect() as conn:
        verdicts = conn.execute(
            "select count(*), count(distinct library_id) from identity_loader.raw_verdicts"
        ).fetchone()
        identities = conn.execute(
            "select library_id, discogs_release_id, discogs_master_id, wikidata_qid, "
            "spotify_id, method, confidence from wxyc_schema.library_identity order by 1"
        ).fetchall()
        sources = conn.execute(
            "select count(*) from wxyc_schema.library_identity_source").fetchone()
    return {"verdicts": verdicts, "identities": identities, "sources": sources}


def run_record(db: Database) -> tuple[str, str | None, dict[str, Any]]:
    with db.connect() as conn:
        row = conn.execute("select status, error, counters from identity_loader.runs "
                           "where job = 'resolve'").fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_a_run_waits_through_an_lml_restart_and_lands_the_same_tables(
        seeded: Database, clone_database: Callable[[Database], Database],
        lml: Restartable) -> None:
    plain, restarted = clone_database(seeded), clone_database(seeded)
    proc = start_run(plain, lml, *RESOLVE, "--json")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == EXIT_OK, err
    uninterrupted = json.loads(out)

    proc = start_run(restarted, lml, *RESOLVE, "--json")
    stop_mid_run(lml, proc, after_calls=10)
    stopped_at = time.monotonic()
    time.sleep(OUTAGE_S)
    assert proc.poll() is None, proc.communicate()  # still waiting for LML, not given up
    lml.start()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == EXIT_OK, err
    summary = json.loads(out)
    assert time.monotonic() - stopped_at >= OUTAGE_S
    assert "lml_outage" in err and "lml_back" in err
    assert summary["lml_outage"]["lml_outages"] >= 1
    assert summary["lml_outage"]["lml_outage_wait_s"] >= OUTAGE_S / 2
    # The same rows, the same verdicts, the same identities as without the restart.
    assert tables(restarted) == tables(plain)
    assert tables(restarted)["verdicts"][0] > 0
    for key in ("scanned", "rows_resolved", "rows_resolved_compilation", "rows_unresolved",
                "rows_skipped"):
        assert summary["counters"]["total"][key] == uninterrupted["counters"]["total"][key]
    assert summary["counters"]["total"]["rows_skipped"]["lml_error"] == 0
    assert summary["merge"]["counts"] == uninterrupted["merge"]["counts"]
    status, _, _ = run_record(restarted)
    assert status == "succeeded"


def test_an_outage_past_the_budget_stops_with_exit_3_and_keeps_the_batches(
        seeded: Database, clone_database: Callable[[Database], Database],
        lml: Restartable) -> None:
    db = clone_database(seeded)
    proc = start_run(db, lml, *RESOLVE, "--lml-outage-budget", "5")
    stop_mid_run(lml, proc, after_calls=10)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_LML, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: LML did not come back within the 5 s outage budget"), err
    assert "Saved: run " in last and "is recorded as failed" in last, last
    assert "Next: once LML answers" in last and "`library-identity resolve` again" in last
    status, error, counters = run_record(db)
    assert status == "failed"
    assert error is not None and "outage budget" in error
    landed = tables(db)["verdicts"]
    assert 0 < landed[1] < N_ROWS  # the batches landed before LML went away are kept
    total = counters["total"]
    assert total["rows_skipped"]["lml_error"] == 0  # nothing skipped: the rest stays due
    scanned_landed = (total["rows_resolved"] + total["rows_resolved_compilation"]
                      + total["rows_unresolved"] + total["rows_skipped"]["compilation"])
    assert scanned_landed == total["scanned"] == landed[1]


class RestartAfterFirstCall(threading.Thread):
    """Stops the stand-in once a job's first call to `path` has reached it, and starts it
    again on the same port 5 s later."""

    def __init__(self, lml: Restartable, path: str) -> None:
        super().__init__(daemon=True)
        self.lml, self.path, self.restarted = lml, path, False

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while self.lml.calls(self.path) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.lml.stop()
        time.sleep(5)
        self.lml.start()
        self.restarted = True


def test_a_refresh_waits_through_an_lml_restart(
        seeded: Database, clone_database: Callable[[Database], Database],
        lml: Restartable, caplog: pytest.LogCaptureFixture) -> None:
    db = clone_database(seeded)
    # Every rotation row active, with an identity the stand-in warms (no not_found or error).
    good = (i for i in range(9000, 99000) if refresh_item(i)["status"] == "warmed")
    with db.connect() as conn:
        rows = [r[0] for r in conn.execute("select id from wxyc_schema.rotation").fetchall()]
        for row in rows:
            conn.execute("update wxyc_schema.rotation set lml_identity_id = %s, "
                         "kill_date = null where id = %s", (next(good), row))
    assert len(rows) > 1
    options = RefreshOptions(batch_size=1, concurrency=1, requests_per_minute=600,
                             retry_delay_s=0, lml_outage_budget_s=60)
    restart = RestartAfterFirstCall(lml, REFRESH_PATH)
    with LMLClient(base_url=lml.url, api_key=STANDIN_KEY, max_attempts=2,
                   requests_per_minute=600, timeout_s=options.timeout_s) as client:
        restart.start()
        result = refresh(db, client, options)
    restart.join()
    assert restart.restarted
    assert "lml_outage" in caplog.text and "lml_back" in caplog.text
    counters = result.counters
    assert result.status == "succeeded"
    assert counters.identities_scanned == len(rows)
    assert counters.lml_error == 0 and counters.failed_batches == 0


def test_a_backfill_waits_through_an_lml_restart(
        seeded: Database, clone_database: Callable[[Database], Database],
        lml: Restartable, caplog: pytest.LogCaptureFixture) -> None:
    db = clone_database(seeded)
    with db.connect() as conn:  # every rotation row with a release id waits for its identity
        conn.execute("update wxyc_schema.rotation set lml_identity_id = null, kill_date = null "
                     "where discogs_release_id is not null")
        rows = conn.execute("select count(*) from wxyc_schema.rotation "
                            "where discogs_release_id is not null").fetchone()
    assert rows is not None and rows[0] > 1
    options = BackfillOptions(requests_per_minute=600, quiet_lookback_s=0,
                              lml_outage_budget_s=60)
    restart = RestartAfterFirstCall(lml, RESOLVE_PATH)
    with LMLClient(base_url=lml.url, api_key=STANDIN_KEY, max_attempts=2,
                   requests_per_minute=600, timeout_s=options.timeout_s) as client:
        restart.start()
        result = backfill(db, client, options)
    restart.join()
    assert restart.restarted
    assert "lml_outage" in caplog.text and "lml_back" in caplog.text
    counters = result.counters
    assert result.status == "succeeded"
    assert counters.scanned == rows[0] and counters.lml_error == 0
    with db.connect() as conn:
        left = conn.execute("select count(*) from wxyc_schema.rotation where "
                            "discogs_release_id is not null and lml_identity_id is null"
                            ).fetchone()
    assert left is not None and left[0] == counters.unresolved
