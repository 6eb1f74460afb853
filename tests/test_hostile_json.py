"""What LML's JSON may hold that no column can: each attack puts one odd value in one
result (or nests a whole body absurdly deep), and the run must sort it as that row's
`invalid_response` or that call's failure, land everything else, and never crash. The
range-safe reading of a landed number keeps every later merge working."""

from __future__ import annotations

import gzip
import json
import re
import tracemalloc
import zlib
from typing import Any

import pytest
import sentry_sdk
from hostile import Reply, bulk_rows
from test_hostile import BULK, KEY, cli, client, hostile, run, scalar

from library_identity import jsonfast
from library_identity.db import Database
from library_identity.demo.standin.server import StandIn, StandInConfig
from library_identity.errors import LMLError
from library_identity.jobs import diagnostics as jobs_diagnostics
from library_identity.resolve import merge
from library_identity.resolve.resolve_job import ResolveOptions

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



# -- the run outcome rule -----------------------------------------------------------------
def test_http_500_on_every_call_of_a_short_run_fails_with_exit_3(
        db: Database, upstream: StandIn) -> None:
    def fail_all(path: str, request: Any, reply: Reply) -> Reply | None:
        if path.endswith(BULK) and bulk_rows(request):
            return Reply.of(500, {"message": "boom"})
        return None

    with hostile(upstream, fail_all) as lml:
        # Fewer batches than the failed-in-a-row breaker: only the outcome rule stops it.
        proc = cli(db, lml, "resolve", "--no-progress", "--max-consecutive-failures", "50")
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    assert re.search(r"error: LML failed the calls for (\d+) of \1 rows", err), err
    assert "Traceback" not in err
    assert scalar(db, "select status from identity_loader.runs") == "failed"


def test_mostly_untrusted_results_fail_the_run(db: Database, upstream: StandIn) -> None:
    def foreign(path: str, request: Any, reply: Reply) -> Reply | None:
        if not (path.endswith(BULK) and bulk_rows(request) and reply.status == 200):
            return None
        body = reply.json()
        for i, result in enumerate(body["results"]):
            if i % 100:  # 99 of every 100 answers name a library row nobody asked about
                result["library_id"] = 10_000_000 + i
        return Reply.of(200, body)

    with hostile(upstream, foreign) as lml:
        proc = cli(db, lml, "resolve", "--no-progress", "--no-merge")
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "could not be landed (lml_untrusted_library_id" in err
    assert "Traceback" not in err
    assert scalar(db, "select status from identity_loader.runs") == "failed"
    # What was valid is landed all the same.
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") > 0


# -- diagnostics are capped per run --------------------------------------------------------
def test_a_body_of_junk_results_logs_and_reports_a_bounded_amount(
        db: Database, upstream: StandIn, sentry_transport: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    def junk(path: str, request: Any, reply: Reply) -> Reply | None:
        if not (path.endswith(BULK) and bulk_rows(request) and reply.status == 200):
            return None
        body = reply.json()
        body["results"] += [{"library_id": -i, "kind": "junk"} for i in range(1, 5001)]
        return Reply.of(200, body)

    with hostile(upstream, junk) as lml:
        result = run(db, client(lml))
    batches = len([s for s in lml.seen if bulk_rows(s.request)])
    lines = [r for r in caplog.records if "lml_untrusted_library_id" in r.getMessage()
             and "diagnostics_suppressed" not in r.getMessage()]
    assert result.status == "succeeded"
    assert len(lines) == jobs_diagnostics.LINES_PER_STEP
    summary = [r.getMessage() for r in caplog.records
               if "diagnostics_suppressed step=lml_untrusted_library_id" in r.getMessage()]
    assert summary == [f"diagnostics_suppressed step=lml_untrusted_library_id "
                       f"lines={5000 * batches - jobs_diagnostics.LINES_PER_STEP} "
                       f"events={5000 * batches - jobs_diagnostics.EVENTS_PER_STEP}"]
    sentry_sdk.flush()
    events = [e for e in sentry_transport.items("event")
              if e.get("tags", {}).get("step") == "lml_untrusted_library_id"]
    assert len(events) == jobs_diagnostics.EVENTS_PER_STEP


# -- compressed bombs ------------------------------------------------------------------------
def _bomb(encoding: str, size: int) -> bytes:
    body = b'{"results": [' + b" " * size + b"]}"
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=9)
    if encoding == "deflate":
        return zlib.compress(body, 9)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate
    return squeeze.compress(body) + squeeze.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
def test_a_compressed_bomb_costs_at_most_the_body_cap(upstream: StandIn, encoding: str) -> None:
    bomb = _bomb(encoding, 200 * 1024 * 1024)

    def explode(path: str, request: Any, reply: Reply) -> Reply | None:
        if path.endswith(BULK):
            header = "deflate" if encoding == "raw deflate" else encoding
            return Reply(200, bomb, headers={"Content-Encoding": header})
        return None

    cap = 1024 * 1024
    with hostile(upstream, explode) as lml, client(lml, max_body_bytes=cap) as c:
        tracemalloc.start()
        try:
            with pytest.raises(LMLError, match="larger than 1,048,576 bytes"):
                c.bulk_resolve([{"library_id": 1, "artist_name": "a", "album_title": "b"}],
                               include_tracks=False)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        sent = lml.requests_to(BULK)
    assert len(bomb) < cap  # small on the wire
    assert peak < 8 * cap, f"{peak:,} bytes at peak"
    assert len(sent) == 1  # refused, not retried


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
def test_a_compressed_answer_within_the_cap_is_read(db: Database, upstream: StandIn,
                                                    encoding: str) -> None:
    def squeeze(path: str, request: Any, reply: Reply) -> Reply | None:
        if not path.endswith(BULK):
            return None
        if encoding == "gzip":
            body = gzip.compress(reply.body)
        elif encoding == "deflate":
            body = zlib.compress(reply.body)
        else:
            packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            body = packer.compress(reply.body) + packer.flush()
        header = "deflate" if encoding == "raw deflate" else encoding
        return Reply(reply.status, body, headers={"Content-Encoding": header})

    with hostile(upstream, squeeze) as lml:
        result = run(db, client(lml))
    assert result.status == "succeeded"
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") > 0
