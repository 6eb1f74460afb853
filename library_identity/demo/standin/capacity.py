"""LML's capacity, as the stand-in models it: one replica's budget of upstream (Discogs)
calls, spent by cache misses and shared with the station's live lookups.

- A token bucket of `per_minute` calls a minute, holding at most `burst` of them.
- A bulk row the replica has not seen yet costs `row_cost` calls (its artist name, or for a
  V/A row its release); a row seen before is a cache hit and costs nothing. `warm_share`
  of all rows (a fixed choice by hash) count as seen from the start, as in a replica
  that has been serving for a while.
- When the bucket runs dry a bulk request either queues until its calls are paid for
  (`when_dry="queue"`: latency grows) or is refused with 429 and a Retry-After saying when
  the budget will be back (`when_dry="429"`).
- Optional background load: `live_per_minute` live lookups (the station's), each one
  upstream call, queued on the same bucket; their waits are the latency the station
  feels, reported by `stats()`.
- `time_scale` runs the model's clock faster than real time (60: a minute of budget
  refills in a second), so a test can exhaust and refill the budget in seconds. Waits and
  Retry-After are in real seconds.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from library_identity.demo.synthetic import fold, fraction, is_va_name

WHEN_DRY = ("queue", "429")


@dataclass(frozen=True)
class CapacitySettings:
    per_minute: float = 50.0
    burst: float = 10.0
    row_cost: int = 1
    when_dry: str = "queue"
    live_per_minute: float = 0.0
    time_scale: float = 1.0
    warm_share: float = 0.0  # share of rows cached before the first request (by hash)

    def validate(self) -> None:
        if self.per_minute <= 0 or self.burst < 1 or self.row_cost < 0:
            raise ValueError("upstream budget and burst must be positive, row cost >= 0")
        if self.when_dry not in WHEN_DRY:
            raise ValueError(f"when_dry must be one of {', '.join(WHEN_DRY)}")
        if self.live_per_minute < 0 or self.time_scale <= 0:
            raise ValueError("live lookups must be >= 0 and the time scale positive")
        if not 0 <= self.warm_share <= 1:
            raise ValueError("the warm share must be within 0..1")


class Dry(Exception):
    """The budget is spent: answer 429 with this Retry-After (real seconds)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def row_key(item: dict[str, Any]) -> str:
    """What a bulk row costs LML to look up: its artist, or a V/A row's release."""
    name = item.get("artist_name") or ""
    if is_va_name(name):
        return f"release:{item.get('legacy_release_id')}"
    return f"artist:{fold(name)}"


class Capacity:
    def __init__(self, settings: CapacitySettings) -> None:
        settings.validate()
        self.settings = settings
        self._rate = settings.per_minute / 60 * settings.time_scale  # tokens per real second
        self._tokens = settings.burst
        self._stamp = time.monotonic()
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.upstream_calls = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.refused = 0
        self.bulk_waits: list[float] = []  # real seconds a bulk request queued
        self.live_waits: list[float] = []  # real seconds each live lookup queued
        self._stop = threading.Event()
        self._live: threading.Thread | None = None

    # -- the bucket ------------------------------------------------------------------------

    def _refill(self, now: float) -> None:
        self._tokens = min(self.settings.burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def _reserve(self, cost: float) -> float:
        """Take `cost` calls from the bucket (it may go into debt); returns how long (real
        seconds) the caller waits until they are paid for."""
        now = time.monotonic()
        self._refill(now)
        self._tokens -= cost
        self.upstream_calls += math.ceil(cost)
        return max(0.0, -self._tokens / self._rate)

    def charge_bulk(self, inputs: list[dict[str, Any]]) -> float:
        """Charge a bulk request's cache misses; returns the real seconds it must queue, or
        raises Dry when the budget is spent and the model refuses rather than queues."""
        keys = {row_key(item) for item in inputs}
        with self._lock:
            misses = {k for k in keys - self._seen if not self._warm(k)}
            cost = len(misses) * self.settings.row_cost
            if cost and self.settings.when_dry == "429":
                self._refill(time.monotonic())
                # The bucket must hold the request's calls (at most a full bucket's worth).
                needed = min(cost, self.settings.burst)
                if self._tokens < needed:
                    self.refused += 1
                    raise Dry((needed - self._tokens) / self._rate)
            wait = self._reserve(cost) if cost else 0.0
            self._seen |= misses
            self.cache_misses += len(misses)
            self.cache_hits += len(keys) - len(misses)
            if self.settings.when_dry == "queue":
                self.bulk_waits.append(wait)
            return wait if self.settings.when_dry == "queue" else 0.0

    def _warm(self, key: str) -> bool:
        share = self.settings.warm_share
        return share > 0 and fraction("standin-warm", key) < share

    # -- the station's live lookups --------------------------------------------------------

    def start(self) -> None:
        if self.settings.live_per_minute > 0 and self._live is None:
            self._live = threading.Thread(target=self._live_load, name="standin-live",
                                          daemon=True)
            self._live.start()

    def stop(self) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.join(timeout=5)
            self._live = None

    def _live_load(self) -> None:
        """Poisson arrivals of live lookups, one upstream call each, queued on the bucket."""
        rng = random.Random(0)
        per_second = self.settings.live_per_minute / 60 * self.settings.time_scale
        while not self._stop.wait(rng.expovariate(per_second)):
            with self._lock:
                wait = self._reserve(1)
                self.live_waits.append(wait)

    # -- reporting -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters and the live lookups' queueing latency, in the model's time (seconds,
        multiplied back by the time scale)."""
        scale = self.settings.time_scale
        with self._lock:
            live = sorted(w * scale for w in self.live_waits)
            bulk = sorted(w * scale for w in self.bulk_waits)
            self._refill(time.monotonic())
            tokens = self._tokens
        return {
            "upstream_calls": self.upstream_calls, "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses, "refused_429": self.refused,
            "tokens": round(tokens, 2), "live_lookups": len(live),
            "live_wait_p50_s": _percentile(live, 0.5), "live_wait_p95_s": _percentile(live, 0.95),
            "live_wait_max_s": live[-1] if live else 0.0,
            "bulk_wait_p95_s": _percentile(bulk, 0.95),
        }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)
