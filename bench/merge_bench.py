"""Merge benchmarks on the sample library in a database built from the station's own
schema (tests/fixtures/wxyc_schema.sql: its triggers, functions and indexes included).

Prints figures; it is not a test. Usage:

    .venv/bin/python bench/merge_bench.py [--rows 64676] [--days 30] [--large 646760]

Uses DATABASE_URL when set, else the embedded Postgres (data in .library-identity/bench).
Each merge runs in a fresh process and is timed there, dbt's start-up included:
1. first merge of a whole library's verdicts; a merge with nothing new; a steady-state
   merge (one day's stale rows, about a seventh of the library);
2. history growth: daily runs landed one after another, each merged; the merge of the
   last day against the second;
3. with --large N: the first merge of an N-row library.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import station  # noqa: E402
from resolve_bench import KEY, StandInProcess, fresh_database  # noqa: E402

from library_identity import dbt_names  # noqa: E402
from library_identity.db import Database, resolve_database  # noqa: E402
from library_identity.lml.client import LMLClient  # noqa: E402
from library_identity.resolve import candidates  # noqa: E402
from library_identity.resolve.resolve_job import ResolveOptions, resolve  # noqa: E402

MERGE_IN_A_PROCESS = """
import json, sys, time
started = time.perf_counter()
from library_identity.db import Database
from library_identity.dbt import manifest
from library_identity.resolve.merge import merge
db = Database(conninfo=sys.argv[1], embedded=sys.argv[2] == "1")
manifest(db, {})
merging = time.perf_counter()
outcome = merge(db, {})
done = time.perf_counter()
print(json.dumps({"seconds": done - started, "startup": merging - started,
                  "merge": done - merging, "success": outcome.success,
                  "failures": outcome.failures, "counts": outcome.counts}))
"""


def timed_merge(db: Database) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", MERGE_IN_A_PROCESS, db.conninfo,
                          "1" if db.embedded else "0"], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["success"]:
        raise SystemExit(f"merge failed: {result['failures']}")
    return result


def land(db: Database, standin: StandInProcess) -> int:
    """One resolve run without its merge: candidates, LML, landing."""
    with LMLClient(base_url=standin.url, api_key=KEY) as client:
        result = resolve(db, client, ResolveOptions(concurrency=4), merge=False)
    return result.counters.total.scanned


def age(db: Database, days: int, where: str = "true") -> None:
    """Move recorded times `days` into the past for the library rows `where` selects."""
    shift = f"interval '{days} days'"
    state = f"{dbt_names.schema()}.int_verdicts__latest"
    with db.connect() as conn:
        for table, column, key in (
            ("identity_loader.raw_verdicts", "attempted_at", "library_id"),
            ("wxyc_schema.library_identity", "last_verified_at", "library_id"),
            ("wxyc_schema.library_identity_source", "last_verified_at", "library_id"),
            ("wxyc_schema.library", "unresolved_attempted_at", "id"),
            (state, "latest_attempted_at", "library_id"),
            (state, "last_resolved_verdict_at", "library_id"),
            ("identity_loader.library_identity_artist_ids", "last_verified_at", "library_id"),
        ):
            conn.execute(f"update {table} set {column} = {column} - {shift} "
                         f"where {column} is not null and ({where.format(key=key)})")
        conn.commit()


def prepared(server: Database, name: str, rows: int) -> Database:
    db = fresh_database(server, name)
    station.build(db, rows)
    candidates.build_candidates(db, ResolveOptions().dbt_vars())
    return db


def log_size(db: Database) -> int:
    with db.connect() as conn:
        row = conn.execute("select count(*) from identity_loader.raw_verdicts").fetchone()
    return int(row[0]) if row else 0


def watermark(db: Database) -> Any:
    with db.connect() as conn:
        row = conn.execute("select last_modified_at from wxyc_schema.library_watermark"
                           ).fetchone()
    return row[0] if row else None


def print_row(label: str, result: dict[str, Any], extra: str = "") -> None:
    counts = result["counts"]
    written = counts.get("identity_rows_written", 0)
    links = counts.get("compilation_track_rows_written", 0)
    print(f"| {label} | {result['seconds']:.2f} s | {result['startup']:.2f} s | "
          f"{result['merge']:.2f} s | {written:,} | {links:,} | {extra} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64_676)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--large", type=int, default=0)
    args = parser.parse_args()
    server = resolve_database(os.environ.get("DATABASE_URL"),
                              ROOT / ".library-identity" / "bench")
    with server.connect() as conn:
        version = conn.execute("show server_version").fetchone()
    print(f"# merge benchmark: {platform.machine()}, {os.cpu_count()} cores, "
          f"PostgreSQL {version[0] if version else '?'}, {time.strftime('%Y-%m-%d')}")
    print("| merge | in a fresh process | of which dbt start-up (imports, parse) | "
          "the merge itself | identity rows written | track links written | notes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    with StandInProcess() as standin:
        db = prepared(server, "li_bench_merge", args.rows)
        land(db, standin)
        mark = watermark(db)
        print_row(f"first merge, {args.rows:,} rows", timed_merge(db),
                  f"{log_size(db):,} verdicts")
        print_row("no-op merge (nothing new)", timed_merge(db))
        age(db, 8, "{key} % 7 = 0")
        scanned = land(db, standin)
        print_row("steady state (a seventh of the rows stale)", timed_merge(db),
                  f"{scanned:,} verdicts new")
        print(f"watermark unchanged by the merges: {watermark(db) == mark}")

        # History growth: one day passes, that day's stale seventh is resolved and merged.
        figures: dict[int, float] = {}
        for day in range(1, args.days + 1):
            age(db, 1)
            age(db, 7, f"{{key}} % 7 = {day % 7}")
            land(db, standin)
            figures[day] = timed_merge(db)["merge"]
        print(f"history growth: {args.days} daily runs, log {log_size(db):,} verdicts; "
              f"the merge itself (dbt start-up apart) of run 2 {figures[2]:.2f} s, run "
              f"{args.days} {figures[args.days]:.2f} s "
              f"({figures[args.days] / figures[2]:.2f}x)")

        if args.large:
            large = prepared(server, "li_bench_merge_large", args.large)
            land(large, standin)
            print_row(f"first merge, {args.large:,} rows", timed_merge(large),
                      f"{log_size(large):,} verdicts")


if __name__ == "__main__":
    main()
