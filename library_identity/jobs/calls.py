"""LML calls made on worker threads, and the loop that keeps them in flight."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from library_identity.errors import LMLError
from library_identity.lml.client import CallResult

C = TypeVar("C")


@dataclass
class Call:
    """One LML call: its answer or its error, how many attempts it took and how long."""

    result: CallResult | None = None
    error: LMLError | None = None
    attempts: int = 1
    latency_ms: float = 0.0
    started_at: float = 0.0  # time.monotonic() when it was sent (see lml.outage)


@contextlib.contextmanager
def traced_call(parent: Any, name: str, call: Call, **data: Any) -> Iterator[Any]:
    """The call's http.client span under the run's transaction. The block sets
    `call.result`; an LMLError leaving it becomes `call.error` (it is not raised: the main
    thread decides what a failed call means). Attempts and latency are recorded however
    the call ends."""
    started = time.perf_counter()
    call.started_at = time.monotonic()
    with parent.start_child(op="http.client", name=name) as span:
        for key, value in data.items():
            span.set_data(key, value)
        try:
            yield span
        except LMLError as exc:
            call.error = exc
            call.attempts = exc.attempts
            span.set_status("retryable_error" if exc.retryable else "permanent_error")
        else:
            if call.result is not None:
                call.attempts = call.result.attempts
            if getattr(span, "status", None) is None:
                span.set_status("ok")
        finally:
            call.latency_ms = (time.perf_counter() - started) * 1000
            span.set_data("lml.attempts", call.attempts)
            span.set_data("lml.latency_ms", round(call.latency_ms, 1))


def _no_pause() -> float:
    return 0.0


def _done() -> float | None:
    return None


class CallLoop(Generic[C]):
    """Keeps up to `limit()` calls in flight on a thread pool and hands each finished call
    to the caller's thread, so landing and counting never race.

    Whatever ends the loop early (an error, KeyboardInterrupt) stops it sending and cancels
    the calls not yet started; calls already running finish with the pool but are not
    handled, so nothing they fetched is written and their rows stay candidates.
    """

    def __init__(self, stop: threading.Event, *, workers: int, name: str,
                 limit: Callable[[], int], pause: Callable[[], float] = _no_pause) -> None:
        self.stop = stop
        self.workers = workers
        self.name = name
        self.limit = limit
        self.pause = pause  # seconds before any new call may start (a Retry-After), else 0

    def run(self, next_call: Callable[[int], Callable[[], C] | None],
            handle: Callable[[C], None], *, idle: Callable[[], float | None] = _done) -> None:
        """Start what `next_call` gives (told how many calls are in flight; None: nothing
        to start now) while fewer than `limit()` are in flight and no pause is in force,
        and `handle` each finished call. With nothing in flight and nothing to start,
        `idle()` says how long to wait for more (None: the loop is done)."""
        in_flight: set[Future[C]] = set()
        with ThreadPoolExecutor(max_workers=self.workers,
                                thread_name_prefix=self.name) as pool:
            try:
                while True:
                    timeout: float | None = None
                    while not self.stop.is_set():
                        pause = self.pause()
                        if pause > 0 or len(in_flight) >= self.limit():
                            timeout = pause or None
                            break
                        work = next_call(len(in_flight))
                        if work is None:
                            break
                        in_flight.add(pool.submit(work))
                    if not in_flight:
                        wait_s = None if self.stop.is_set() else timeout or idle()
                        if wait_s is None:
                            break
                        self.stop.wait(wait_s)
                        continue
                    done, in_flight = wait(in_flight, timeout=timeout,
                                           return_when=FIRST_COMPLETED)
                    for future in done:
                        handle(future.result())
            except BaseException:
                self.stop.set()
                for future in in_flight:
                    future.cancel()
                raise
