"""A hostile LML, hostile library rows and a hostile environment: each test states the
attack, then checks the exit code or outcome, the counters, what landed and what did not,
and that no secret (nor its first four characters) got out."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from conftest import CLI, SENTRY_TEST_DSN, SentryCapture
from hostile import HostileLML, Reply, bulk_rows

from library_identity import dbt_names
from library_identity.db import Database, jsonb_text
from library_identity.demo.standin.server import StandIn, StandInConfig
from library_identity.errors import LMLUnavailable
from library_identity.lml.client import LMLClient
from library_identity.resolve import candidates
from library_identity.resolve.resolve_job import ResolveOptions, ResolveResult, resolve
from library_identity.rotation.backfill import BackfillOptions, backfill
from library_identity.rotation.options import ACTIVE_ROTATION
from library_identity.rotation.refresh import RefreshOptions, refresh

ROOT = Path(__file__).resolve().parent.parent
KEY = "Zq7Wv-hostile-key-5d1c9e"
SENTRY_KEY = "k7Qs-sentry-0b9e4d"
N_ROWS = 600
BULK = "bulk-resolve-libraries"


@pytest.fixture
def upstream() -> Iterator[StandIn]:
    with StandIn(StandInConfig(api_key=KEY)) as server:
        yield server


def hostile(upstream: StandIn, hook: Any) -> HostileLML:
    return HostileLML(upstream, hook)


def client(lml: HostileLML, **kwargs: Any) -> LMLClient:
    kwargs = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, **kwargs}
    return LMLClient(base_url=lml.url, api_key=KEY, **kwargs)


def scalar(db: Database, query: str, *params: Any) -> Any:
    with db.connect() as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def runs_text(db: Database) -> str:
    return str(scalar(db, "select coalesce(string_agg(row(status, error, counters)::text, "
                          "' '), '') from identity_loader.runs"))


def assert_no_secret(*texts: str) -> None:
    for secret in (KEY, SENTRY_KEY):
        for text in texts:
            assert secret[:4] not in text, f"{secret[:4]}… leaked: {text[:300]}"


def cli(db: Database | None, lml: HostileLML | None, *args: str,
        env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {**os.environ, "LML_API_KEY": KEY, **(env or {})}
    environ.pop("SENTRY_DSN", None)
    if db is not None:
        environ["DATABASE_URL"] = db.conninfo
    if lml is not None:
        environ["LML_URL"] = lml.url
    return subprocess.Popen([*CLI, *args], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def run(db: Database, lml: LMLClient, **options: Any) -> ResolveResult:
    with lml:
        return resolve(db, lml, ResolveOptions(**options), prepare=False, merge=False)


# -- 1. Retry-After without bound, and waits SIGTERM cannot end --------------------------
def refuse_bulk(status: int, retry_after: str) -> Any:
    def hook(path: str, request: Any, reply: Reply) -> Reply | None:
        if path.endswith(BULK) and bulk_rows(request):
            return Reply.of(status, {"message": "slow down"}, headers={"Retry-After": retry_after})
        return None
    return hook


def test_a_retry_after_beyond_the_cap_fails_the_call_without_waiting(
        db: Database, upstream: StandIn, sentry_transport: SentryCapture) -> None:
    with hostile(upstream, refuse_bulk(429, "999999")) as lml:
        started = time.monotonic()
        with pytest.raises(LMLUnavailable, match="2 batches in a row"):
            run(db, client(lml, max_attempts=4), max_consecutive_failures=2)
        elapsed = time.monotonic() - started
        sent = [s for s in lml.requests_to(BULK) if bulk_rows(s.request)]
    assert len(sent) == 2, lml.seen  # each batch sent once: a 999999 s pause is not waited for
    assert elapsed < 60
    assert scalar(db, "select status from identity_loader.runs") == "failed"
    counters = scalar(db, "select counters from identity_loader.runs")
    assert counters["total"]["rows_skipped"]["lml_error"] == counters["total"]["scanned"] > 0
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == 0
    assert "longer than the 120 s" in runs_text(db)
    sentry_sdk.flush()
    assert_no_secret(runs_text(db), sentry_transport.serialized())


def test_sigterm_during_a_backoff_ends_the_run_within_seconds(
        db: Database, upstream: StandIn) -> None:
    with hostile(upstream, refuse_bulk(503, "100")) as lml:
        proc = cli(db, lml, "resolve", "--no-progress")
        wait_until(lambda: any(bulk_rows(s.request) for s in lml.requests_to(BULK)))
        time.sleep(1.0)  # the worker now waits 100 s before its next attempt
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - signalled
    assert proc.returncode == 130, err
    assert stopped_in < 20, stopped_in
    assert "Traceback" not in err
    assert scalar(db, "select status from identity_loader.runs") == "interrupted"
    counters = scalar(db, "select counters from identity_loader.runs")
    assert counters["total"]["scanned"] == 0  # the unanswered batch stays a candidate
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == 0
    assert_no_secret(out, err, runs_text(db))


# -- 2. --timeout is a deadline for the whole request -------------------------------------
@pytest.mark.slow
def test_a_trickling_server_meets_the_deadline_and_the_run_exits_3(
        db: Database, upstream: StandIn) -> None:
    def trickle(path: str, request: Any, reply: Reply) -> Reply | None:
        if path.endswith(BULK) and bulk_rows(request):
            reply.trickle_s = 0.5  # one byte every half second: hours for one batch
            return reply
        return None

    with hostile(upstream, trickle) as lml:
        proc = cli(db, lml, "resolve", "--no-progress", "--timeout", "5", "--max-attempts", "1",
                   "--max-consecutive-failures", "2")
        out, err = proc.communicate(timeout=300)
        trickled = [s for s in lml.requests_to(BULK) if bulk_rows(s.request)]
    assert proc.returncode == 3, err
    assert "2 batches in a row" in err and "timed out" in err
    assert len(trickled) == 2
    for seen in trickled:  # the client hung up at its deadline, not at the end of the body
        assert seen.ended is not None and seen.ended - seen.started < 10
    assert trickled[-1].ended is not None and trickled[-1].ended - trickled[0].started < 20
    assert scalar(db, "select status from identity_loader.runs") == "failed"
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == 0
    assert_no_secret(out, err, runs_text(db))


def test_a_body_over_the_cap_is_a_failed_call_and_is_not_retried(
        db: Database, upstream: StandIn) -> None:
    def pad(path: str, request: Any, reply: Reply) -> Reply | None:
        if path.endswith(BULK) and bulk_rows(request) and reply.status == 200:
            return Reply.of(200, {**reply.json(), "padding": "x" * 300_000})
        return None

    with hostile(upstream, pad) as lml:
        result = run(db, client(lml, max_body_bytes=200_000, max_attempts=3),
                     max_consecutive_failures=1000)
        sent = [s for s in lml.requests_to(BULK) if bulk_rows(s.request)]
    total = result.counters.total
    assert total.rows_skipped["lml_error"] == total.scanned == N_ROWS - scalar(
        db, "select count(*) from wxyc_schema.library where artist_name is null")
    assert len(sent) == total.lml_total_calls  # one attempt per batch
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == 0


# -- 3. one bad value costs its row, not its batch; mostly bad is not a success ----------
def poison(every: int) -> tuple[Any, list[int]]:
    """Give every `every`-th single_artist result a value the landing table cannot hold:
    a NUL character in a string, or an artist id beyond bigint, in turn."""
    poisoned: list[int] = []

    def hook(path: str, request: Any, reply: Reply) -> Reply | None:
        if not (path.endswith(BULK) and bulk_rows(request) and reply.status == 200):
            return None
        body = reply.json()
        for result in body["results"]:
            if result["kind"] != "single_artist" or result["library_id"] % every:
                continue
            if len(poisoned) % 2:
                result["main"]["wikidata_qid"] = "Q1\x00"
            else:
                result["main"]["discogs_artist_id"] = 2**63
            poisoned.append(result["library_id"])
        return Reply.of(200, body)

    return hook, poisoned


def test_unlandable_values_cost_their_rows_only(db: Database, upstream: StandIn) -> None:
    hook, poisoned = poison(every=37)
    with hostile(upstream, hook) as lml:
        result = run(db, client(lml))
    total = result.counters.total
    assert result.status == "succeeded"
    assert len(poisoned) >= 4
    assert total.rows_skipped["invalid_response"] == len(poisoned)
    assert total.rows_skipped["writer_error"] == 0
    landed = scalar(db, "select count(*) from identity_loader.raw_verdicts")
    assert landed == total.scanned - len(poisoned)
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts "
                      "where library_id = any(%s)", poisoned) == 0


def test_a_run_that_lands_almost_nothing_fails(db: Database, upstream: StandIn) -> None:
    hook, poisoned = poison(every=1)
    with hostile(upstream, hook) as lml:
        proc = cli(db, lml, "resolve", "--no-progress", "--no-merge")
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "could not be landed" in err and "Traceback" not in err
    status = scalar(db, "select status from identity_loader.runs")
    counters = scalar(db, "select counters from identity_loader.runs")
    assert status == "failed"
    assert counters["total"]["rows_skipped"]["invalid_response"] == len(poisoned)
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == (
        counters["total"]["scanned"] - len(poisoned))
    assert_no_secret(out, err, runs_text(db))


# -- 4. the literal text \u0000 in a library row ------------------------------------------
def test_the_literal_text_backslash_u0000_round_trips(db: Database, upstream: StandIn) -> None:
    names = {}
    with db.connect() as conn:
        ids = [r[0] for r in conn.execute(
            "select id from wxyc_schema.library where artist_name is not null "
            "order by id limit 3").fetchall()]
        for i, library_id in enumerate(ids):
            names[library_id] = f"Lit{chr(92) * (i + 1)}u0000eral"
            conn.execute("update wxyc_schema.library set artist_name = %s where id = %s",
                         (names[library_id], library_id))
    candidates.build_candidates(db, ResolveOptions().dbt_vars())
    with StandIn(StandInConfig(api_key=KEY)) as lml, \
            LMLClient(base_url=lml.url, api_key=KEY) as c:
        result = resolve(db, c, ResolveOptions(), prepare=False, merge=False)
    total = result.counters.total
    assert total.rows_skipped["writer_error"] == 0
    assert total.rows_skipped["invalid_response"] == 0
    with db.connect() as conn:
        stored = dict(conn.execute(
            "select library_id, request ->> 'artist_name' from identity_loader.raw_verdicts "
            "where library_id = any(%s)", (ids,)).fetchall())
    assert stored == names
    assert jsonb_text("a\x00b") == '"ab"'  # a real NUL is what gets dropped


# -- 5. a 200 without results is a failed call -------------------------------------------
def test_a_200_without_results_is_a_failed_call(
        db: Database, upstream: StandIn, sentry_transport: SentryCapture) -> None:
    def empty(path: str, request: Any, reply: Reply) -> Reply | None:
        if path.endswith(BULK) and bulk_rows(request):
            return Reply.of(200, {"tracks_contract_version": 1, "cache_stats": None})
        return None

    with hostile(upstream, empty) as lml, \
            pytest.raises(LMLUnavailable, match="3 batches in a row"):
        run(db, client(lml), max_consecutive_failures=3)
    status = scalar(db, "select status from identity_loader.runs")
    counters = scalar(db, "select counters from identity_loader.runs")
    assert status == "failed"
    total = counters["total"]
    assert total["rows_skipped"]["invalid_response"] == total["scanned"] > 0
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts") == 0
    sentry_sdk.flush()
    assert any(e.get("tags", {}).get("step") == "invalid_response"
               for e in sentry_transport.items("event"))
    assert_no_secret(runs_text(db), sentry_transport.serialized())


# -- 9. an error body that echoes the key across the message cut -------------------------
def echo_key(path: str, request: Any, reply: Reply) -> Reply | None:
    if path.endswith(BULK) and bulk_rows(request):
        return Reply.of(400, {"message": "x" * 196 + f"{KEY} rejected"})  # cut at 200
    return None


def test_an_echoed_key_never_leaks_even_in_part(
        db: Database, upstream: StandIn, sentry_transport: SentryCapture) -> None:
    with hostile(upstream, echo_key) as lml:
        result = run(db, client(lml), max_consecutive_failures=1000)
        proc = cli(db, lml, "-v", "resolve", "--no-progress", "--max-consecutive-failures", "2")
        out, err = proc.communicate(timeout=300)
    assert result.counters.total.rows_skipped["lml_error"] == result.counters.total.scanned
    assert proc.returncode == 3, err
    assert "answered HTTP 400" in err
    sentry_sdk.flush()
    events = sentry_transport.items("event")
    assert events
    assert_no_secret(out, err, runs_text(db), sentry_transport.serialized())


# -- 12. one confidence rule in the loader and in dbt ------------------------------------
def test_confidence_must_be_a_number_for_the_loader_and_dbt(
        db: Database, upstream: StandIn) -> None:
    coerced: list[int] = []

    def coerce(path: str, request: Any, reply: Reply) -> Reply | None:
        if not (path.endswith(BULK) and bulk_rows(request) and reply.status == 200):
            return None
        body = reply.json()
        for result in body["results"]:
            if result["kind"] != "single_artist" or result["library_id"] % 11:
                continue
            if len(coerced) % 2:
                result["confidence"] = True
            else:
                result["provenance"][0]["confidence"] = "0.95"
            coerced.append(result["library_id"])
        return Reply.of(200, body)

    with hostile(upstream, coerce) as lml, client(lml) as c:
        result = resolve(db, c, ResolveOptions(), prepare=False, merge=True)
    assert result.merge is not None and result.merge.success, result.merge.failures
    total = result.counters.total
    assert len(coerced) >= 4
    assert total.rows_skipped["invalid_response"] == len(coerced)
    assert scalar(db, "select count(*) from identity_loader.raw_verdicts "
                      "where library_id = any(%s)", coerced) == 0
    dbt_null = scalar(db, "select count(*) from "
                          f"{dbt_names.qualified('int_verdicts__provenance_checked')} "
                          "where skip_reason in ('null_confidence', 'null_external_id') "
                          "and run_id = %s", result.run_id)
    assert total.source_rows_skipped_null_confidence == dbt_null
    assert scalar(db, "select count(*) from wxyc_schema.library_identity") == scalar(
        db, "select count(*) from identity_loader.raw_verdicts where kind = 'single_artist' "
            "and confidence >= 0.7")


def waiting_rotation_rows(db: Database, release_ids_from: int) -> None:
    """Thirty active rotation rows waiting for their identity, their release ids counted up
    from `release_ids_from`."""
    with db.connect() as conn:
        conn.execute(
            "insert into wxyc_schema.rotation (album_id, rotation_bin, artist_name, album_title, "
            "discogs_release_id) select id, (enum_range(null::public.freq_enum))[1], "
            "artist_name, album_title, %s + id from wxyc_schema.library "
            "where artist_name is not null order by id limit 30", (release_ids_from,))


# -- 13. an identity id beyond the rotation's integer column -----------------------------
def test_backfill_counts_an_identity_beyond_int32_and_goes_on(
        db: Database, upstream: StandIn) -> None:
    huge: list[str] = []
    waiting_rotation_rows(db, release_ids_from=5000000)

    def beyond(path: str, request: Any, reply: Reply) -> Reply | None:
        if (path.endswith("identity/resolve") and reply.status == 200
                and int(request["external_id"]) % 3 == 0):
            huge.append(request["external_id"])
            return Reply.of(200, {**reply.json(), "identity_id": 2**31})
        return None

    with hostile(upstream, beyond) as lml, client(lml, requests_per_minute=60_000) as c:
        result = backfill(db, c, BackfillOptions(requests_per_minute=60_000))
    counters = result.counters
    assert result.status == "succeeded"
    assert huge and counters.invalid_response == len(huge)
    assert counters.lml_error == len(huge)
    counters.check_invariant()
    assert counters.resolved == counters.scanned - len(huge) > 0
    assert scalar(db, "select count(*) from wxyc_schema.rotation where discogs_release_id::text "
                      "= any(%s) and lml_identity_id is not null", huge) == 0



# -- 14. an identity id that is not a JSON integer ----------------------------------------
def coerced_id(identity_id: int, which: int) -> Any:
    """`true`, "7" or 7.0: each a value a lax parser would take for an integer."""
    return (True, str(identity_id), float(identity_id))[which % 3]


def test_backfill_takes_only_a_json_integer_for_an_identity_id(
        db: Database, upstream: StandIn) -> None:
    coerced: list[str] = []
    waiting_rotation_rows(db, release_ids_from=6000000)

    def lax(path: str, request: Any, reply: Reply) -> Reply | None:
        if (path.endswith("identity/resolve") and reply.status == 200
                and int(request["external_id"]) % 2 == 0):
            body = reply.json()
            body["identity_id"] = coerced_id(body["identity_id"], len(coerced))
            coerced.append(request["external_id"])
            return Reply.of(200, body)
        return None

    with hostile(upstream, lax) as lml, client(lml, requests_per_minute=60_000) as c:
        result = backfill(db, c, BackfillOptions(requests_per_minute=60_000))
    counters = result.counters
    counters.check_invariant()
    assert len(coerced) >= 6  # each of the three forms at least twice
    assert counters.invalid_response == counters.lml_error == len(coerced)
    assert counters.resolved == counters.scanned - len(coerced) > 0
    assert scalar(db, "select count(*) from wxyc_schema.rotation where discogs_release_id::text "
                      "= any(%s) and lml_identity_id is not null", coerced) == 0


def test_refresh_takes_only_a_json_integer_for_an_identity_id(
        db: Database, upstream: StandIn) -> None:
    ids = [1, *range(100, 112)]  # 1: what `true` would read as
    with db.connect() as conn:
        conn.execute("insert into wxyc_schema.rotation (rotation_bin, lml_identity_id) "
                     "select (enum_range(null::public.freq_enum))[1], unnest(%s::int[])", (ids,))
    coerced = [1, 101, 102, 104]

    def lax(path: str, request: Any, reply: Reply) -> Reply | None:
        if not (path.endswith("refresh-for-identities") and reply.status == 200):
            return None
        body = reply.json()
        for item in body["results"]:
            if item["identity_id"] in coerced:
                item["identity_id"] = coerced_id(item["identity_id"], coerced.index(
                    item["identity_id"]))
        return Reply.of(200, body)

    with hostile(upstream, lax) as lml, client(lml, requests_per_minute=60_000) as c:
        result = refresh(db, c, RefreshOptions(requests_per_minute=60_000, retry_delay_s=0))
    counters = result.counters
    counters.check_invariant()
    active = scalar(db, "select count(distinct lml_identity_id) from wxyc_schema.rotation "
                        f"where {ACTIVE_ROTATION}")
    assert counters.identities_scanned == active >= len(ids)
    # No valid answer, on the first send nor on the retry: each ends in lml_error and
    # nothing lands for it.
    assert counters.lml_error >= len(coerced)
    assert scalar(db, "select count(*) from identity_loader.rotation_refresh_results "
                      "where identity_id = any(%s)", coerced) == 0
    assert scalar(db, "select count(distinct identity_id) from "
                      "identity_loader.rotation_refresh_results") == active - len(coerced)



# -- 15. library rows with a negative or zero id -----------------------------------------
def test_rows_with_negative_and_zero_ids_are_sent_in_every_partition(
        db: Database, upstream: StandIn) -> None:
    low = [-2**31, -7, -3, -1, 0]
    with db.connect() as conn:  # copies of the first rows, under ids no serial hands out
        conn.execute(
            "insert into wxyc_schema.library (id, artist_id, genre_id, format_id, album_title, "
            "artist_name, code_number) select (%s::int[])[row_number() over (order by id)], "
            "artist_id, genre_id, format_id, album_title, artist_name, code_number "
            "from wxyc_schema.library "
            "where artist_name is not null order by id limit %s", (low, len(low)))
    candidates.build_candidates(db, ResolveOptions().dbt_vars())

    with db.connect() as conn:  # every candidate is in exactly one partition
        counts = candidates.snapshot(conn, partition=None, limit=None)
        ids = sorted(r[0] for r in conn.execute(
            "select library_id from pg_temp.run_candidates").fetchall())
        assert set(low) <= set(ids) and sum(counts.values()) == len(ids)
        parts: list[int] = []
        for index in range(3):
            candidates.snapshot(conn, partition=candidates.Partition(index, 3), limit=None)
            parts += [r[0] for r in conn.execute(
                "select library_id from pg_temp.run_candidates").fetchall()]
        assert sorted(parts) == ids

    with hostile(upstream, None) as lml:
        result = run(db, client(lml), batch_size=50, va_batch_size=7)
    sent = sorted(i["library_id"] for s in lml.requests_to(BULK) if bulk_rows(s.request)
                  for i in s.request["inputs"])
    assert sent == ids
    assert result.counters.total.scanned == len(ids)
    assert scalar(db, "select array_agg(library_id order by library_id) from "
                      "identity_loader.raw_verdicts where library_id <= 0") == low


# -- 8 and the embedded server's lifecycle ------------------------------------------------
def postgres_processes(pgdata: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "postgres" in cmdline and str(pgdata) in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = ROOT / ".library-identity" / f"hostile-{uuid.uuid4().hex[:8]}"
    yield path
    for pid in postgres_processes(path / "pgdata"):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def embedded(data_dir: Path, *args: str, env: dict[str, str] | None = None
             ) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "XDG_RUNTIME_DIR")}
    environ |= {"LIBRARY_IDENTITY_DATA_DIR": str(data_dir), "TMPDIR": str(data_dir.parent),
                "LML_API_KEY": KEY, "SENTRY_DSN": SENTRY_TEST_DSN, **(env or {})}
    return subprocess.Popen([*CLI, *args], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_embedded_server_environment_logging_and_lifecycle(data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    # Kept on request: its processes hold no secret of ours in their environment.
    proc = embedded(data_dir, "--keep-server", "migrate")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "pg_ctl" not in err and "pixeltable" not in err  # the library's INFO stays quiet
    servers = postgres_processes(pgdata)
    assert servers
    for pid in servers:
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        assert KEY not in environ and SENTRY_KEY not in environ
    # Without --keep-server the last command using it stops it: after success...
    proc = embedded(data_dir, "migrate", "--status")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    wait_until(lambda: not postgres_processes(pgdata), timeout=20)
    # ...after a failure (LML unreachable, exit 3)...
    proc = embedded(data_dir, "resolve", "--no-progress",
                    env={"LML_URL": "http://127.0.0.1:9"})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    wait_until(lambda: not postgres_processes(pgdata), timeout=20)
    # ...and after a signal.
    proc = embedded(data_dir, "seed", "--rows", "200000")
    wait_until(lambda: bool(postgres_processes(pgdata)), timeout=60)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    wait_until(lambda: not postgres_processes(pgdata), timeout=20)
    assert_no_secret(out, err)


# -- credentials in LML_URL ----------------------------------------------------------------
URL_PASSWORD = "Hx9q-url-password-31"


@pytest.mark.parametrize("reachable", [True, False], ids=["reachable", "unreachable"])
def test_doctor_masks_the_password_of_lml_url(reachable: bool, migrated_db: Database,
                                              upstream: StandIn) -> None:
    base = upstream.url if reachable else "http://127.0.0.1:9"
    url = base.replace("http://", f"http://lmluser:{URL_PASSWORD}@")
    proc = cli(migrated_db, None, "doctor", env={"LML_URL": url})
    out, err = proc.communicate(timeout=120)
    assert "LML" in out, out + err
    assert URL_PASSWORD[:4] not in out + err
    assert "http://lmluser:***@127.0.0.1" in out


# -- planted links in the embedded server's run folder -------------------------------------
@pytest.mark.parametrize("planted", ["users.json", "users.lock", "run folder", "run owner"])
def test_the_run_folder_follows_no_planted_link(planted: str, data_dir: Path,
                                                tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    run = data_dir / "run"
    data_dir.mkdir(parents=True)
    if planted == "run folder":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        run.symlink_to(elsewhere)
        says = "is not a folder"
    elif planted == "run owner":
        run.mkdir()
        os.chown(run, 65534, 65534)
        says = "belongs to another user"
    else:
        run.mkdir()
        (run / planted).symlink_to(victim)
        says = "is a symbolic link"
    proc = embedded(data_dir, "migrate", "--status")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 6, err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        next(line for line in err.splitlines() if says in line)]
    assert "Traceback" not in err
    assert victim.read_text() == "precious"
    assert not postgres_processes(data_dir / "pgdata")


def test_the_run_folder_is_the_users_own(tmp_path: Path) -> None:
    from library_identity.demo.embedded import _runtime_dir

    (tmp_path / "run").mkdir(mode=0o755)
    assert (_runtime_dir(tmp_path).stat().st_mode & 0o777) == 0o700
    assert (_runtime_dir(tmp_path / "new").stat().st_mode & 0o777) == 0o700
