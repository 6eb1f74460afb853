"""The rules LML's bulk-resolve answer is held to beyond each result's own shape: which
copy of a library_id is trusted, how the rows left without a trusted answer are counted,
when per-track data is usable, and the problems a response check reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from library_identity.lml.contract import is_confidence
from library_identity.resolve.candidates import Candidate
from library_identity.resolve.counters import Counters


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


def tracks_usable(tracks_contract_version: Any) -> bool:
    # Only the literal integer 1 means per-track data follows the contract.
    return type(tracks_contract_version) is int and tracks_contract_version == 1


def shown(value: Any) -> str:
    """A value LML sent, as a log shows it: its repr, cut short."""
    return repr(value)[:40]


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
