"""The nightly run on a database built from the station's real schema, as fresh processes.

Prints figures; it is not a test. Usage:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/nightly_bench.py [--rows 64676] [--repeat 1]

DATABASE_URL names the server and a role that may create databases and extensions (the
schema runs `create extension pg_trgm`): a superuser. On it the bench makes a database from
the station's schema file (its triggers, functions and indexes included), runs
`library-identity migrate`, and writes the sample library into the station's own tables
(tests/station.py, as the tests build theirs). Then, on a fresh copy for each repeat, with
the LML stand-in at zero latency in a process of its own and each run a fresh
`library-identity resolve --json`:

1. the first run (the whole library: candidates, load, merge and gates);
2. a daily run: one row in seven aged past the 7-day windows (its verdict, the merge's
   verdict state and the station's stamps moved 8 days back), as a day of a weekly cycle
   finds them;
3. a run with nothing due.

Each line: wall time of the process, then the phases from its --json timings (dbt: time
inside dbt, of which parsing) and where its candidates came from (built by dbt, or the
deployed view read as it is). Also `library-identity --help`, five fresh processes.
The machine's load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import station  # noqa: E402
from resolve_bench import KEY, StandInProcess  # noqa: E402

from library_identity import dbt_names  # noqa: E402
from library_identity.db import Database, resolve_database  # noqa: E402
from library_identity.demo.seed import DEFAULT_ROWS  # noqa: E402

PREFIX = "nightly_bench"
CLI = (sys.executable, "-m", "library_identity")


def database(server: Database, name: str) -> Database:
    params = server.params | {"dbname": name}
    return Database(conninfo=psycopg.conninfo.make_conninfo(**params), embedded=server.embedded)


def fresh_database(server: Database, name: str, template: str | None = None) -> Database:
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(name)))
        create = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            create = sql.SQL("{} template {}").format(create, sql.Identifier(template))
        conn.execute(create)
    return database(server, name)


def drop_database(server: Database, name: str) -> None:
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(name)))


def cli(db: Database, *args: str, lml_url: str | None = None) -> tuple[str, float]:
    """Run the command line as a fresh process; (stdout, wall seconds)."""
    env = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    env.update(DATABASE_URL=db.conninfo, LIBRARY_IDENTITY_CONFIG=os.devnull)
    if lml_url:
        env.update(LML_URL=lml_url, LML_API_KEY=KEY)
    started = time.perf_counter()
    proc = subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"library-identity {' '.join(args)} exited {proc.returncode}: "
                           f"{proc.stderr[-2000:]}")
    return proc.stdout, wall


# -- the database -----------------------------------------------------------------------------

def make_due(db: Database, every: int = 7, days: int = 8) -> int:
    """Age one library row in `every` by `days`: its verdicts, the merge's verdict state
    and the station's stamps. Returns the rows aged."""
    shift = f"interval '{days} days'"
    with db.connect() as conn:
        conn.execute(f"update identity_loader.raw_verdicts set attempted_at = attempted_at "
                     f"- {shift} where library_id %% %s = 0", (every,))
        conn.execute(f"update wxyc_schema.library_identity set last_verified_at = "
                     f"last_verified_at - {shift} where library_id %% %s = 0", (every,))
        conn.execute(f"update wxyc_schema.library set unresolved_attempted_at = "
                     f"unresolved_attempted_at - {shift} where id %% %s = 0 "
                     "and unresolved_attempted_at is not null", (every,))
        aged = conn.execute(sql.SQL(
            f"update {{}} set latest_attempted_at = latest_attempted_at - {shift}, "
            f"last_resolved_verdict_at = last_resolved_verdict_at - {shift} "
            "where library_id %% %s = 0").format(
                dbt_names.relation(dbt_names.VERDICT_STATE)), (every,)).rowcount
        conn.commit()
    return aged


# -- the stand-in -----------------------------------------------------------------------------

# -- figures ----------------------------------------------------------------------------------

def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


HEADER = (f"{'run':<14} {'rows':>7} {'wall s':>7} {'cand s':>7} {'load s':>7} "
          f"{'merge s':>7} {'dbt s':>6} {'parse':>6} {'candidates':>10}  load average")


def line(label: str, summary: dict[str, Any], wall: float) -> str:
    t = summary["timings"]
    scanned = summary["counters"]["total"]["scanned"]
    return (f"{label:<14} {scanned:>7,} {wall:>7.2f} {t['candidates_s']:>7.2f} "
            f"{t['load_s']:>7.2f} {t.get('merge_s', 0):>7.2f} {t.get('dbt_s', 0):>6.2f} "
            f"{t.get('dbt_parse_s', 0):>6.2f} {summary.get('candidates_from', '-'):>10}  "
            f"{os.getloadavg()[0]:.2f}")


def help_times(count: int = 5) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LIBRARY_IDENTITY_CONFIG"] = os.devnull
    script = Path(sys.executable).with_name("library-identity")
    command = [str(script)] if script.exists() else [*CLI]
    times = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run([*command, "--help"], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--repeat", type=int, default=1,
                        help="Runs of the three, each on a fresh copy.")
    parser.add_argument("--keep", action="store_true", help="Keep the databases.")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        sys.exit("error: set DATABASE_URL to a server and a superuser role "
                 "(the station's schema creates an extension)")
    server = resolve_database(os.environ["DATABASE_URL"], ROOT / ".library-identity" / "bench")
    with server.connect() as conn:
        version = conn.execute("show server_version").fetchone()
    print(f"# nightly bench: {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, PostgreSQL {version[0] if version else '?'}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {load_average()}")

    helps = help_times()
    print(f"\n`library-identity --help`, {len(helps)} fresh processes: median "
          f"{statistics.median(helps):.3f} s, min {min(helps):.3f} s ({load_average()})")

    started = time.perf_counter()
    template = fresh_database(server, f"{PREFIX}_template")
    station.load(template)
    schema_s = time.perf_counter() - started
    _, migrate_s = cli(template, "migrate")
    started = time.perf_counter()
    with template.connect() as conn:
        station.seed_sample(conn, args.rows)
    sample_s = time.perf_counter() - started
    print(f"\nthe station's schema loaded in {schema_s:.1f} s, migrated in {migrate_s:.1f} s, "
          f"{args.rows:,} sample rows written into its tables in {sample_s:.1f} s")

    print(f"\n{HEADER}")
    with StandInProcess() as standin:
        for repeat in range(args.repeat):
            db = fresh_database(server, f"{PREFIX}_run", template=f"{PREFIX}_template")
            resolve = ("resolve", "--json", "--no-progress")
            out, wall = cli(db, *resolve, lml_url=standin.url)
            print(line("first run", json.loads(out), wall))
            aged = make_due(db)
            out, wall = cli(db, *resolve, lml_url=standin.url)
            print(line(f"daily ({aged:,})", json.loads(out), wall))
            out, wall = cli(db, *resolve, lml_url=standin.url)
            print(line("nothing due", json.loads(out), wall))
            if repeat + 1 < args.repeat:
                print()
    if not args.keep:
        drop_database(server, f"{PREFIX}_run")
        drop_database(server, f"{PREFIX}_template")


if __name__ == "__main__":
    main()
