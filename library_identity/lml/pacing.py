"""How many LML calls a job keeps in flight: additive increase, multiplicative decrease.

LML is shared with the station's live lookups, so a job must find the pace LML can take
rather than push a fixed one:

- **Increase**: after a full round of calls (as many as the limit) that succeeded with flat
  latency, allow one more call in flight, up to `max_concurrency`.
- **Decrease on throttling**: a 429 or 503, a timeout or a network error halves the limit
  (never below `min_concurrency`). A `Retry-After` also pauses every new call until it
  has passed (one longer than MAX_PAUSE_S is not waited for: the client fails that
  call at once).
- **Decrease on latency**: when a call's smoothed latency exceeds `latency_tolerance` times
  the lowest recently seen for the same kind of call (and by more than `latency_floor_s`,
  so jitter on fast calls does not count), LML is queueing: the limit drops by a quarter.
- One decrease per round: calls that started before a decrease carry no news about it.

A fixed pace (`fixed=True`) keeps `max_concurrency` in flight and only honours
Retry-After. The summary says what pace the job settled at and why.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from library_identity.lml.limits import RETRY_AFTER_MAX_S

THROTTLE_STATUSES = frozenset({429, 503})
# A longer Retry-After is not waited for: the client fails such a call at once.
MAX_PAUSE_S = RETRY_AFTER_MAX_S
_WINDOW = 30  # latencies kept per kind of call for the baseline (their minimum)
_SMOOTHING = 0.3  # weight of the newest latency in the smoothed value
_CHANGES_KEPT = 200


@dataclass(frozen=True)
class PacingSettings:
    min_concurrency: int = 1
    max_concurrency: int = 8
    fixed: bool = False
    latency_tolerance: float = 2.0
    latency_floor_s: float = 0.05

    def validate(self) -> None:
        if self.min_concurrency < 1:
            raise ValueError("min-concurrency must be at least 1")
        if self.max_concurrency < self.min_concurrency:
            raise ValueError("max-concurrency must be at least min-concurrency")
        if self.latency_tolerance <= 1:
            raise ValueError("the latency tolerance must be above 1")

    @classmethod
    def fixed_at(cls, concurrency: int) -> PacingSettings:
        return cls(min_concurrency=concurrency, max_concurrency=concurrency, fixed=True)


class Pacer:
    """Thread-safe: workers report every attempt, the dispatcher asks for the limit."""

    def __init__(self, settings: PacingSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        settings.validate()
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._limit = settings.max_concurrency if settings.fixed else settings.min_concurrency
        self._started = clock()
        self._changed_at = self._started
        self._decreased_at = -math.inf
        self._round = 0  # good completions since the last change
        self._paused_until = -math.inf
        self._latencies: dict[str, deque[float]] = {}
        self._smoothed: dict[str, float] = {}
        self._time_at: dict[int, float] = {}  # seconds spent at each limit
        self.peak = self._limit
        self.increases = 0
        self.decreases = {"throttled": 0, "latency": 0, "failed": 0}
        self.paused_s = 0.0
        self.changes: list[tuple[float, int, str]] = []  # (seconds into the run, limit, why)
        self.reason = ("fixed pace (--concurrency)" if settings.fixed
                       else "starting at min-concurrency")

    # -- what the dispatcher asks ------------------------------------------------------------

    @property
    def limit(self) -> int:
        with self._lock:
            return self._limit

    def pause_remaining(self) -> float:
        """Seconds until new calls may start (a Retry-After in force), else 0."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    # -- what the workers report -------------------------------------------------------------

    def observe(self, status: int | None, latency_s: float, *, kind: str = "",
                retry_after: float | None = None) -> None:
        """One attempt ended: `status` None for a timeout or network error."""
        with self._lock:
            now = self._clock()
            started = now - latency_s
            if (retry_after is not None and status in THROTTLE_STATUSES
                    and retry_after <= MAX_PAUSE_S):
                pause = max(0.0, retry_after)
                if now + pause > self._paused_until:
                    self.paused_s += now + pause - max(now, self._paused_until)
                    self._paused_until = now + pause
            if self.settings.fixed:
                return
            stale = started < self._decreased_at
            if status is None or status in THROTTLE_STATUSES:
                if not stale:
                    bucket = "failed" if status is None else "throttled"
                    what = "timeouts or network errors" if status is None else f"HTTP {status}"
                    self._decrease(now, 0.5, bucket, f"backed off after {what}"
                                   + (f" (Retry-After {retry_after:g}s)" if retry_after else ""))
                return
            if status != 200:
                return  # a permanent error says nothing about LML's load
            ratio = self._latency_ratio(kind, latency_s)
            if ratio is not None and not stale:
                self._decrease(now, 0.75, "latency",
                               f"backed off: latency {ratio:.1f}x its baseline")
                return
            self._round += 1
            if self._round >= self._limit and self._limit < self.settings.max_concurrency:
                self._set(now, self._limit + 1, "rose while latency stayed flat")
                self.increases += 1
            elif self._round >= self._limit:
                self.reason = "held at max-concurrency with latency flat"

    def _latency_ratio(self, kind: str, latency_s: float) -> float | None:
        """How far the smoothed latency is above the baseline, when that means queueing."""
        window = self._latencies.setdefault(kind, deque(maxlen=_WINDOW))
        window.append(latency_s)
        smoothed = self._smoothed.get(kind, latency_s)
        smoothed = (1 - _SMOOTHING) * smoothed + _SMOOTHING * latency_s
        self._smoothed[kind] = smoothed
        baseline = min(window)
        if len(window) < 3 or baseline <= 0:
            return None
        ratio = smoothed / baseline
        if (ratio > self.settings.latency_tolerance
                and smoothed - baseline > self.settings.latency_floor_s):
            # Start the smoothing again from the baseline, so a single backoff is
            # judged by the calls made after it.
            self._smoothed[kind] = baseline
            return ratio
        return None

    def _decrease(self, now: float, factor: float, bucket: str, reason: str) -> None:
        self._decreased_at = now
        self.decreases[bucket] += 1
        self._set(now, max(self.settings.min_concurrency, math.floor(self._limit * factor)),
                  reason)

    def _set(self, now: float, limit: int, reason: str) -> None:
        self._time_at[self._limit] = self._time_at.get(self._limit, 0.0) + now - self._changed_at
        self._changed_at = now
        self._limit = limit
        self._round = 0
        if len(self.changes) < _CHANGES_KEPT:
            self.changes.append((round(now - self._started, 3), limit, reason))
        self.peak = max(self.peak, limit)
        self.reason = reason

    # -- the run's summary -------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The pace the job settled at (the limit in force longest) and why."""
        with self._lock:
            now = self._clock()
            spent = dict(self._time_at)
            spent[self._limit] = spent.get(self._limit, 0.0) + now - self._changed_at
            settled = max(spent, key=lambda k: (spent[k], k))
            total = sum(spent.values()) or 1.0
            mean = sum(limit * s for limit, s in spent.items()) / total
            return {
                "mode": "fixed" if self.settings.fixed else "adaptive",
                "min_concurrency": self.settings.min_concurrency,
                "max_concurrency": self.settings.max_concurrency,
                "settled_concurrency": settled,
                "final_concurrency": self._limit,
                "peak_concurrency": self.peak,
                "mean_concurrency": round(mean, 2),
                "increases": self.increases,
                "decreases": dict(self.decreases),
                "retry_after_paused_s": round(self.paused_s, 3),
                "reason": self.reason,
                "changes": [list(c) for c in self.changes],
            }

    def describe(self) -> str:
        s = self.summary()
        if s["mode"] == "fixed":
            return f"fixed at {s['settled_concurrency']} calls in flight"
        return (f"settled at {s['settled_concurrency']} calls in flight "
                f"(between {s['min_concurrency']} and {s['max_concurrency']}; "
                f"peak {s['peak_concurrency']}, mean {s['mean_concurrency']}): {s['reason']}")
