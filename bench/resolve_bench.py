"""Resolve benchmarks on the seeded sample library with the LML stand-in.

Prints figures; it is not a test. Usage:

    .venv/bin/python bench/resolve_bench.py [--rows 64676 [646760]] [--skip-latency]
                                            [--skip-baseline]

Uses DATABASE_URL when set, else the embedded Postgres (data in .library-identity/bench).
1. A first `resolve` end to end (candidates, load, merge and gates), then a steady-state
   daily run (one row in seven due), then a run with nothing due: timings, the loader's
   CPU a row, dbt's share, peak RSS, the pace it settled at (no added LML latency).
2. The load phase at 100 ms added latency, fixed concurrency 4 and the adaptive pace,
   against the ideal ceil(batches / concurrency) x latency plus the loader's CPU.
3. Set-based landing + dbt merge against a row-at-a-time transactional upsert (one
   SELECT ... FOR UPDATE, one upsert per source, one main upsert per library row), on the
   same verdicts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import station  # noqa: E402

from library_identity import dbt_names  # noqa: E402
from library_identity.db import Database, resolve_database  # noqa: E402
from library_identity.resolve import landing  # noqa: E402

KEY = "bench-key-0123456789"
PREFIX = "bench"  # database names; --db-prefix sets it


def fresh_database(server: Database, name: str) -> Database:
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    params = server.params | {"dbname": name}
    return Database(conninfo=psycopg.conninfo.make_conninfo(**params), embedded=server.embedded)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StandInProcess:
    """The stand-in in its own process, so its CPU and memory are not the loader's."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "library_identity", "lml-standin", "--port", str(self.port),
             "--api-key", KEY, *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the stand-in did not start")

    def __enter__(self) -> StandInProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def peak_rss_of(db: Database, lml_url: str, *args: str) -> tuple[dict[str, Any], float, float]:
    """Run the CLI; returns (its JSON summary, wall seconds, its peak RSS in MB)."""
    env = {**os.environ, "DATABASE_URL": db.conninfo, "LML_URL": lml_url, "LML_API_KEY": KEY}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "library_identity", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Read output while it runs; then take this child's own rusage from wait4.
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"library-identity {' '.join(args)} exited {proc.returncode}: "
                           f"{err[-2000:]}")
    return (json.loads(out) if out.strip().startswith("{") else {}), wall, usage.ru_maxrss / 1024


def copy_of(server: Database, template: Database, name: str) -> Database:
    """A fresh copy of a prepared database (CREATE DATABASE ... TEMPLATE)."""
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("create database {} template {}").format(
            sql.Identifier(name), sql.Identifier(template.params["dbname"])))
    params = server.params | {"dbname": name}
    return Database(conninfo=psycopg.conninfo.make_conninfo(**params), embedded=server.embedded)


def seeded(server: Database, rows: int) -> tuple[Database, float]:
    """A migrated database with the sample library, to copy for each measurement."""
    template = fresh_database(server, f"{PREFIX}_{rows}_seeded")
    return template, station.build(template, rows)


def make_due(db: Database, every: int = 7) -> None:
    """Age one row in `every` by eight days, as a day of a weekly cycle would find them."""
    with db.connect() as conn:
        conn.execute("update identity_loader.raw_verdicts set attempted_at = attempted_at "
                     "- interval '8 days' where library_id %% %s = 0", (every,))
        conn.execute("update wxyc_schema.library_identity set last_verified_at = "
                     "last_verified_at - interval '8 days' where library_id %% %s = 0",
                     (every,))
        conn.execute("update wxyc_schema.library set unresolved_attempted_at = "
                     "unresolved_attempted_at - interval '8 days' where id %% %s = 0 "
                     "and unresolved_attempted_at is not null", (every,))
        # The merge's incremental state keeps each row's latest attempt too.
        conn.execute(sql.SQL(
            "update {} set latest_attempted_at = latest_attempted_at - interval '8 days', "
            "last_resolved_verdict_at = last_resolved_verdict_at - interval '8 days' "
            "where library_id %% %s = 0").format(
                dbt_names.relation(dbt_names.VERDICT_STATE)), (every,))
        conn.commit()


def _row(label: str, summary: dict[str, Any], wall: float, rss: float) -> str:
    t = summary["timings"]
    scanned = summary["counters"]["total"]["scanned"]
    cpu_us = t["load_cpu_s"] / scanned * 1e6 if scanned else 0.0
    pace = summary.get("pacing") or {}
    return (f"{label:<16} {scanned:>7,} {t['candidates_s']:>6.2f} {t['load_s']:>6.2f} "
            f"{cpu_us:>8.1f} {t.get('merge_s', 0):>7.2f} {t.get('dbt_s', 0):>6.2f} "
            f"{t.get('dbt_parse_s', 0):>6.2f} {wall:>7.2f} {rss:>6.0f} "
            f"{pace.get('settled_concurrency', '-'):>5}")


def scale(server: Database, rows_list: list[int]) -> Database | None:
    print("\n## 1. First resolve and a steady-state daily run (no added LML latency, adaptive "
          "pace)")
    print("   end to end: the CLI's wall time, candidates + load + merge and gates; "
          "loader CPU: µs a row")
    print("   of this process's CPU in the load phase; dbt: time inside dbt (parse: of "
          "which parsing)")
    header = (f"{'run':<16} {'rows':>7} {'cand s':>6} {'load s':>6} {'CPU µs':>8} "
              f"{'merge s':>7} {'dbt s':>6} {'parse':>6} {'e2e s':>7} {'RSS MB':>6} "
              f"{'pace':>5}")
    first: Database | None = None
    with StandInProcess() as standin:
        for rows in rows_list:
            template, seed_s = seeded(server, rows)
            print(f"   {rows:,} rows seeded in {seed_s:.1f}s")
            print(header)
            db = copy_of(server, template, f"{PREFIX}_{rows}")
            summary, wall, rss = peak_rss_of(db, standin.url, "resolve", "--json",
                                             "--no-progress")
            print(_row("first resolve", summary, wall, rss))
            make_due(db)
            summary, wall, rss = peak_rss_of(db, standin.url, "resolve", "--json",
                                             "--no-progress")
            print(_row("daily (1/7 due)", summary, wall, rss))
            summary, wall, rss = peak_rss_of(db, standin.url, "resolve", "--json",
                                             "--no-progress")
            print(_row("nothing due", summary, wall, rss))
            first = first or db
    return first


def latency(server: Database, rows: int, lat_ms: float = 100.0) -> None:
    print(f"\n## 2. Load phase at {lat_ms:g} ms added LML latency, {rows:,} rows")
    print("   ideal = (ceil(V/A batches / c) + ceil(non-V/A batches / c)) x latency, the "
          "cohorts one after the other;")
    print("   floor = ideal + the loader's own CPU in the phase (a bound: CPU and waiting "
          "overlap across threads)")
    print(f"{'pace':>12} {'batches':>8} {'load s':>7} {'ideal s':>8} {'CPU s':>6} "
          f"{'floor s':>8} {'over floor':>10}")
    template = Database(conninfo=psycopg.conninfo.make_conninfo(
        **(server.params | {"dbname": f"{PREFIX}_{rows}_seeded"})), embedded=server.embedded)
    with StandInProcess("--latency-ms", str(lat_ms)) as standin:
        for concurrency in ("4", None):
            db = copy_of(server, template, f"{PREFIX}_{rows}_latency")
            args = ["resolve", "--json", "--no-progress", "--no-merge"]
            if concurrency:
                args += ["--concurrency", concurrency]
            summary, _, _ = peak_rss_of(db, standin.url, *args)
            cohorts = summary["counters"]
            c = int(concurrency or summary["pacing"]["settled_concurrency"])
            batches = [cohorts[k]["lml_total_calls"] for k in ("va", "non_va")]
            ideal = sum(math.ceil(b / c) for b in batches) * lat_ms / 1000
            t = summary["timings"]
            floor = ideal + t["load_cpu_s"]
            label = f"fixed {c}" if concurrency else f"adaptive→{c}"
            print(f"{label:>12} {sum(batches):>8} {t['load_s']:>7.2f} {ideal:>8.2f} "
                  f"{t['load_cpu_s']:>6.2f} {floor:>8.2f} "
                  f"{100 * (t['load_s'] / floor - 1):>9.1f}%")


def baseline(db: Database) -> None:
    print("\n## 3. Set-based landing + dbt merge vs row-at-a-time upserts (same verdicts)")
    with db.connect() as conn:
        run_id, load_s = conn.execute(
            "select run_id, (counters->'total'->>'lml_total_latency_ms')::float "
            "from identity_loader.runs where job = 'resolve' and status = 'succeeded' "
            "order by started_at limit 1").fetchone() or (None, None)
        conn.execute("drop schema if exists bench_baseline cascade")
        conn.execute("create schema bench_baseline")
        conn.execute("create table bench_baseline.library_identity "
                     "(like wxyc_schema.library_identity including all)")
        conn.execute("create table bench_baseline.library_identity_source "
                     "(like wxyc_schema.library_identity_source including all)")
        verdicts = conn.execute(
            "select library_id, method, confidence, wikidata_qid, spotify_artist_id, "
            "apple_music_artist_id, result->'provenance' from identity_loader.raw_verdicts "
            "where run_id = %s and kind = 'single_artist' order by library_id",
            (run_id,)).fetchall()
        conn.commit()
        started = time.perf_counter()
        for library_id, method, confidence, qid, spotify, apple, provenance in verdicts:
            with conn.transaction():
                conn.execute("select * from bench_baseline.library_identity "
                             "where library_id = %s for update", (library_id,))
                for p in provenance:
                    if p.get("confidence") is None or p.get("external_id") is None:
                        continue
                    conn.execute(
                        "insert into bench_baseline.library_identity_source (library_id, "
                        "source, external_id, method, confidence, last_verified_at, notes) "
                        "values (%s, %s, %s, %s, %s, now(), 'consumer:lml-bulk') "
                        "on conflict (library_id, source) do update set "
                        "external_id = excluded.external_id, method = excluded.method, "
                        "confidence = excluded.confidence, "
                        "last_verified_at = excluded.last_verified_at",
                        (library_id, p["source"], p["external_id"], p["method"],
                         p["confidence"]))
                conn.execute(
                    "insert into bench_baseline.library_identity (library_id, wikidata_qid, "
                    "spotify_id, apple_music_id, last_verified_at, method, confidence, notes) "
                    "values (%s, %s, %s, %s, now(), %s, %s, 'consumer:lml-bulk') "
                    "on conflict (library_id) do update set wikidata_qid = "
                    "excluded.wikidata_qid, spotify_id = excluded.spotify_id, apple_music_id = "
                    "excluded.apple_music_id, last_verified_at = excluded.last_verified_at, "
                    "method = excluded.method, confidence = excluded.confidence",
                    (library_id, qid, spotify, apple, method, confidence))
        row_at_a_time = time.perf_counter() - started
        conn.execute("drop schema bench_baseline cascade")
        conn.commit()
    # Ours, on the same verdicts: re-merge them from scratch (identity tables emptied; a
    # full rebuild, since an incremental merge would find nothing new).
    with db.connect() as conn:
        conn.execute("truncate wxyc_schema.library_identity_source, "
                     "wxyc_schema.library_identity, wxyc_schema.library_identity_history")
        conn.commit()
    env = {**os.environ, "DATABASE_URL": db.conninfo}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "library_identity", "merge", "--full-rebuild"],
                   cwd=ROOT, env=env, check=False, capture_output=True)
    merge_s = time.perf_counter() - started
    landing = _landing_seconds(db, run_id)
    ours = landing + merge_s
    n = len(verdicts)
    print(f"   verdicts: {n:,} single_artist rows (lml latency total in that run: "
          f"{(load_s or 0) / 1000:.1f}s, not counted)")
    print(f"   row-at-a-time upserts: {row_at_a_time:7.2f}s ({n / row_at_a_time:,.0f} rows/s)")
    print(f"   COPY landing + dbt merge: {ours:7.2f}s (landing {landing:.2f}s, "
          f"merge {merge_s:.2f}s incl. dbt start-up)")
    print(f"   ratio: set-based is {row_at_a_time / ours:.1f}x faster")


def _landing_seconds(db: Database, run_id: Any) -> float:
    """Time the loader's landing of the run's verdicts again: COPY into the real verdict
    log under a new run id, in a transaction that is then rolled back."""
    with db.connect() as conn:
        rows = conn.execute(
            "select library_id, cohort, kind, method, confidence, discogs_artist_id, "
            "musicbrainz_artist_id, wikidata_qid, spotify_artist_id, apple_music_artist_id, "
            "bandcamp_id, tracks_contract_version, tracks_attempted, track_count, "
            "request::text, result::text from identity_loader.raw_verdicts where run_id = %s",
            (run_id,)).fetchall()
        replay = uuid.uuid4()
        conn.execute("insert into identity_loader.runs (run_id, job) values (%s, 'resolve')",
                     (replay,))
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(landing._COPY_SQL) as copy:
            for row in rows:
                copy.write_row((replay, *row))
        conn.execute("select 1")
        elapsed = time.perf_counter() - started
        conn.rollback()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[64_676])
    parser.add_argument("--skip-scale", action="store_true",
                        help="reuse the databases of an earlier run")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--db-prefix", default=PREFIX,
                        help="name prefix of the benchmark's databases")
    args = parser.parse_args()
    globals()["PREFIX"] = args.db_prefix
    server = resolve_database(os.environ.get("DATABASE_URL"),
                              ROOT / ".library-identity" / "bench")
    print(f"# resolve benchmark — {platform.node()}, {os.cpu_count()} cores, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{server.describe()}")
    if args.skip_scale:
        params = server.params | {"dbname": f"{PREFIX}_{args.rows[0]}"}
        db = Database(conninfo=psycopg.conninfo.make_conninfo(**params),
                      embedded=server.embedded)
    else:
        db = scale(server, args.rows)
    assert db is not None
    if not args.skip_latency:
        latency(server, args.rows[0])
    if not args.skip_baseline:
        baseline(db)


if __name__ == "__main__":
    main()
