"""The rotation jobs' shared settings: LML pacing, statement timeout, the active rule."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from library_identity.config import check_ranges, setting
from library_identity.lml.client import MAX_TIMEOUT_S, MIN_REQUESTS_PER_MINUTE
from library_identity.lml.outage import DEFAULT_BUDGET_S

# The station's rotation jobs run with 60 s; its roles' default of 5 s is too short.
STATEMENT_TIMEOUT_MS = 60_000
# A rotation row is active until its kill_date (none, or later than today); the same rule
# as stg_station__rotation.is_active, used where the job must
# read and write the station table itself rather than a dbt view.
ACTIVE_ROTATION = "(kill_date is null or kill_date > current_date)"


@dataclass
class RotationOptions:
    """The LML pacing both rotation jobs take; each job redeclares the defaults it needs."""

    concurrency: int = setting(1, "LML calls in flight at once.", min=1)
    requests_per_minute: float = setting(20.0, "Cap on LML calls per minute.",
                                         min=MIN_REQUESTS_PER_MINUTE)
    # 8 s: the station's backfill timeout for identity/resolve (refresh declares its own).
    timeout_s: float = setting(8.0, "Deadline in seconds for each LML request, from "
                                    "connecting to the last byte of the answer, above 0.",
                               max=MAX_TIMEOUT_S)
    max_attempts: int = setting(
        4, "Attempts per call for transient failures (429, 502-504, network).", min=1)
    max_consecutive_failures: int = setting(
        5, "Stop the run (exit 3) after this many failed batches in a row.", min=1)
    lml_outage_budget_s: float = setting(
        DEFAULT_BUDGET_S, "Seconds to wait for LML to come back when it stops answering "
                          "mid-run (refused, timeouts, 502-504) before stopping (exit 3); "
                          "what was landed is kept. 0 stops at once.", min=0)

    def validate(self) -> None:
        check_ranges(self)
        if not all(math.isfinite(v) and v > 0 for v in (self.requests_per_minute,
                                                          self.timeout_s)):
            raise ValueError("requests per minute and timeout must be finite numbers above 0")

    def client_settings(self) -> dict[str, Any]:
        """What the LML client must be built with for this run."""
        return {"timeout_s": self.timeout_s, "max_attempts": self.max_attempts,
                "requests_per_minute": self.requests_per_minute}

    def public(self) -> dict[str, Any]:
        return asdict(self)
