"""What the rotation jobs share beyond the LML gate and the writer."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# The station's rotation jobs run with 60 s; its roles' default of 5 s is too short.
STATEMENT_TIMEOUT_MS = 60_000
# A rotation row is active until its kill_date (none, or later than today); the same rule
# as stg_station__rotation.is_active, used where the job must
# read and write the station table itself rather than a dbt view.
ACTIVE_ROTATION = "(kill_date is null or kill_date > current_date)"


@dataclass
class JobOptions:
    """The LML pacing both rotation jobs take; each job redeclares the defaults it needs."""

    concurrency: int = 1
    requests_per_minute: float = 20.0
    timeout_s: float = 8.0
    max_attempts: int = 4
    max_consecutive_failures: int = 5

    def validate(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not all(math.isfinite(v) and v > 0 for v in (self.requests_per_minute,
                                                          self.timeout_s)):
            raise ValueError("requests per minute and timeout must be finite numbers above 0")
        if self.max_attempts < 1 or self.max_consecutive_failures < 1:
            raise ValueError("max attempts and max consecutive failures must be at least 1")

    def client_settings(self) -> dict[str, Any]:
        """What the LML client must be built with for this run."""
        return {"timeout_s": self.timeout_s, "max_attempts": self.max_attempts,
                "requests_per_minute": self.requests_per_minute}

    def public(self) -> dict[str, Any]:
        return asdict(self)
