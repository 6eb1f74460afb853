"""Run counters, their invariant and the dry-run report.

Library-row units: every scanned row ends in exactly one of resolved,
resolved_compilation, unresolved or one skip bucket, so
scanned == resolved + resolved_compilation + unresolved + sum(skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from library_identity.errors import InvariantViolation

SKIP_BUCKETS = (
    "compilation",               # compilation verdict whose tracks LML has not attempted yet
    "lml_error",                 # the whole batch failed after retries
    "lml_cardinality_mismatch",  # LML returned fewer results than inputs
    "lml_untrusted_library_id",  # a result for a foreign or already-answered library_id
    "invalid_response",          # a result (or body) that breaks the contract
    "writer_error",              # landing the batch failed
)
COHORTS = ("va", "non_va")
DRY_RUN_REPORT_VERSION = 1


@dataclass
class Counters:
    scanned: int = 0
    rows_resolved: int = 0
    rows_resolved_compilation: int = 0
    rows_unresolved: int = 0
    rows_skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_BUCKETS, 0))
    source_rows_skipped_null_confidence: int = 0
    lml_total_calls: int = 0
    lml_total_latency_ms: float = 0.0

    def skip(self, bucket: str, rows: int = 1) -> None:
        self.scanned += rows
        self.rows_skipped[bucket] += rows

    def add(self, other: Counters) -> None:
        self.scanned += other.scanned
        self.rows_resolved += other.rows_resolved
        self.rows_resolved_compilation += other.rows_resolved_compilation
        self.rows_unresolved += other.rows_unresolved
        for bucket, value in other.rows_skipped.items():
            self.rows_skipped[bucket] += value
        self.source_rows_skipped_null_confidence += other.source_rows_skipped_null_confidence
        self.lml_total_calls += other.lml_total_calls
        self.lml_total_latency_ms += other.lml_total_latency_ms

    def landing_failed(self, landed_rows: int) -> Counters:
        """This batch's counters when its landing failed: rows that would have been
        landed become writer_error; rows that were never landable keep their bucket."""
        failed = Counters(scanned=self.scanned, lml_total_calls=self.lml_total_calls,
                          lml_total_latency_ms=self.lml_total_latency_ms)
        failed.rows_skipped = dict(self.rows_skipped, compilation=0)
        failed.rows_skipped["writer_error"] += landed_rows
        return failed

    @property
    def accounted(self) -> int:
        return (self.rows_resolved + self.rows_resolved_compilation + self.rows_unresolved
                + sum(self.rows_skipped.values()))

    def check_invariant(self, label: str = "total") -> None:
        if self.scanned != self.accounted:
            raise InvariantViolation(
                f"counter invariant broken for {label}: scanned={self.scanned} but "
                f"resolved+compilation+unresolved+skipped={self.accounted}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "rows_resolved": self.rows_resolved,
            "rows_resolved_compilation": self.rows_resolved_compilation,
            "rows_unresolved": self.rows_unresolved,
            "rows_skipped": dict(self.rows_skipped),
            "source_rows_skipped_null_confidence": self.source_rows_skipped_null_confidence,
            "lml_total_calls": self.lml_total_calls,
            "lml_total_latency_ms": round(self.lml_total_latency_ms, 1),
        }

    def flat(self, prefix: str) -> dict[str, float]:
        """Dotted numeric keys, e.g. for Sentry data: resolve.va.rows_skipped.lml_error."""
        out: dict[str, float] = {}
        for key, value in self.as_dict().items():
            if isinstance(value, dict):
                out.update({f"{prefix}.{key}.{k}": v for k, v in value.items()})
            else:
                out[f"{prefix}.{key}"] = value
        return out


@dataclass
class RunCounters:
    cohorts: dict[str, Counters] = field(
        default_factory=lambda: {cohort: Counters() for cohort in COHORTS})

    @property
    def total(self) -> Counters:
        total = Counters()
        for counters in self.cohorts.values():
            total.add(counters)
        return total

    def check_invariant(self) -> None:
        for cohort, counters in self.cohorts.items():
            counters.check_invariant(cohort)
        self.total.check_invariant()

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total.as_dict(),
                **{cohort: c.as_dict() for cohort, c in self.cohorts.items()}}

    def flat(self, prefix: str = "resolve") -> dict[str, float]:
        out = self.total.flat(prefix)
        for cohort, counters in self.cohorts.items():
            out.update(counters.flat(f"{prefix}.{cohort}"))
        return out


def _dry_run_block(c: Counters) -> dict[str, Any]:
    # The station's dry-run keys, in the station's order; invalid_response is ours.
    return {
        "scanned": c.scanned,
        "lml_total_calls": c.lml_total_calls,
        "lml_total_latency_ms": round(c.lml_total_latency_ms, 1),
        "would_resolve": c.rows_resolved,
        "would_resolve_compilation": c.rows_resolved_compilation,
        "would_unresolved": c.rows_unresolved,
        "would_skip": {
            "compilation": c.rows_skipped["compilation"],
            "lml_error": c.rows_skipped["lml_error"],
            "lml_cardinality_mismatch": c.rows_skipped["lml_cardinality_mismatch"],
            "lml_untrusted_library_id": c.rows_skipped["lml_untrusted_library_id"],
            "invalid_response": c.rows_skipped["invalid_response"],
        },
        "source_rows_skipped_null_confidence": c.source_rows_skipped_null_confidence,
    }


def dry_run_report(counters: RunCounters, mode: str) -> dict[str, Any]:
    """One JSON object: the totals under the station's keys, plus version, mode and cohorts."""
    return {
        "report_version": DRY_RUN_REPORT_VERSION,
        "mode": mode,
        **_dry_run_block(counters.total),
        "cohorts": {cohort: _dry_run_block(c) for cohort, c in counters.cohorts.items()},
    }
