"""Checks one bulk-resolve response against its batch and sorts every input row.

Every input row ends in exactly one bucket, so `scanned` counts library rows, never
results. A result is only landed when it is trusted (its library_id was sent, and it is
that id's genuine answer) and valid (it passes the contract's models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from library_identity.db import landable
from library_identity.jsonfast import NotJSON
from library_identity.lml.contract import INTEGER_MAX, BulkResolveResult, is_confidence
from library_identity.resolve.candidates import Candidate
from library_identity.resolve.counters import Counters


@dataclass(frozen=True)
class Verdict:
    candidate: Candidate
    result: BulkResolveResult
    raw: dict[str, Any]
    tracks_contract_version: int | None
    tracks_attempted: bool | None
    raw_json: str  # `raw` as JSON text, checked to fit the jsonb column


@dataclass(frozen=True)
class Problem:
    """Something wrong in a response: a log event `<step> key=value…`; the steps in
    REPORTED_STEPS also go to Sentry as events tagged with the step."""

    step: str
    detail: str

    def __str__(self) -> str:
        return f"{self.step} {self.detail}"


# The steps the station's consumer reports to Sentry from a response check.
REPORTED_STEPS = ("lml_cardinality_mismatch", "lml_untrusted_library_id")


@dataclass
class BatchOutcome:
    verdicts: list[Verdict] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    problems: list[Problem] = field(default_factory=list)


def tracks_usable(tracks_contract_version: Any) -> bool:
    # Only the literal integer 1 means per-track data follows the contract.
    return type(tracks_contract_version) is int and tracks_contract_version == 1


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


def shown(value: Any) -> str:
    """A value LML sent, as a log shows it: its repr, cut short."""
    return repr(value)[:40]


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


def count_unanswered(inputs: int, answered: int, results: int, counters: Counters,
                     problems: list[Problem]) -> None:
    """Rows without a trusted answer: those a short response left out are a cardinality
    mismatch (asked again next run), the rest lost their place to a foreign or repeated
    id (untrusted). A response of any other length than the batch is reported as a
    cardinality mismatch, as the station reports it; extra results cost no row."""
    unanswered = inputs - answered
    shortfall = min(unanswered, max(0, inputs - results))
    if shortfall:
        counters.skip("lml_cardinality_mismatch", shortfall)
    if unanswered > shortfall:
        counters.skip("lml_untrusted_library_id", unanswered - shortfall)
    if results != inputs:
        problems.append(Problem("lml_cardinality_mismatch",
                                f"results={results} inputs={inputs}"))


def trusted_positions(batch: list[Candidate], results: list[Any],
                       problems: list[Problem]) -> dict[int, int]:
    """The result position trusted for each answered library_id. LML answers in input
    order, so of several copies of one id the copy at that id's input position is the
    genuine one (a copy elsewhere took another row's place); failing that, the first. Every
    other copy, and every result for an id not sent, is untrusted."""
    position = {c.library_id: i for i, c in enumerate(batch)}
    copies: dict[int, list[int]] = {}
    for i, raw in enumerate(results):
        library_id = raw.get("library_id") if isinstance(raw, dict) else None
        if type(library_id) is int and library_id in position:
            copies.setdefault(library_id, []).append(i)
        else:
            problems.append(Problem("lml_untrusted_library_id",
                                    f"library_id={shown(library_id)} position={i} "
                                    "reason=not_sent"))
    chosen: dict[int, int] = {}
    for library_id, found in copies.items():
        chosen[library_id] = (position[library_id] if position[library_id] in found
                              else found[0])
        problems.extend(Problem("lml_untrusted_library_id",
                                f"library_id={library_id} position={i} reason=repeated")
                        for i in found if i != chosen[library_id])
    return chosen


def flag_track_confidences(library_id: int, tracks: list[Any] | None,
                           problems: list[Problem]) -> None:
    """A credit whose confidence is outside 0..1 keeps the compilation; the merge stores
    that credit's link confidence as NULL. Logged, as the station does."""
    bad = [t for t in tracks or ()
           if t.get("confidence") is not None and not is_confidence(t.get("confidence"))]
    if bad:
        problems.append(Problem(
            "compilation_confidence_out_of_range",
            f"library_id={library_id} credits={len(bad)} "
            f"first_value={shown(bad[0].get('confidence'))}"))


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
