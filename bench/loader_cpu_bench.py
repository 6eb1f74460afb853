"""The loader's hot path, step by step: HTTP bytes → JSON → checks → COPY rows → COPY.

Prints figures; it is not a test. Usage:

    .venv/bin/python bench/loader_cpu_bench.py [--rows 64676] [--repeat 3]

Reads the candidates of a seeded sample library (DATABASE_URL, after a resolve built them),
has the stand-in's verdict code compose every response body once (outside the timings), then
times each step of the loader over all of them, single-threaded, in CPU seconds of this
process. COPY is timed into a rolled-back transaction.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import pydantic_core  # noqa: E402
from reference_classifier import classify_batch, copy_row  # noqa: E402

from library_identity import dbt_names, jsonfast  # noqa: E402
from library_identity.demo.standin.server import _dumps  # noqa: E402
from library_identity.demo.standin.verdicts import verdict  # noqa: E402
from library_identity.resolve import fastpath, landing  # noqa: E402
from library_identity.resolve.candidates import Candidate  # noqa: E402
from library_identity.resolve.resolve_job import _young_collections  # noqa: E402

BATCH = {"va": 100, "non_va": 500}


def candidates(url: str, rows: int) -> list[Candidate]:
    """The candidates dbt built for the database's library (a seeded, resolved sample)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as conn:
        found = conn.execute(sql.SQL(
            "select library_id, artist_name, album_title, legacy_release_id, cohort "
            "from {} where artist_name is not null order by library_id limit %s").format(
                dbt_names.relation(dbt_names.LIBRARY_CANDIDATES)), (rows,)).fetchall()
    return [Candidate(*row) for row in found]


def batches(url: str, rows: int) -> list[tuple[list[Candidate], bytes]]:
    """(batch, response body) pairs in run order: V/A first, like resolve."""
    by_cohort: dict[str, list[Candidate]] = {"va": [], "non_va": []}
    for c in candidates(url, rows):
        by_cohort[c.cohort].append(c)
    out = []
    for cohort in ("va", "non_va"):
        items = by_cohort[cohort]
        size = BATCH[cohort]
        for i in range(0, len(items), size):
            batch = items[i:i + size]
            results = [verdict(c.artist_name, c.legacy_release_id, True,
                               library_id=c.library_id) for c in batch]
            out.append((batch, _dumps({"results": results, "tracks_contract_version": 1,
                                       "cache_stats": None})))
    return out


def young(work: Callable[[], Any]) -> Callable[[], Any]:
    """The work under the load phase's garbage-collection settings."""
    def run() -> Any:
        with _young_collections():
            return work()

    return run


def cpu(work: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64_676)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("set DATABASE_URL to a database where `resolve` has built the candidates")
    data = batches(url, args.rows)
    n = sum(len(b) for b, _ in data)
    mb = sum(len(body) for _, body in data) / 1e6
    print(f"# loader CPU per row — {platform.node()}, {os.cpu_count()} cores, "
          f"{platform.python_implementation()} {platform.python_version()}")
    print(f"  {n:,} rows in {len(data):,} batches, {mb:.1f} MB of response bodies; "
          f"best of {args.repeat}, CPU time of this process")
    run_id = uuid.uuid4()
    bodies = [body for _, body in data]
    decoded = [pydantic_core.from_json(b) for b in bodies]
    rows_old: list[Any] = []
    rows_new: list[Any] = []

    def model_path() -> None:
        rows_old.clear()
        for (batch, _), payload in zip(data, decoded, strict=True):
            outcome = classify_batch(batch, payload)
            rows_old.extend(copy_row(run_id, v) for v in outcome.verdicts)

    def fast_path() -> None:
        rows_new.clear()
        for (batch, body) in data:
            outcome = fastpath.classify(batch, jsonfast.loads(body), run_id)
            rows_new.extend(outcome.rows)

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("decode: pydantic_core.from_json", lambda: [pydantic_core.from_json(b) for b in bodies]),
        ("decode: orjson.loads", lambda: [jsonfast.loads(b) for b in bodies]),
        ("models: classify_batch + copy_row (decoded)", model_path),
        ("fast path: loads + classify (bytes → COPY rows)", fast_path),
        ("fast path, collections as in resolve's load", young(fast_path)),
    ]
    figures: dict[str, float] = {}
    print(f"\n{'step':<48} {'CPU s':>7} {'µs/row':>8}")
    for name, work in steps:
        seconds = cpu(work, args.repeat)
        figures[name] = seconds
        print(f"{name:<48} {seconds:>7.3f} {seconds / n * 1e6:>8.1f}")
    assert len(rows_old) == len(rows_new), (len(rows_old), len(rows_new))
    if url:
        copy_seconds = _copy(url, rows_new, args.repeat)
        print(f"{'COPY write_row into raw_verdicts (rolled back)':<48} {copy_seconds:>7.3f} "
              f"{copy_seconds / n * 1e6:>8.1f}")


def _copy(url: str, rows: list[tuple[Any, ...]], repeat: int) -> float:
    """CPU of this process to COPY the rows (the server's own work is not counted)."""
    import psycopg

    best = float("inf")
    with psycopg.connect(url) as conn:
        for _ in range(repeat):
            run_id = rows[0][0]
            conn.execute("insert into identity_loader.runs (run_id, job) values (%s, 'resolve')",
                         (run_id,))
            started = time.process_time()
            with conn.cursor() as cur, cur.copy(landing._COPY_SQL) as copy:
                for row in rows:
                    copy.write_row(row)
            best = min(best, time.process_time() - started)
            conn.rollback()
    return best


if __name__ == "__main__":
    main()
