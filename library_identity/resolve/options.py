"""A resolve run's settings, and the candidate modes, cohorts and partitions they choose
from: plain values, so the command line declares its options without loading the job."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from library_identity import dbt_names
from library_identity.config import check_ranges, setting
from library_identity.jobs import call_settings
from library_identity.lml.limits import LML_BULK_RESOLVE_CAP, MIN_REQUESTS_PER_MINUTE
from library_identity.lml.pacing import PacingSettings

MODES = ("full", "legacy", "recheck")
COHORTS = ("va", "non_va")  # in run order: V/A first


@dataclass(frozen=True)
class Partition:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        try:
            index_text, count_text = text.split("/")
            index, count = int(index_text), int(count_text)
        except ValueError:
            raise ValueError(f"partition must look like i/n (e.g. 0/4), got {text!r}") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"partition {text!r}: need n >= 1 and 0 <= i < n")
        return cls(index, count)



@dataclass
class ResolveOptions:
    """A resolve run's settings: defaults, ranges and help text are declared here once; the
    command's options and the dbt vars derive from them."""

    mode: str = "full"
    batch_size: int = setting(500, "Rows per LML call for the non-V/A cohort.",
                              min=1, max=LML_BULK_RESOLVE_CAP, why="LML's cap")
    va_batch_size: int = setting(100, "Rows per LML call for the V/A cohort.",
                                 min=1, max=LML_BULK_RESOLVE_CAP, why="LML's cap")
    concurrency: int | None = setting(
        None, "A fixed pace: exactly this many LML calls in flight (default: adaptive).",
        min=1)
    min_concurrency: int = setting(
        1, "Adaptive pace: never fewer LML calls in flight than this.", min=1)
    max_concurrency: int = setting(
        8, "Adaptive pace: never more LML calls in flight than this.", min=1)
    requests_per_minute: float | None = setting(
        None, "Hard ceiling on LML calls per minute, retries included; unlimited when unset.",
        min=MIN_REQUESTS_PER_MINUTE)
    timeout_s: float = call_settings.timeout_s(30.0)
    max_attempts: int = call_settings.max_attempts()
    max_consecutive_failures: int = call_settings.max_consecutive_failures()
    lml_outage_budget_s: float = call_settings.lml_outage_budget_s(
        "the batches landed are kept")
    stale_days: int = setting(7, "A resolved row is re-checked after this many days.", min=1)
    unresolved_retry_days: int = setting(
        7, "An unresolved row is retried after this many days.", min=1)
    limit: int | None = setting(None, "Resolve at most this many rows.", min=0)
    partition: Partition | None = None
    cohorts: tuple[str, ...] = COHORTS
    dry_run: bool = False
    latency_floor_s: float = 0.05  # latency rises below this much are jitter, not load
    include_tracks: bool = True

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        check_ranges(self)
        if not self.timeout_s > 0:
            raise ValueError(f"timeout must be above 0, got {self.timeout_s:g}")
        if not self.cohorts or set(self.cohorts) - set(COHORTS):
            raise ValueError(f"cohorts must be among {', '.join(COHORTS)}")
        self.pacing().validate()

    def client_settings(self) -> dict[str, Any]:
        """What the LML client must be built with for this run."""
        return {"timeout_s": self.timeout_s, "max_attempts": self.max_attempts,
                "requests_per_minute": self.requests_per_minute}

    def dbt_vars(self) -> dict[str, Any]:
        return {dbt_names.CANDIDATE_MODE_VAR: self.mode,
                dbt_names.STALE_DAYS_VAR: self.stale_days,
                dbt_names.UNRESOLVED_RETRY_DAYS_VAR: self.unresolved_retry_days}

    def pacing(self) -> PacingSettings:
        if self.concurrency is not None:
            return PacingSettings.fixed_at(self.concurrency)
        return PacingSettings(min_concurrency=self.min_concurrency,
                              max_concurrency=self.max_concurrency,
                              latency_floor_s=self.latency_floor_s)

    def batch_size_for(self, cohort: str) -> int:
        return self.va_batch_size if cohort == "va" else self.batch_size

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["partition"] = (f"{self.partition.index}/{self.partition.count}"
                             if self.partition else None)
        return data


