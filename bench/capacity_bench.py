"""Capacity benchmark: fixed concurrencies against the adaptive pace, on the stand-in's
model of LML's capacity with the station's live lookups as background load.

Prints figures; it is not a test. Usage:

    .venv/bin/python bench/capacity_bench.py [--rows 20000] [--time-scale 20]
                                             [--when-dry queue 429] [--live-per-minute 30]

Uses DATABASE_URL when set, else the embedded Postgres. Seeds a library of --rows rows in
its own database and has dbt build the candidates once; each run is then a dry run
(nothing written) of `resolve` against a fresh stand-in in its own process (its cache as
--warm-share says): LML's upstream budget of 50 calls a minute with a burst of 50, 100 ms
of LML's own work per call, and live lookups queued on the same budget. Time is scaled
(--time-scale) so a run takes seconds; every duration printed is in the model's time (real
seconds times the scale): what LML and the station would see.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import station  # noqa: E402
from resolve_bench import KEY, StandInProcess, fresh_database  # noqa: E402

from library_identity.db import Database, resolve_database  # noqa: E402
from library_identity.lml.client import LMLClient  # noqa: E402
from library_identity.resolve import candidates  # noqa: E402
from library_identity.resolve.resolve_job import ResolveOptions, resolve  # noqa: E402

BATCH = 100
FIXED = (1, 2, 4, 8)
LIVE_BOUND_S = 60.0  # model seconds: the bound a live lookup's queueing must stay within


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_standin/stats", timeout=10) as response:
        return json.loads(response.read())["capacity"]


def one_run(db: Database, args: argparse.Namespace, when_dry: str,
            concurrency: int | None) -> dict[str, Any]:
    scale = args.time_scale
    with StandInProcess("--latency-ms", str(100 / scale), "--upstream-per-minute", "50",
                        "--upstream-burst", "50", "--when-dry", when_dry,
                        "--live-per-minute", str(args.live_per_minute),
                        "--warm-share", str(args.warm_share),
                        "--time-scale", str(scale)) as standin:
        options = ResolveOptions(dry_run=True, batch_size=BATCH, va_batch_size=BATCH,
                                 concurrency=concurrency, max_concurrency=args.max_concurrency,
                                 latency_floor_s=0.05 / scale)
        started = time.perf_counter()
        with LMLClient(base_url=standin.url, api_key=KEY, max_attempts=8,
                       backoff_initial_s=0.5 / scale, backoff_max_s=30 / scale) as client:
            result = resolve(db, client, options, prepare=False, merge=False)
        wall = time.perf_counter() - started
        model = stats(standin.url)
    total = result.counters.total
    return {"concurrency": concurrency, "wall_model_s": wall * scale,
            "scanned": total.scanned, "lml_error": total.rows_skipped["lml_error"],
            "calls": total.lml_total_calls, "pacing": result.pacing, **model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--live-per-minute", type=float, default=30.0)
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--warm-share", type=float, default=0.99)
    parser.add_argument("--when-dry", nargs="+", default=["queue", "429"])
    args = parser.parse_args()
    server = resolve_database(os.environ.get("DATABASE_URL"),
                              ROOT / ".library-identity" / "bench")
    db = fresh_database(server, "bench_capacity")
    station.build(db, args.rows)
    candidates.build_candidates(db, ResolveOptions().dbt_vars())
    print(f"# capacity benchmark — {platform.node()}, {os.cpu_count()} cores, "
          f"{server.describe()}")
    print(f"  {args.rows:,} library rows, batches of {BATCH}, LML's cache fresh each run "
          f"({100 * args.warm_share:g}% of rows cached); LML: 50 "
          f"upstream calls/min (burst 50), 100 ms per call; {args.live_per_minute:g} live "
          f"lookups/min; time x{args.time_scale:g}; durations in model seconds")
    for when_dry in args.when_dry:
        print(f"\n## when the budget is spent: {when_dry}")
        print(f"{'pace':>22} {'run s':>8} {'live p50 s':>11} {'live p95 s':>11} "
              f"{'live max s':>11} {'429s':>5} {'calls':>6} {'upstream':>9}")
        runs = [one_run(db, args, when_dry, c) for c in FIXED]
        runs.append(one_run(db, args, when_dry, None))
        for r in runs:
            label = (f"fixed {r['concurrency']}" if r["concurrency"] else
                     f"adaptive → {r['pacing']['settled_concurrency']}")
            print(f"{label:>22} {r['wall_model_s']:>8.0f} {r['live_wait_p50_s']:>11.1f} "
                  f"{r['live_wait_p95_s']:>11.1f} {r['live_wait_max_s']:>11.1f} "
                  f"{r['refused_429']:>5} {r['calls']:>6} {r['upstream_calls']:>9}")
        best = min(runs[:-1], key=lambda r: r["wall_model_s"])
        adaptive = runs[-1]
        print(f"   best fixed: {best['concurrency']} in {best['wall_model_s']:.0f} s; adaptive "
              f"took {100 * (adaptive['wall_model_s'] / best['wall_model_s'] - 1):+.0f}% "
              f"(target within +20%), live p95 {adaptive['live_wait_p95_s']:.1f} s "
              f"(bound {LIVE_BOUND_S:g} s)")
        pacing = adaptive["pacing"]
        print(f"   adaptive: settled at {pacing['settled_concurrency']}, peak "
              f"{pacing['peak_concurrency']}, mean {pacing['mean_concurrency']}, decreases "
              f"{pacing['decreases']}, paused {pacing['retry_after_paused_s']} s: "
              f"{pacing['reason']}")
        lost = [r for r in runs if r["lml_error"]]
        if lost:
            print(f"   runs with rows lost to lml_error: {[r['concurrency'] for r in lost]}")


if __name__ == "__main__":
    main()
