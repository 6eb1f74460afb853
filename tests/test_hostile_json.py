"""What LML's JSON may hold that no column can: each attack puts one odd value in one
result (or nests a whole body absurdly deep), and the run must sort it as that row's
`invalid_response` or that call's failure, land everything else, and never crash. The
range-safe reading of a landed number keeps every later merge working."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hostile import Reply, bulk_rows
from test_hostile import BULK, KEY, cli, client, hostile, run, scalar

from library_identity import jsonfast
from library_identity.db import Database
from library_identity.demo.standin.server import StandIn, StandInConfig
from library_identity.resolve import merge
from library_identity.resolve.job import ResolveOptions

N_ROWS = 600
MARK = '"__poison__"'


@pytest.fixture
def upstream() -> Any:
    with StandIn(StandInConfig(api_key=KEY)) as server:
        yield server


def poison_one_result_per_batch(poison: str, kind: str = "single_artist",
                                where: str = "extra") -> tuple[Any, list[int]]:
    """Put the JSON text `poison` into the first `kind` result of every batch, at `where`:
    an unchecked extra key of the result, or the first track's confidence."""
    poisoned: list[int] = []

    def hook(path: str, request: Any, reply: Reply) -> Reply | None:
        if not (path.endswith(BULK) and bulk_rows(request) and reply.status == 200):
            return None
        body = reply.json()
        for result in body["results"]:
            if result["kind"] != kind or (where == "track" and not result.get("tracks")):
                continue
            if where == "track":
                result["tracks"][0]["confidence"] = "__poison__"
            else:
                result["extra"] = "__poison__"
            poisoned.append(result["library_id"])
            break
        text = json.dumps(body).replace(MARK, poison, 1)
        return Reply(200, text.encode())

    return hook, poisoned


DEEP = '{"a":' * 300 + "1" + "}" * 300
ATTACKS = {
    "a lone surrogate": '"Q\\ud800x"',
    "a field nested 300 levels": DEEP,
    "NaN beside an integer beyond 64 bits": '[NaN, 123456789012345678901234567890]',
    "Infinity": "Infinity",
    "a number beyond double range": "1e400",
}


@pytest.mark.parametrize("poison", ATTACKS.values(), ids=ATTACKS.keys())
def test_one_unlandable_value_costs_its_row_only(db: Database, upstream: StandIn,
                                                 poison: str) -> None:
    hook, poisoned = poison_one_result_per_batch(poison)
    with hostile(upstream, hook) as lml:
        result = run(db, client(lml))
    total = result.counters.total
    assert result.status == "succeeded"
    assert poisoned
    assert total.rows_skipped["invalid_response"] == len(poisoned)
    assert total.rows_skipped["writer_error"] == 0
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == (
        total.scanned - len(poisoned))
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts "
                      "where library_id = any(%s)", poisoned) == 0


def test_a_kind_that_is_not_a_string_costs_its_row_only(db: Database,
                                                        upstream: StandIn) -> None:
    def hook(path: str, request: Any, reply: Reply) -> Reply | None:
        if not (path.endswith(BULK) and bulk_rows(request) and reply.status == 200):
            return None
        body = reply.json()
        body["results"][0]["kind"] = ["single_artist"]  # unhashable: no vocabulary holds it
        body["results"][1]["provenance"] = [{"source": {}, "method": []}]
        return Reply.of(200, body)

    with hostile(upstream, hook) as lml:
        result = run(db, client(lml))
    assert result.status == "succeeded"
    batches = len([s for s in lml.seen if bulk_rows(s.request)])
    assert result.counters.total.rows_skipped["invalid_response"] == 2 * batches


def nested_body(levels: int, paths: tuple[str, ...]) -> Any:
    def hook(path: str, request: Any, reply: Reply) -> Reply | None:
        if any(path.endswith(p) for p in paths) and (path.endswith("/health")
                                                     or bulk_rows(request)):
            return Reply(200, b"[" * levels + b"]" * levels)
        return None
    return hook


def test_a_body_nested_beyond_the_bound_is_a_failed_call(db: Database,
                                                         upstream: StandIn) -> None:
    with hostile(upstream, nested_body(1100, (BULK,))) as lml:
        proc = cli(db, lml, "resolve", "--no-progress", "--no-merge",
                   "--max-consecutive-failures", "2")
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    assert "Traceback" not in err and "RecursionError" not in err
    counters = scalar(db, "select counters from identity_loader.runs")
    assert counters["total"]["rows_skipped"]["invalid_response"] > 0
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == 0


@pytest.mark.parametrize("command", [("doctor",), ("resolve", "--no-progress")])
def test_a_health_body_nested_beyond_the_bound_is_lml_unavailable(
        db: Database, upstream: StandIn, command: tuple[str, ...]) -> None:
    with hostile(upstream, nested_body(1100, ("/health",))) as lml:
        proc = cli(db, lml, *command)
        out, err = proc.communicate(timeout=300)
    assert "Traceback" not in err and "RecursionError" not in err, err
    assert proc.returncode == 3, (out, err)


def test_a_track_confidence_beyond_double_range_keeps_every_merge_working(
        db: Database, upstream: StandIn) -> None:
    hook, poisoned = poison_one_result_per_batch("1" + "0" * 400, kind="compilation",
                                                 where="track")
    with hostile(upstream, hook) as lml:
        result = run(db, client(lml))
    assert poisoned
    # The compilation keeps its verdict (one credit out of range costs only that credit's
    # confidence) and lands with the number as LML sent it.
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts "
                      "where library_id = any(%s)", poisoned) == len(poisoned)
    assert result.counters.total.rows_skipped["invalid_response"] == 0
    outcome = merge.merge(db, ResolveOptions().dbt_vars())
    assert outcome.success, outcome.failures
    assert scalar(db, "select count(*) from wxyc_schema.library_identity") > 0
    assert scalar(db, "select count(*) from wxyc_schema.library_identity") == scalar(
        db, "select count(*) from identity_loader.raw_verdicts where kind = 'single_artist' "
            "and confidence >= 0.7")


def test_a_nan_track_confidence_costs_its_compilation_only(db: Database,
                                                           upstream: StandIn) -> None:
    hook, poisoned = poison_one_result_per_batch("NaN", kind="compilation", where="track")
    with hostile(upstream, hook) as lml:
        result = run(db, client(lml))
    assert poisoned
    assert result.counters.total.rows_skipped["invalid_response"] == len(poisoned)
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts "
                      "where library_id = any(%s)", poisoned) == 0


@pytest.mark.parametrize("body", [b'{"a":"Q\\ud800x"}', b'{"a":NaN}', b"[" * 600 + b"]" * 600,
                                  b"[" * 1100 + b"]" * 1100, b"\xff\xfe", b'{"a":1e400}'])
def test_loads_raises_value_error_or_returns(body: bytes) -> None:
    try:
        value = jsonfast.loads(body)
    except ValueError:
        return
    with pytest.raises(jsonfast.NotJSON):
        jsonfast.dumps(value)


def test_dumps_keeps_what_jsonb_holds() -> None:
    big = 10**400
    assert jsonfast.dumps({"a": big, "b": "é"}) == f'{{"a":{big},"b":"é"}}'
    assert jsonfast.loads(jsonfast.dumps([big])) == [big]

