"""Checks one bulk-resolve response against its batch and sorts every input row.

Every input row ends in exactly one bucket, so `scanned` counts library rows, never
results. A result is only landed when it is trusted (its library_id was sent and is
answered once) and valid (it passes the contract's models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from loader.db import has_nul
from loader.lml.contract import INTEGER_MAX, BulkResolveResult
from loader.resolve.counters import Counters


@dataclass(frozen=True)
class Candidate:
    library_id: int
    artist_name: str
    album_title: str
    legacy_release_id: int | None
    cohort: str
    reason: str

    def as_input(self) -> dict[str, Any]:
        return {"library_id": self.library_id, "artist_name": self.artist_name,
                "album_title": self.album_title, "legacy_release_id": self.legacy_release_id}


@dataclass(frozen=True)
class Verdict:
    candidate: Candidate
    result: BulkResolveResult
    raw: dict[str, Any]
    tracks_contract_version: int | None
    tracks_attempted: bool | None
    raw_json: str  # `raw` as JSON text, checked to fit the jsonb column


@dataclass
class BatchOutcome:
    verdicts: list[Verdict] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    problems: list[str] = field(default_factory=list)


def tracks_usable(tracks_contract_version: Any) -> bool:
    # Only the literal integer 1 means per-track data follows the contract.
    return type(tracks_contract_version) is int and tracks_contract_version == 1


_RESULTS = TypeAdapter(list[BulkResolveResult])


def _validate_all(raws: list[Any]) -> list[BulkResolveResult | str]:
    """Validate a batch's results; one call for the usual all-valid batch (about twice as
    fast), one by one only when something in it is wrong."""
    try:
        return [_check(r) for r in _RESULTS.validate_python(raws)]
    except ValidationError:
        return [_validate(raw) for raw in raws]


def _validate(raw: Any) -> BulkResolveResult | str:
    try:
        result = BulkResolveResult.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'invalid')}"
    return _check(result)


def _landable(raw: Any) -> str | None:
    """`raw` as JSON text when the landing table can hold it: Postgres text and jsonb
    cannot store a NUL character anywhere (a value or a key)."""
    text = pydantic_core.to_json(raw).decode()
    return None if has_nul(text) else text


def _check(result: BulkResolveResult) -> BulkResolveResult | str:
    if result.kind == "single_artist" and (
        result.main is None or result.method is None or result.confidence is None
        or not result.provenance
    ):
        return "single_artist result without main, method, confidence or provenance"
    return result


def classify_batch(batch: list[Candidate], payload: Any) -> BatchOutcome:
    outcome = BatchOutcome()
    counters = outcome.counters
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        counters.skip("invalid_response", len(batch))
        outcome.problems.append("invalid_response: body has no results array")
        return outcome

    tcv = payload.get("tracks_contract_version")
    usable = tracks_usable(tcv)
    by_id = {c.library_id: c for c in batch}
    answers: dict[int, list[Any]] = {}
    foreign = 0
    for raw in results:
        library_id = raw.get("library_id") if isinstance(raw, dict) else None
        if type(library_id) is int and library_id in by_id:
            answers.setdefault(library_id, []).append(raw)
        else:
            foreign += 1
    if foreign:
        outcome.problems.append(f"lml_untrusted_library_id: {foreign} result(s) for ids "
                                "not in the batch")

    shortfall = max(0, len(batch) - len(results))
    repeated = sorted(lid for lid, found in answers.items() if len(found) > 1)
    if repeated:
        outcome.problems.append(f"lml_untrusted_library_id: ids answered more than once: "
                                f"{repeated[:10]}")
    trusted: list[tuple[Candidate, Any]] = []
    for candidate in batch:
        found = answers.get(candidate.library_id, [])
        if not found:
            if shortfall:
                shortfall -= 1
                counters.skip("lml_cardinality_mismatch")
            else:
                counters.skip("lml_untrusted_library_id")
        elif len(found) > 1:
            counters.skip("lml_untrusted_library_id")
        else:
            trusted.append((candidate, found[0]))
    checked_all = _validate_all([raw for _, raw in trusted])
    for (candidate, raw), checked in zip(trusted, checked_all, strict=True):
        raw_json = None if isinstance(checked, str) else _landable(raw)
        if raw_json is None:
            reason = checked if isinstance(checked, str) else "a NUL character in a string"
            counters.skip("invalid_response")
            outcome.problems.append(f"invalid_response: library_id {candidate.library_id}: "
                                    f"{reason}")
            continue
        assert not isinstance(checked, str)
        outcome.verdicts.append(_count(counters, candidate, checked, raw, raw_json, tcv,
                                       usable))
    if len(batch) > len(results):
        outcome.problems.append(f"lml_cardinality_mismatch: {len(results)} results for "
                                f"{len(batch)} inputs")
    return outcome


def _count(counters: Counters, candidate: Candidate, result: BulkResolveResult,
           raw: dict[str, Any], raw_json: str, tcv: Any, usable: bool) -> Verdict:
    counters.scanned += 1
    tracks_attempted = result.tracks_attempted
    if tracks_attempted is False and result.tracks:
        tracks_attempted = True  # illegal pair (false, non-empty): the contract says treat as true
    if result.kind == "single_artist":
        counters.rows_resolved += 1
        counters.source_rows_skipped_null_confidence += sum(
            1 for p in result.provenance
            if p.get("confidence") is None or p.get("external_id") is None)
    elif result.kind == "unresolved":
        counters.rows_unresolved += 1
    elif usable and tracks_attempted:
        counters.rows_resolved_compilation += 1
    else:
        counters.rows_skipped["compilation"] += 1
    # Any other version only means "not usable"; one the integer column cannot hold is
    # stored as unknown.
    fits = type(tcv) is int and -INTEGER_MAX - 1 <= tcv <= INTEGER_MAX
    return Verdict(candidate=candidate, result=result, raw=raw,
                   tracks_contract_version=tcv if fits else None,
                   tracks_attempted=tracks_attempted, raw_json=raw_json)
