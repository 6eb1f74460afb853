"""The job skeleton's call loop and failure rule, with real threads (no database needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from library_identity.errors import LMLUnavailable
from library_identity.jobs.calls import CallLoop
from library_identity.jobs.job import FailureStreak


def _source(n: int, work: Callable[[int], int]) -> Callable[[int], Callable[[], int] | None]:
    items = iter(range(n))

    def next_call(_in_flight: int) -> Callable[[], int] | None:
        item = next(items, None)
        return None if item is None else (lambda: work(item))

    return next_call


def test_every_call_is_handled_once_on_the_callers_thread_within_the_limit() -> None:
    lock, running, peak = threading.Lock(), [0], [0]

    def work(item: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return item

    handled: list[int] = []
    threads: set[int] = set()

    def handle(item: int) -> None:
        handled.append(item)
        threads.add(threading.get_ident())

    CallLoop(threading.Event(), workers=8, name="t", limit=lambda: 3).run(
        _source(30, work), handle)
    assert sorted(handled) == list(range(30))
    assert threads == {threading.get_ident()}
    assert 1 < peak[0] <= 3


def test_an_error_while_handling_stops_sending_and_is_raised() -> None:
    started: list[int] = []

    def work(item: int) -> int:
        started.append(item)
        time.sleep(0.01)
        return item

    def handle(item: int) -> None:
        raise RuntimeError(f"could not land {item}")

    stop = threading.Event()
    with pytest.raises(RuntimeError, match="could not land"):
        CallLoop(stop, workers=2, name="t", limit=lambda: 2).run(_source(100, work), handle)
    assert stop.is_set()
    assert len(started) <= 2  # only the two in flight ever started


def test_a_stop_lets_the_calls_in_flight_finish_and_be_handled() -> None:
    stop = threading.Event()
    handled: list[int] = []

    def work(item: int) -> int:
        stop.set()  # e.g. SIGTERM while the first calls are out
        time.sleep(0.02)
        return item

    CallLoop(stop, workers=4, name="t", limit=lambda: 4).run(_source(50, work), handled.append)
    assert 1 <= len(handled) <= 4


def test_idle_waits_for_work_that_is_not_ready_yet() -> None:
    ready_at = time.monotonic() + 0.2
    sent: list[float] = []

    def next_call(_in_flight: int) -> Callable[[], float] | None:
        if sent or time.monotonic() < ready_at:
            return None
        sent.append(time.monotonic())
        return lambda: sent[0]

    def idle() -> float | None:
        return None if sent else max(0.0, ready_at - time.monotonic())

    handled: list[float] = []
    CallLoop(threading.Event(), workers=1, name="t", limit=lambda: 1).run(
        next_call, handled.append, idle=idle)
    assert handled == sent and sent[0] >= ready_at


def test_no_call_starts_while_a_pause_is_in_force() -> None:
    until = time.monotonic() + 0.2
    starts: list[float] = []

    def work(item: int) -> int:
        starts.append(time.monotonic())
        return item

    CallLoop(threading.Event(), workers=2, name="t", limit=lambda: 2,
             pause=lambda: max(0.0, until - time.monotonic())).run(_source(3, work),
                                                                   lambda item: None)
    assert len(starts) == 3 and min(starts) >= until


def test_failure_streak_stops_at_its_limit_and_resets_on_success() -> None:
    streak = FailureStreak(3, "batches")
    streak.failed("timeout")
    streak.failed("timeout")
    streak.succeeded()
    streak.failed("timeout")
    streak.failed("timeout")
    with pytest.raises(LMLUnavailable, match=r"LML failed 3 batches in a row \(last: 502\)"):
        streak.failed("502")
