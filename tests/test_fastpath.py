"""The hot path (plain-data checks, COPY rows) agrees with the contract's models on every
response the stand-in can send, faults included, and refuses what a landing column
cannot hold."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from reference_classifier import _validate, classify_batch, copy_row

from library_identity import jsonfast
from library_identity.demo.standin import StandIn, StandInConfig
from library_identity.demo.standin.verdicts import verdict
from library_identity.demo.synthetic import artist_name
from library_identity.lml.client import LMLClient
from library_identity.resolve import fastpath
from library_identity.resolve.candidates import Candidate

KEY = "fastpath-key"
RUN_ID = uuid.uuid4()


def batch(n: int, offset: int = 0) -> list[Candidate]:
    """A mix of named artists and V/A rows with per-track data."""
    rows = []
    for i in range(offset, offset + n):
        va = i % 7 == 0
        rows.append(Candidate(library_id=1000 + i,
                              artist_name="Various Artists" if va else artist_name(i),
                              album_title=f"Album {i}", legacy_release_id=i + 1,
                              cohort="va" if va else "non_va"))
    return rows


def model_rows(items: list[Candidate], payload: Any) -> tuple[Any, list[tuple[Any, ...]]]:
    outcome = classify_batch(items, payload)
    return outcome, [copy_row(RUN_ID, v) for v in outcome.verdicts]


def same_findings(fast: list[Any], models: list[Any]) -> bool:
    """The same problems in the same order; an invalid result's error is worded by each
    checker in its own way."""
    def key(problem: Any) -> tuple[str, str]:
        return problem.step, problem.detail.split(" error=")[0]

    return [key(p) for p in fast] == [key(p) for p in models]


def comparable(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """JSON columns compared as data (two encoders may format a float differently)."""
    return [(*r[:-2], json.loads(r[-2]), json.loads(r[-1])) for r in rows]


@pytest.mark.parametrize("fault", [
    {}, {"foreign_id_rate": 1.0}, {"duplicate_id_rate": 1.0}, {"short_rate": 1.0},
    {"bad_enum_rate": 1.0}, {"bad_enum_rate": 1.0, "seed": 3},
    {"track_confidence_rate": 1.0}, {"out_of_band_rate": 1.0},
    {"foreign_id_rate": 0.5, "duplicate_id_rate": 0.5, "short_rate": 0.5, "seed": 7},
])
def test_same_buckets_and_rows_as_the_models(fault: dict[str, Any]) -> None:
    with StandIn(StandInConfig(api_key=KEY, **fault)) as standin, \
            LMLClient(base_url=standin.url, api_key=KEY) as client:
        for offset in range(0, 600, 150):
            items = batch(150, offset)
            body = client.bulk_resolve([c.as_input() for c in items], include_tracks=True).body
            expected, expected_rows = model_rows(items, copy.deepcopy(body))
            fast = fastpath.classify(items, body, RUN_ID)
            assert fast.counters == expected.counters
            assert same_findings(fast.problems, expected.problems)
            assert fast.landed == len(expected.verdicts)
            assert comparable(fast.rows) == comparable(expected_rows)
            dry = fastpath.classify(items, body, None)
            assert dry.counters == expected.counters and dry.rows == []


def test_more_results_than_inputs_is_a_cardinality_mismatch_that_costs_no_row() -> None:
    # Reported as the station reports any count that differs from the inputs; the extra
    # result is untrusted, and every row still lands with its own answer.
    items = batch(6)
    results = [verdict(c.artist_name, c.legacy_release_id, True, library_id=c.library_id)
               for c in items]
    payload = {"results": [*results, {**results[1], "library_id": 99_999}],
               "tracks_contract_version": 1}
    models = classify_batch(items, copy.deepcopy(payload))
    fast = fastpath.classify(items, payload, RUN_ID)
    for outcome in (models, fast):
        found = [(p.step, p.detail) for p in outcome.problems]
        assert ("lml_cardinality_mismatch", "results=7 inputs=6") in found
        assert [s for s, _ in found].count("lml_untrusted_library_id") == 1
        assert outcome.counters.scanned == 6
        assert sum(outcome.counters.rows_skipped.values()) == 0
    assert len(models.verdicts) == fast.landed == 6


def valid_results() -> list[dict[str, Any]]:
    names = [artist_name(i) for i in range(200)]
    results = [verdict(name, i, True, library_id=i) for i, name in enumerate(names)]
    results += [verdict("Various Artists", legacy, True, library_id=9000 + legacy)
                for legacy in range(1, 40)]
    return [json.loads(json.dumps(r)) for r in results]


def _first(kind: str) -> dict[str, Any]:
    for r in valid_results():
        if r["kind"] == kind and (kind != "compilation" or r["tracks"]):
            return r
    raise AssertionError(kind)


# (result kind to start from, mutation): each breaks the contract for both checkers.
BROKEN = [
    ("single_artist", lambda r: r.update(kind="artist_group")),
    ("single_artist", lambda r: r.update(confidence=1.5)),
    ("single_artist", lambda r: r.update(confidence=-0.1)),
    ("single_artist", lambda r: r.update(method="fuzzy_v0")),
    ("single_artist", lambda r: r.update(main=None)),
    ("single_artist", lambda r: r.update(main="Q1")),
    ("single_artist", lambda r: r.update(method=None)),
    ("single_artist", lambda r: r.update(confidence=None)),
    ("single_artist", lambda r: r.update(provenance=[])),
    ("single_artist", lambda r: r.update(provenance=None)),
    ("single_artist", lambda r: r["provenance"][0].update(source="myspace")),
    ("single_artist", lambda r: r["provenance"][0].pop("source")),
    ("single_artist", lambda r: r["provenance"][0].update(method=None)),
    ("single_artist", lambda r: r["provenance"][0].update(confidence=2)),
    ("single_artist", lambda r: r["provenance"][0].update(external_id=[1])),
    ("single_artist", lambda r: r["provenance"].append("discogs")),
    ("single_artist", lambda r: r["main"].update(wikidata_qid=["Q1"])),
    ("compilation", lambda r: r.update(tracks="none")),
    ("compilation", lambda r: r["tracks"][0].update(artist_name="")),
    ("compilation", lambda r: r["tracks"][0].pop("artist_name")),
    ("compilation", lambda r: r["tracks"][0].update(confidence="high")),
    ("compilation", lambda r: r["tracks"][0].update(method="guess")),
    ("compilation", lambda r: r["tracks"][0].update(sources=[{"source": "discogs"}])),
    ("compilation", lambda r: r["tracks"].append(None)),
    ("unresolved", lambda r: r.pop("kind")),
    ("single_artist", lambda r: r["main"].update(discogs_artist_id=2**63)),
    ("single_artist", lambda r: r.update(confidence=True)),
    ("single_artist", lambda r: r.update(confidence="0.9")),
    ("single_artist", lambda r: r["provenance"][0].update(confidence=True)),
]


def test_valid_results_pass_both_checkers() -> None:
    for raw in valid_results():
        assert fastpath.result_error(raw) is None
        assert not isinstance(_validate(raw), str)


@pytest.mark.parametrize("case", range(len(BROKEN)))
def test_broken_results_fail_both_checkers(case: int) -> None:
    kind, mutate = BROKEN[case]
    raw = copy.deepcopy(_first(kind))
    mutate(raw)
    assert isinstance(_validate(raw), str)
    assert fastpath.result_error(raw) is not None


@pytest.mark.parametrize(("kind", "mutate", "why"), [
    ("single_artist", lambda r: r["main"].update(discogs_artist_id="42"), "discogs_artist_id"),
    ("single_artist", lambda r: r["main"].update(discogs_artist_id=True), "discogs_artist_id"),
    ("compilation", lambda r: r.update(tracks_attempted=1), "tracks_attempted"),
    ("compilation", lambda r: r["tracks"][0].update(confidence="0.5"), "confidence"),
])
def test_json_types_are_taken_strictly(kind: str, mutate: Any, why: str) -> None:
    """Where the models would coerce (a string of digits, 1 for true), the hot path refuses:
    the contract promises JSON numbers and booleans."""
    raw = copy.deepcopy(_first(kind))
    mutate(raw)
    error = fastpath.result_error(raw)
    assert error is not None and why in error


def test_one_unlandable_row_is_skipped_and_the_rest_land() -> None:
    items = batch(20)
    results = [verdict(c.artist_name, c.legacy_release_id, True, library_id=c.library_id)
               for c in items]
    body = json.loads(json.dumps({"results": results, "tracks_contract_version": 1}))
    victim = next(r for r in body["results"] if r["kind"] == "single_artist")
    victim["main"]["discogs_artist_id"] = 2**70
    # A body with a 70-bit integer still decodes, and only its row is refused.
    decoded = jsonfast.loads(json.dumps(body).encode())
    outcome = fastpath.classify(items, decoded, RUN_ID)
    assert outcome.counters.rows_skipped["invalid_response"] == 1
    assert outcome.counters.scanned == len(items)
    assert len(outcome.rows) == len(items) - 1


def test_a_nul_anywhere_makes_the_row_invalid_for_both_checkers() -> None:
    items = [c for c in batch(60) if c.cohort == "va"][:3] + batch(3, offset=1)
    results = [verdict(c.artist_name, c.legacy_release_id, True, library_id=c.library_id)
               for c in items]
    body = json.loads(json.dumps({"results": results, "tracks_contract_version": 1}))
    body["results"][0]["tracks"][0]["track_title"] = "Side\x00A"
    body["results"][-1]["extra\x00key"] = 1
    expected, expected_rows = model_rows(items, copy.deepcopy(body))
    fast = fastpath.classify(items, body, RUN_ID)
    assert fast.counters.rows_skipped["invalid_response"] == 2
    assert fast.counters == expected.counters
    assert same_findings(fast.problems, expected.problems)
    assert comparable(fast.rows) == comparable(expected_rows)
    assert jsonfast.dumps({"n": 2**70}) == '{"n":' + str(2**70) + "}"
