"""The rotation jobs' settings (LML pacing, statement timeout, the active rule, the
coverage gate): plain values, so the command line declares its options without loading
the jobs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from library_identity.config import check_ranges, setting
from library_identity.dbt_names import project_vars
from library_identity.jobs import call_settings
from library_identity.lml.limits import MAX_TIMEOUT_S, MIN_REQUESTS_PER_MINUTE

# The station's rotation jobs run with 60 s; its roles' default of 5 s is too short.
STATEMENT_TIMEOUT_MS = 60_000
# A rotation row is active until its kill_date (none, or later than today); the same rule
# as stg_station__rotation.is_active, used where the job must
# read and write the station table itself rather than a dbt view.
ACTIVE_ROTATION = "(kill_date is null or kill_date > current_date)"
# Resolvable coverage the rotation must reach; dbt's gate and report read the same var.
GATE_MIN_PCT = float(project_vars()["rotation_coverage_min_pct"])
# The backfill's quiet period: looking more often only loads the station's database.
MIN_QUIET_PAUSE_S = 1.0
# LML answers 400 above 50 ids. Fixed, never a setting: a larger
# configured batch size is refused before anything is sent.
LML_REFRESH_BATCH_CAP = 50
# A cold batch of 50 takes about 4 minutes inside LML; shorter timeouts would abandon
# batches LML is still warming and then send them again.
MIN_TIMEOUT_S = 300.0
DEFAULT_TIMEOUT_S = 360.0


@dataclass
class RotationOptions:
    """The LML pacing both rotation jobs take; each job redeclares the defaults it needs."""

    concurrency: int = setting(1, "LML calls in flight at once.", min=1)
    requests_per_minute: float = setting(20.0, "Cap on LML calls per minute.",
                                         min=MIN_REQUESTS_PER_MINUTE)
    # 8 s: the station's backfill timeout for identity/resolve (refresh declares its own).
    timeout_s: float = call_settings.timeout_s(8.0)
    max_attempts: int = call_settings.max_attempts()
    max_consecutive_failures: int = call_settings.max_consecutive_failures()
    lml_outage_budget_s: float = call_settings.lml_outage_budget_s("what was landed is kept")

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


@dataclass
class BackfillOptions(RotationOptions):
    concurrency: int = setting(1, "identity/resolve calls in flight at once.", min=1)
    limit: int | None = setting(None, "Resolve at most this many rows.", min=0)
    dry_run: bool = False
    # Instead of empty handles, the handles the latest cache refresh found unknown to LML
    # (the refresh's stale-reference alert): each row's release id is resolved again.
    stale_handles: bool = False
    # The quiet period: the station is live while a track was logged within the lookback.
    quiet_lookback_s: float = setting(
        60.0, "The station counts as on air while a track was logged within this many "
              "seconds; 0 never waits.", min=0, env="BACKFILL_QUIET_LOOKBACK_SECONDS")
    quiet_pause_s: float = setting(
        30.0, "Seconds between looks at the on-air log while the station is on air.",
        min=MIN_QUIET_PAUSE_S, env="BACKFILL_QUIET_PAUSE_SECONDS")
    quiet_max_wait_s: float = setting(
        1800.0, "Fail the run (exit 1) once its waits add up to this many seconds; 0 waits "
                "as long as it takes.", min=0, env="BACKFILL_QUIET_MAX_WAIT_SECONDS")

    def sentry_settings(self) -> dict[str, bool | float]:
        """The settings the station's job puts on its transaction, in its units."""
        return {"dry_run": self.dry_run,
                "live_activity_lookback_seconds": self.quiet_lookback_s,
                "live_activity_pause_ms": self.quiet_pause_s * 1000}


@dataclass
class RefreshOptions(RotationOptions):
    batch_size: int = setting(LML_REFRESH_BATCH_CAP, "Identities per LML call; LML refuses "
                              f"more than {LML_REFRESH_BATCH_CAP}.", min=1)
    concurrency: int = setting(3, "Refresh calls in flight at once.", min=1)
    requests_per_minute: float = setting(
        20.0, "Token-bucket cap on LML calls per minute, retries included.",
        min=MIN_REQUESTS_PER_MINUTE)
    timeout_s: float = setting(DEFAULT_TIMEOUT_S,
                               f"Seconds per refresh call, at least {MIN_TIMEOUT_S:g}.",
                               max=MAX_TIMEOUT_S)
    retry_delay_s: float = setting(
        30.0, "Seconds before an identity LML answered `error` for is sent once more.", min=0)
    not_found_alert_pct: float = setting(
        1.0, "Stale-reference alert (exit 5) when more than this share of identities is "
             "not_found.", min=0, max=100)
    dry_run: bool = False  # read the candidates, call nothing, write nothing

    def validate(self) -> None:
        # Said with the reason, before the generic range checks.
        if self.batch_size > LML_REFRESH_BATCH_CAP:
            raise ValueError(f"batch size {self.batch_size} is above LML's refresh cap of "
                             f"{LML_REFRESH_BATCH_CAP} ids per call; use at most "
                             f"{LML_REFRESH_BATCH_CAP}")
        if self.timeout_s < MIN_TIMEOUT_S:
            raise ValueError(f"refresh timeout {self.timeout_s:g} s is too short: a cold batch "
                             f"takes about 4 minutes in LML; use at least {MIN_TIMEOUT_S:g} s")
        super().validate()
