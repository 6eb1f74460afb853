"""The adaptive pace against the stand-in: it backs off on 429, 503 and rising latency,
recovers, honours Retry-After, and never exceeds the requests-per-minute ceiling (as the
stand-in's request log measures it)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from conftest import STANDIN_KEY

from library_identity.db import Database
from library_identity.demo.standin.server import BULK_PATH, StandIn, StandInConfig
from library_identity.lml.client import LMLClient
from library_identity.resolve.resolve_job import ResolveOptions, ResolveResult, resolve

N_ROWS = 1200
BATCH = 25  # many small batches: room for the pace to move


def run(db: Database, standin: StandIn, *, rpm: float | None = None,
        **options: Any) -> ResolveResult:
    options = {"batch_size": BATCH, "va_batch_size": BATCH, "dry_run": True, **options}
    with LMLClient(base_url=standin.url, api_key=STANDIN_KEY, backoff_initial_s=0.01,
                   backoff_max_s=0.05, max_attempts=6, requests_per_minute=rpm) as client:
        return resolve(db, client, ResolveOptions(**options), prepare=False, merge=False)


def bulk(standin: StandIn) -> list[Any]:
    return [r for r in standin.requests if r.path == BULK_PATH]


def limits_after(result: ResolveResult, reason_prefix: str) -> list[int]:
    """The limits the pace moved to after its first change for this reason."""
    changes = result.pacing["changes"]
    first = next(i for i, (_, _, why) in enumerate(changes) if why.startswith(reason_prefix))
    return [limit for _, limit, _ in changes[first + 1:]]


def test_backs_off_on_503_and_recovers(db: Database, standin: StandIn) -> None:
    clean = run(db, standin)
    assert clean.pacing["decreases"] == {"throttled": 0, "latency": 0, "failed": 0}
    assert clean.pacing["peak_concurrency"] == 8  # flat latency: it rises to the maximum

    standin.config = StandInConfig(api_key=STANDIN_KEY, error_rate=0.15, seed=4)
    result = run(db, standin)
    assert result.counters.total.scanned == clean.counters.total.scanned
    assert result.pacing["decreases"]["throttled"] >= 1
    limits = [limit for _, limit, _ in result.pacing["changes"]]
    assert any(b < a for a, b in itertools.pairwise(limits))  # it fell
    assert any(b > a for a, b in itertools.pairwise(limits))  # and rose again
    assert max(limits_after(result, "backed off after HTTP 503")) > 1


def test_backs_off_on_rising_latency_and_recovers(db: Database, standin: StandIn) -> None:
    """LML slows down from the 15th to the 35th call (queueing), then recovers."""
    cfg = StandInConfig(api_key=STANDIN_KEY, latency_ms=15)
    standin.config = cfg
    done = threading.Event()

    def slow_patch() -> None:
        while not done.wait(0.005):
            n = len(bulk(standin))
            cfg.latency_ms = 250 if 15 <= n < 35 else 15

    watcher = threading.Thread(target=slow_patch, daemon=True)
    watcher.start()
    try:
        result = run(db, standin)
    finally:
        done.set()
        watcher.join()
    assert result.pacing["decreases"]["latency"] >= 1
    assert result.pacing["decreases"]["throttled"] == 0
    assert max(limits_after(result, "backed off: latency")) > result.pacing["min_concurrency"]


def test_backs_off_on_429_and_honours_retry_after(db: Database, standin: StandIn) -> None:
    standin.config = StandInConfig(api_key=STANDIN_KEY, error_status=429, retry_after=0.4,
                                   fail_first=1)
    result = run(db, standin, concurrency=None, min_concurrency=4, max_concurrency=8,
                 cohorts=("non_va",))
    requests = bulk(standin)
    refused = [r for r in requests if r.status == 429]
    assert len(refused) == 1
    t429 = refused[0].time
    # Calls already on their way when the 429 was answered may arrive just after it; no
    # new call may start until Retry-After has passed.
    later = [r.time - t429 for r in requests if r.time > t429 + 0.05]
    assert later and min(later) >= 0.4 - 0.02
    assert result.pacing["decreases"]["throttled"] == 1
    assert result.pacing["retry_after_paused_s"] == pytest.approx(0.4, abs=0.05)
    assert result.counters.total.rows_skipped["lml_error"] == 0


def test_fixed_pace_still_honours_retry_after(db: Database, standin: StandIn) -> None:
    standin.config = StandInConfig(api_key=STANDIN_KEY, error_status=503, retry_after=0.3,
                                   fail_first=1)
    result = run(db, standin, concurrency=3, cohorts=("non_va",))
    assert result.pacing["mode"] == "fixed"
    assert result.pacing["settled_concurrency"] == 3 and result.pacing["changes"] == []
    requests = bulk(standin)
    t503 = next(r.time for r in requests if r.status == 503)
    later = [r.time - t503 for r in requests if r.time > t503 + 0.05]
    assert later and min(later) >= 0.3 - 0.02


@pytest.mark.parametrize("rpm", [300.0, 900.0])
def test_requests_per_minute_is_never_exceeded(db: Database, standin: StandIn,
                                               rpm: float) -> None:
    # Retries count too: some calls fail once and are sent again.
    standin.config = StandInConfig(api_key=STANDIN_KEY, error_rate=0.1, seed=2)
    result = run(db, standin, rpm=rpm, limit=400, max_concurrency=8)
    times = sorted(r.time for r in standin.requests)
    assert len(times) >= 15
    assert any(r.status == 503 for r in standin.requests)
    assert result.counters.total.rows_skipped["lml_error"] == 0
    # Token bucket of one: in any window of w seconds at most rpm/60 * w + 1 calls.
    for window in (0.5, 1.0, 2.0):
        allowed = rpm / 60 * window + 1
        for i, start in enumerate(times):
            inside = sum(1 for t in times[i:] if t < start + window)
            assert inside <= allowed, (window, inside, allowed)
