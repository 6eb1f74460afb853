"""Report benchmark: how long each report query takes on the seeded, resolved sample.

Prints figures; it is not a test. Usage:

    .venv/bin/python bench/report_bench.py [--rows 64676] [--repeat 5] [--reuse]
                                           [--html PATH]

Uses DATABASE_URL when set, else the embedded Postgres (data in .library-identity/bench).
Seeds a fresh database (bench_report_<rows>), resolves it through the LML stand-in the
way a station would have (a legacy run, a full run, then a recheck of the unresolved
rows, each merged by dbt), builds the report views, then runs each report query --repeat
times and prints the fastest, median and slowest wall time. --reuse keeps a database an
earlier run left; --html also writes the page rendered from it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import station  # noqa: E402

from library_identity.db import Database, resolve_database  # noqa: E402
from library_identity.demo.standin.server import StandIn, StandInConfig  # noqa: E402
from library_identity.lml.client import LMLClient  # noqa: E402
from library_identity.report import data  # noqa: E402
from library_identity.resolve.resolve_job import ResolveOptions, resolve  # noqa: E402

KEY = "bench-key-report-0123456789"
RUN_MODES = ("legacy", "full", "recheck")
BUDGET_S = 1.0


def database(server: Database, name: str, *, fresh: bool) -> tuple[Database, bool]:
    """(the database, whether it was created now)."""
    with server.connect(autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)
                              ).fetchone() is not None
        if fresh or not exists:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    params = server.params | {"dbname": name}
    return (Database(conninfo=psycopg.conninfo.make_conninfo(**params),
                     embedded=server.embedded), fresh or not exists)


def prepare(db: Database, rows: int) -> None:
    seconds = station.build(db, rows)
    print(f"seeded {rows:,} library rows in {seconds:.1f}s")
    with StandIn(StandInConfig(api_key=KEY)) as standin, \
            LMLClient(base_url=standin.url, api_key=KEY) as client:
        for mode in RUN_MODES:
            started = time.perf_counter()
            result = resolve(db, client, ResolveOptions(mode=mode, concurrency=2), merge=True)
            if result.merge is None or not result.merge.success:
                raise SystemExit(f"the {mode} run's merge failed: {result.merge}")
            print(f"resolve --mode {mode}: scanned {result.counters.total.scanned:,} "
                  f"in {time.perf_counter() - started:.1f}s ({result.status})")


def sample_size(db: Database) -> tuple[int, int, int]:
    with db.connect() as conn:
        row = conn.execute(
            "select (select count(*) from wxyc_schema.library), "
            "(select count(*) from identity_loader.raw_verdicts), "
            "(select count(*) from identity_loader.runs where job = 'resolve')").fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def time_queries(db: Database, repeat: int) -> list[tuple[str, int, list[float]]]:
    """(model, rows returned, wall seconds of each repetition) for each report query, run
    exactly as `library-identity report` runs it."""
    queries = [(s.model, s.order_by) for s in data.SECTIONS]
    queries.append((data.BANDS_MODEL, ("band_order",)))
    out = []
    with data.connect(db, application_name="library-identity:report-bench") as conn:
        conn.autocommit = True  # each query on its own, as a fresh snapshot
        for model, order_by in queries:
            data.select_model(conn, model, order_by)  # warm the plan and the cache
            walls, n = [], 0
            for _ in range(repeat):
                started = time.perf_counter()
                n = len(data.select_model(conn, model, order_by))
                walls.append(time.perf_counter() - started)
            out.append((model, n, walls))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64_676)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", action="store_true",
                        help="Keep the database an earlier run seeded and resolved.")
    parser.add_argument("--html", type=Path, help="Also write the report page here.")
    args = parser.parse_args()

    server = resolve_database(os.environ.get("DATABASE_URL"), ROOT / ".library-identity" / "bench")
    db, created = database(server, f"bench_report_{args.rows}", fresh=not args.reuse)
    print(f"# Report benchmark on {db.describe()}")
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    if created:
        prepare(db, args.rows)
    library, verdicts, runs = sample_size(db)
    print(f"sample: {library:,} library rows, {verdicts:,} verdicts from {runs} resolve runs")

    started = time.perf_counter()
    data.refresh(db)
    print(f"dbt build (report views and seed): {time.perf_counter() - started:.1f}s "
          "(dbt start-up included)\n")

    results = time_queries(db, args.repeat)
    print(f"{'report query':<26} {'rows':>5} {'fastest ms':>11} {'median ms':>10} "
          f"{'slowest ms':>11}  under {BUDGET_S:g}s")
    for model, n, walls in results:
        ms = [w * 1000 for w in walls]
        print(f"{model:<26} {n:>5} {min(ms):>11.0f} {statistics.median(ms):>10.0f} "
              f"{max(ms):>11.0f}  {'yes' if max(walls) < BUDGET_S else 'NO'}")

    started = time.perf_counter()
    report = data.read_report(db)
    read_s = time.perf_counter() - started
    print(f"\nthe whole report in one snapshot (all queries above, in sequence): {read_s:.2f}s")
    if args.html:
        from library_identity.report import page

        started = time.perf_counter()
        args.html.write_text(page.render(report), encoding="utf-8")
        print(f"page with charts rendered in {time.perf_counter() - started:.2f}s: {args.html}")


if __name__ == "__main__":
    main()
