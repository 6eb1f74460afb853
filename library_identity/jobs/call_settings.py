"""The settings of a job's LML calls that every job declares alike
(library_identity.config.setting): each job's options class takes them as fields, giving
its own default where it needs one. Plain values, so the command line declares its
options without loading the jobs."""

from __future__ import annotations

from typing import Any

from library_identity.config import setting
from library_identity.lml.limits import DEFAULT_BUDGET_S, MAX_TIMEOUT_S


def timeout_s(default: float) -> Any:
    return setting(default, "Deadline in seconds for each LML request, from connecting to the "
                            "last byte of the answer, above 0.", max=MAX_TIMEOUT_S)


def max_attempts() -> Any:
    return setting(4, "Attempts per call for transient failures (429, 502-504, network).",
                   min=1)


def max_consecutive_failures() -> Any:
    return setting(5, "Stop the run (exit 3) after this many failed batches in a row.", min=1)


def lml_outage_budget_s(landed: str) -> Any:
    """`landed`: what the job keeps when it stops, as its help says it."""
    return setting(DEFAULT_BUDGET_S, "Seconds to wait for LML to come back when it stops "
                                     "answering mid-run (refused, timeouts, 502-504) before "
                                     f"stopping (exit 3); {landed}. 0 stops at once.",
                   min=0, env="LML_OUTAGE_BUDGET_SECONDS")
