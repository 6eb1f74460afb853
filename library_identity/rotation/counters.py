"""Counters of the rotation jobs and their invariants.

Refresh, in identity units: every identity sent ends exactly once, in identities_resolved
(LML answered warmed, not_found or not_implemented) or in lml_error (its batch failed, or
its item stayed `error` after the one retry), so identities_scanned == identities_resolved
+ lml_error. An `error` item waiting for its retry is not counted until the retry answers.

Backfill, in rotation-row units: scanned == resolved + unresolved + lml_error + raced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from library_identity.errors import InvariantViolation
from library_identity.lml.contract import CacheRefreshResultItem

__all__ = ["BackfillCounters", "InvariantViolation", "RefreshCounters", "tally"]

REFRESH_STATUSES = ("warmed", "not_found", "not_implemented", "error")


@dataclass(frozen=True)
class Tally:
    """What one final item adds: its status bucket and what it warmed."""

    bucket: str  # one of REFRESH_STATUSES, or "unknown"
    warmed_releases: int = 0
    warmed_artists: int = 0


def tally(item: CacheRefreshResultItem) -> Tally:
    """Sources are tallied for `warmed` items only, as in the station's job: an item is
    `warmed` as soon as one source's release leg succeeded, so no other status holds a
    successful release leg. An artist leg that succeeded counts whatever its source's
    release leg did, as the station counts it: that artist's cache is warm."""
    if item.status not in REFRESH_STATUSES:
        return Tally("unknown")
    if item.status != "warmed":
        return Tally(item.status)
    releases = artists = 0
    for source in (item.sources or {}).values():
        if source is None:
            continue
        releases += source.release_outcome == "success"
        artists += sum(1 for a in source.artists if a.outcome == "success")
    return Tally("warmed", releases, artists)


@dataclass
class RefreshCounters:
    identities_scanned: int = 0
    identities_resolved: int = 0
    warmed_releases: int = 0
    warmed_artists: int = 0
    not_found: int = 0
    not_implemented: int = 0
    lml_error: int = 0
    # Not part of the invariant: how lml_error and the work split up.
    lml_error_items: int = 0        # `error` twice, an unknown status, or no valid answer
    lml_error_batch: int = 0        # identities whose batch failed or went unanswered
    retried: int = 0                # identities sent a second time after an `error` item
    failed_batches: int = 0
    lml_total_calls: int = 0        # HTTP attempts, retries included
    lml_total_latency_ms: float = 0.0
    skipped_null_identity: int = 0  # active rotation rows without an lml_identity_id

    def add(self, t: Tally) -> None:
        self.identities_scanned += 1
        if t.bucket in ("error", "unknown"):
            self.lml_error += 1
            self.lml_error_items += 1
            return
        self.identities_resolved += 1
        self.warmed_releases += t.warmed_releases
        self.warmed_artists += t.warmed_artists
        if t.bucket == "not_found":
            self.not_found += 1
        elif t.bucket == "not_implemented":
            self.not_implemented += 1

    def failed(self, identities: int) -> None:
        self.identities_scanned += identities
        self.lml_error += identities
        self.lml_error_batch += identities

    def check_invariant(self) -> None:
        if self.identities_scanned != self.identities_resolved + self.lml_error:
            raise InvariantViolation(
                f"rotation refresh counter invariant broken: identities_scanned="
                f"{self.identities_scanned} but identities_resolved+lml_error="
                f"{self.identities_resolved + self.lml_error}")

    def not_found_pct(self) -> float | None:
        if not self.identities_scanned:
            return None
        return 100.0 * self.not_found / self.identities_scanned

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lml_total_latency_ms"] = round(self.lml_total_latency_ms, 1)
        return data

    def flat(self, prefix: str = "rotation_refresh") -> dict[str, float]:
        return {f"{prefix}.{k}": v for k, v in self.as_dict().items()}


@dataclass
class BackfillCounters:
    scanned: int = 0
    resolved: int = 0     # written (or, in a dry run, would be written)
    unresolved: int = 0   # LML answered 422: no identity for that release id
    lml_error: int = 0
    raced: int = 0        # the row changed between read and write; left to the other writer
    minted: int = 0       # of resolved: LML created the identity on this call
    invalid_response: int = 0  # of lml_error: an answer that breaks the contract
    lml_total_calls: int = 0
    lml_total_latency_ms: float = 0.0
    quiet_pauses: int = 0          # pauses because the station was on air
    quiet_wait_ms: float = 0.0     # time spent in them

    OUTCOMES = ("resolved", "unresolved", "lml_error", "raced")

    def count(self, outcome: str) -> None:
        if outcome not in self.OUTCOMES:
            raise ValueError(f"unknown backfill outcome {outcome!r}")
        self.scanned += 1
        setattr(self, outcome, getattr(self, outcome) + 1)

    def check_invariant(self) -> None:
        accounted = sum(getattr(self, o) for o in self.OUTCOMES)
        if self.scanned != accounted:
            raise InvariantViolation(
                f"rotation backfill counter invariant broken: scanned={self.scanned} but "
                f"resolved+unresolved+lml_error+raced={accounted}")

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["lml_total_latency_ms"] = round(self.lml_total_latency_ms, 1)
        data["quiet_wait_ms"] = round(self.quiet_wait_ms, 1)
        return data

    def flat(self, prefix: str = "rotation_backfill") -> dict[str, float]:
        return {f"{prefix}.{k}": v for k, v in self.as_dict().items()}
