"""Riding out an LML outage: a run keeps its place while LML restarts.

A call that failed the way a stopped LML makes calls fail (refused connections, timeouts,
502/503/504; `client.is_outage`), after the client's own retries, makes the job ask
/health. When LML answers, the failure was the call's own and counts as before. When it
does not, LML is down: the job sends nothing more, asks /health again with growing pauses
(never sooner than a Retry-After LML or its proxy sent), and once LML answers it sends the
failed call again and carries on where it stopped. The wait is bounded by the outage
budget: when LML has not come back within it, the run stops (LMLUnavailable, exit 3),
keeping every batch it landed.

Calls already in flight when LML went down fail too; they started before LML came back,
so they are sent again without another wait. A call is sent again at most
MAX_SENDS_AGAIN times: an LML that keeps coming back and falling over as that call
arrives gets it counted as a failed call, as any other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable

from library_identity.errors import LMLError, LMLUnavailable
from library_identity.lml.client import LMLClient, is_outage

log = logging.getLogger(__name__)

PROBE_FIRST_S = 1.0  # the first pause before asking /health again, doubled each time
PROBE_MAX_S = 15.0  # ...up to this: LML back is noticed within this many seconds
PROBE_TIMEOUT_S = 5.0
MAX_SENDS_AGAIN = 5


class Outage:
    """The outage rule of one run (see the module). `rides_out` is called on the job's
    main thread with each failed call; while it waits, no new call starts."""

    def __init__(self, client: LMLClient, budget_s: float, stop: threading.Event, *,
                 probe_first_s: float = PROBE_FIRST_S, probe_max_s: float = PROBE_MAX_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.budget_s = budget_s
        self.stop = stop
        self.probe_first_s = probe_first_s
        self.probe_max_s = probe_max_s
        self.clock = clock
        self.back_at = float("-inf")  # when LML last came back
        self.outages = 0
        self.waited_s = 0.0
        self._sent_again: Counter[Hashable] = Counter()

    def rides_out(self, error: LMLError, started: float, call: Hashable) -> bool:
        """True: the call (`call` names it; it started at `started` on this clock) failed
        for want of LML, and LML is back now (or the run was asked to stop): send it
        again. False: count it as a failed call. Raises LMLUnavailable when LML stays away
        past the budget."""
        if not is_outage(error) or self._sent_again[call] >= MAX_SENDS_AGAIN:
            return False
        if started < self.back_at:
            self._sent_again[call] += 1
            return True  # it failed during the outage just waited out
        healthy, retry_after = self.client.healthy(timeout_s=PROBE_TIMEOUT_S)
        if healthy:
            return False  # LML answers: the failure was this call's own
        self._wait(error, max(retry_after or 0.0, getattr(error, "retry_after", None) or 0.0))
        self._sent_again[call] += 1
        return True

    def summary(self) -> dict[str, float]:
        return {"lml_outages": self.outages, "lml_outage_wait_s": round(self.waited_s, 1)}

    def _wait(self, error: LMLError, retry_after: float) -> None:
        started = self.clock()
        deadline = started + self.budget_s
        log.warning("lml_outage LML is not answering (%s); waiting up to %g s for it to come "
                    "back (--lml-outage-budget), asking %s/health", error, self.budget_s,
                    self.client.base_url)
        pause = self.probe_first_s
        try:
            while True:
                wait_s = max(pause, retry_after)
                left = deadline - self.clock()
                if left <= 0:
                    raise LMLUnavailable(
                        f"LML did not come back within the {self.budget_s:g} s outage budget "
                        f"(--lml-outage-budget); stopping (last error: {error})")
                if retry_after > left:
                    raise LMLUnavailable(
                        f"LML is down and asked to be called again in {retry_after:g} s, "
                        f"past what is left of the {self.budget_s:g} s outage budget "
                        f"(--lml-outage-budget); stopping (last error: {error})")
                if self.stop.wait(min(wait_s, left)):
                    return  # asked to stop: the job ends without sending again
                healthy, retry_after_now = self.client.healthy(timeout_s=PROBE_TIMEOUT_S)
                if healthy:
                    self.back_at = self.clock()
                    self.outages += 1
                    log.warning("lml_back after %.1f s: sending the failed calls again",
                                self.back_at - started)
                    return
                retry_after = retry_after_now or 0.0
                pause = min(pause * 2, self.probe_max_s)
        finally:
            self.waited_s += self.clock() - started
