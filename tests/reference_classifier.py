"""The reference classifier of a bulk-resolve response: the same sorting and counting as
the loader's (library_identity.resolve.fastpath), with every result checked by the
contract's pydantic models (library_identity.lml.contract). The differential test and the
loader's CPU benchmark hold the loader to it.

Every input row ends in exactly one bucket, so `scanned` counts library rows, never
results. A result is only landed when it is trusted (its library_id was sent, and it is
that id's genuine answer) and valid (it passes the contract's models).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from library_identity.db import jsonb_text, landable
from library_identity.jsonfast import NotJSON
from library_identity.lml.contract import INTEGER_MAX, BulkResolveResult
from library_identity.resolve.candidates import Candidate
from library_identity.resolve.counters import Counters
from library_identity.resolve.response_rules import (
    Problem,
    count_unanswered,
    flag_track_confidences,
    tracks_usable,
    trusted_positions,
)


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
    problems: list[Problem] = field(default_factory=list)


_RESULTS = TypeAdapter(list[BulkResolveResult])


def _validate_all(raws: list[Any]) -> list[BulkResolveResult | str]:
    """Validate a batch's results; one call for the usual all-valid batch (about twice as
    fast), one by one only when something in it is wrong."""
    try:
        return [_check(r) for r in _RESULTS.validate_python(raws)]
    except (ValidationError, ValueError, RecursionError):
        return [_validate(raw) for raw in raws]


def _validate(raw: Any) -> BulkResolveResult | str:
    try:
        result = BulkResolveResult.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'invalid')}"
    except (ValueError, RecursionError) as exc:
        return f"not checkable ({type(exc).__name__})"
    return _check(result)


def _check(result: BulkResolveResult) -> BulkResolveResult | str:
    if result.kind == "single_artist" and (
        result.main is None or result.method is None or result.confidence is None
        or not result.provenance
    ):
        return "single_artist result without main, method, confidence or provenance"
    return result


def classify_batch(batch: list[Candidate], payload: Any) -> BatchOutcome:
    """Sort a batch as the station's consumer counts it: rows missing from a short response
    are cardinality mismatches; a result for a foreign id, or a further copy of an id
    already answered, is untrusted and takes the place of one unanswered row; every other
    row is dispatched by its verdict's kind."""
    outcome = BatchOutcome()
    counters = outcome.counters
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        counters.skip("invalid_response", len(batch))
        outcome.problems.append(Problem("invalid_response", "body has no results array"))
        return outcome

    tcv = payload.get("tracks_contract_version")
    usable = tracks_usable(tcv)
    chosen = trusted_positions(batch, results, outcome.problems)
    count_unanswered(len(batch), len(chosen), len(results), counters, outcome.problems)
    trusted = [(c, results[chosen[c.library_id]]) for c in batch if c.library_id in chosen]
    checked_all = _validate_all([raw for _, raw in trusted])
    for (candidate, raw), checked in zip(trusted, checked_all, strict=True):
        reason, raw_json = checked if isinstance(checked, str) else None, ""
        if reason is None:
            try:
                raw_json = landable(raw)
            except NotJSON as exc:
                reason = str(exc)
        if reason is not None:
            counters.skip("invalid_response")
            outcome.problems.append(Problem(
                "invalid_response", f"library_id={candidate.library_id} error={reason}"))
            continue
        assert not isinstance(checked, str)
        if checked.kind == "compilation":
            flag_track_confidences(candidate.library_id, checked.tracks, outcome.problems)
        outcome.verdicts.append(_count(counters, candidate, checked, raw, raw_json, tcv,
                                       usable))
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


def copy_row(run_id: uuid.UUID, v: Verdict) -> tuple[Any, ...]:
    """One raw_verdicts row in landing.COLUMNS order, from the models."""
    main = v.result.main
    return (
        run_id, v.candidate.library_id, v.candidate.cohort, v.result.kind, v.result.method,
        v.result.confidence,
        main.discogs_artist_id if main else None,
        main.musicbrainz_artist_id if main else None,
        main.wikidata_qid if main else None,
        main.spotify_artist_id if main else None,
        main.apple_music_artist_id if main else None,
        main.bandcamp_id if main else None,
        v.tracks_contract_version, v.tracks_attempted, len(v.result.tracks or ()),
        jsonb_text(v.candidate.as_input()), v.raw_json,
    )
