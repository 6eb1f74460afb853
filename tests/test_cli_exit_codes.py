"""Every failure class of the command line, in one table: its exit code, exactly one
`error:` line on stderr, no traceback and no secret. The README's exit-code table is
checked against this one."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import CLI
from psycopg import sql

from library_identity import migrate
from library_identity.db import Database
from library_identity.demo.embedded import start_embedded
from library_identity.demo.seed import seed_library
from library_identity.demo.standin.server import StandIn, StandInConfig
from library_identity.errors import (
    EXIT_ALERT,
    EXIT_DB,
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_LML,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
)

ROOT = Path(__file__).resolve().parent.parent
KEY = "Kq8v-exit-codes-key-77"
PASSWORD = "Pw7q%hostile-db-secret"  # an unencoded %: the URL cannot be parsed
UNREACHABLE = "postgresql://postgres:Pw7q-secret@127.0.0.1:1/nowhere"
SECRETS = (KEY, PASSWORD, "Pw7q-secret")
RESOLVE = ("resolve", "--no-progress")

# (case, arguments, environment, database, exit code, what the error line says).
# Databases: "unreachable" (nothing listens: exit 2 proves nothing touched it),
# "no_role" (credentials the server refuses), "empty" (not migrated), "migrated",
# "read_only" (a role that may only read).
CASES: list[tuple[str, tuple[str, ...], dict[str, str], str, int, str]] = [
    ("ok", ("migrate", "--status"), {}, "migrated", EXIT_OK, ""),
    ("lml url file://", RESOLVE, {"LML_URL": "file:///etc/passwd"}, "unreachable", EXIT_USAGE,
     "LML_URL must be an http:// or https:// URL"),
    ("lml url ftp://", RESOLVE, {"LML_URL": "ftp://lml.example"}, "unreachable", EXIT_USAGE,
     "LML_URL must be an http:// or https:// URL"),
    ("lml url without scheme", RESOLVE, {"LML_URL": "lml.example"}, "unreachable", EXIT_USAGE,
     "LML_URL must be an http:// or https:// URL"),
    ("key with a space", RESOLVE, {"LML_API_KEY": "Kx4z key-123"}, "unreachable", EXIT_USAGE,
     "LML_API_KEY must be printable ASCII"),
    ("key with a newline", RESOLVE, {"LML_API_KEY": "Kx4zkey-123\n"}, "unreachable", EXIT_USAGE,
     "LML_API_KEY must be printable ASCII"),
    ("key not ASCII", RESOLVE, {"LML_API_KEY": "Kx4zclé-123"}, "unreachable", EXIT_USAGE,
     "LML_API_KEY must be printable ASCII"),
    ("resolve --timeout nan", (*RESOLVE, "--timeout", "nan"), {}, "unreachable", EXIT_USAGE,
     "not a finite number"),
    ("resolve --requests-per-minute nan", (*RESOLVE, "--requests-per-minute", "nan"), {},
     "unreachable", EXIT_USAGE, "not a finite number"),
    ("backfill --timeout inf", ("rotation", "backfill", "--timeout", "inf"), {},
     "unreachable", EXIT_USAGE, "not a finite number"),
    ("backfill --requests-per-minute nan", ("rotation", "backfill", "--requests-per-minute",
                                            "nan"), {}, "unreachable", EXIT_USAGE,
     "not a finite number"),
    ("refresh --requests-per-minute nan", ("rotation", "refresh", "--requests-per-minute",
                                           "nan"), {}, "unreachable", EXIT_USAGE,
     "not a finite number"),
    ("refresh --timeout inf", ("rotation", "refresh", "--timeout", "inf"), {}, "unreachable",
     EXIT_USAGE, "not a finite number"),
    ("unparsable DATABASE_URL", ("migrate",),
     {"DATABASE_URL": f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test"}, "unreachable",
     EXIT_USAGE, "DATABASE_URL is not a valid Postgres connection string"),
    ("grants, unparsable DATABASE_URL", ("grants", "library_identity"),
     {"DATABASE_URL": f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test"}, "unreachable",
     EXIT_USAGE, "DATABASE_URL is not a valid Postgres connection string"),
    ("grants, connect_timeout=abc", ("grants", "library_identity"),
     {"DATABASE_URL": f"{UNREACHABLE}?connect_timeout=abc"}, "unreachable", EXIT_USAGE,
     "connect_timeout must be a whole number"),
    ("migrate, connect_timeout=abc", ("migrate",),
     {"DATABASE_URL": f"{UNREACHABLE}?connect_timeout=abc"}, "unreachable", EXIT_USAGE,
     "connect_timeout must be a whole number"),
    ("migrate, sslmode=bogus", ("migrate",), {"DATABASE_URL": f"{UNREACHABLE}?sslmode=bogus"},
     "unreachable", EXIT_USAGE, "sslmode must be one of"),
    ("migrate, port=abc", ("migrate",),
     {"DATABASE_URL": "postgresql://postgres:Pw7q-secret@127.0.0.1/nowhere?port=abc"},
     "unreachable", EXIT_USAGE, "port must be a number from 1 to 65535"),
    ("migrate, PGSSLMODE=bogus", ("migrate",), {"PGSSLMODE": "bogus"}, "unreachable",
     EXIT_USAGE, "PGSSLMODE: sslmode must be one of"),
    ("dbt schema with a quote", ("report",), {"LIBRARY_IDENTITY_DBT_SCHEMA": "identity'x"},
     "migrated", EXIT_USAGE, "LIBRARY_IDENTITY_DBT_SCHEMA must be a plain lower-case"),
    ("resolve --requests-per-minute 1e-320", (*RESOLVE, "--requests-per-minute", "1e-320"),
     {}, "unreachable", EXIT_USAGE, "must be at least 0.01"),
    ("resolve --timeout 1e300", (*RESOLVE, "--timeout", "1e300"), {}, "unreachable",
     EXIT_USAGE, "must be at most 86400"),
    ("resolve --timeout 0", (*RESOLVE, "--timeout", "0"), {}, "unreachable", EXIT_USAGE,
     "timeout must be above 0"),
    ("backfill --requests-per-minute 1e-320", ("rotation", "backfill", "--requests-per-minute",
                                               "1e-320"), {}, "unreachable", EXIT_USAGE,
     "must be at least 0.01"),
    ("refresh --timeout 1e12", ("rotation", "refresh", "--timeout", "1e12"), {}, "unreachable",
     EXIT_USAGE, "must be at most 86400"),
    ("grants public", ("grants", "public"), {}, "unreachable", EXIT_USAGE,
     "not a role a grant can name"),
    ("grants ''", ("grants", ""), {}, "unreachable", EXIT_USAGE, "must be a non-empty name"),
    ("LML unreachable", RESOLVE, {"LML_URL": "http://127.0.0.1:9"}, "migrated", EXIT_LML,
     "LML is not reachable"),
    ("seed, database unreachable", ("seed", "--rows", "10"), {}, "unreachable", EXIT_DB,
     "cannot connect"),
    ("report, database unreachable", ("report",), {}, "unreachable", EXIT_DB, "cannot connect"),
    ("coverage, database unreachable", ("rotation", "coverage"), {}, "unreachable", EXIT_DB,
     "cannot connect"),
    ("seed, credentials refused", ("seed", "--rows", "10"), {}, "no_role", EXIT_DB,
     "cannot connect"),
    ("report, credentials refused", ("report",), {}, "no_role", EXIT_DB, "cannot connect"),
    ("coverage, credentials refused", ("rotation", "coverage"), {}, "no_role", EXIT_DB,
     "cannot connect"),
    ("resolve, not migrated", RESOLVE, {}, "empty", EXIT_DB, "run `library-identity migrate`"),
    ("backfill, not migrated", ("rotation", "backfill"), {}, "empty", EXIT_DB,
     "run `library-identity migrate`"),
    ("report, not migrated", ("report",), {}, "empty", EXIT_DB,
     "run `library-identity migrate`"),
    ("coverage, not migrated", ("rotation", "coverage"), {}, "empty", EXIT_DB,
     "run `library-identity migrate`"),
    ("resolve, read-only user", RESOLVE, {}, "read_only", EXIT_DB, "permission denied"),
    ("migrate, read-only user", ("migrate",), {}, "read_only", EXIT_DB,
     "lacks a privilege: `migrate` needs CREATE on schema identity_loader"),
    ("migrate --rollback, read-only user", ("migrate", "--rollback", "1"), {}, "read_only",
     EXIT_DB, "lacks a privilege: `migrate` needs CREATE on schema identity_loader"),
    ("seed, read-only user", ("seed", "--rows", "10"), {}, "read_only", EXIT_DB,
     "lacks a privilege: `migrate` needs CREATE on schema identity_loader"),
]
# Codes whose cases need a whole run to reach; each is checked by the test named here.
ELSEWHERE = {
    EXIT_GATE: "tests/test_hostile.py::test_a_run_that_lands_almost_nothing_fails",
    EXIT_LOCKED: "tests/test_resolve.py::test_cli_second_run_exits_4",
    EXIT_ALERT: "tests/test_rotation.py::test_cli_alert_exits_5_loudly",
    EXIT_DB: "test_postgres_stopped_during_the_merge_exits_6 (below)",
    EXIT_INTERRUPTED: "test_a_second_ctrl_c_exits_130 (below)",
}


def run_cli(args: tuple[str, ...], env: dict[str, str], timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"} | env
    return subprocess.run([*CLI, *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_clean_error(proc: subprocess.CompletedProcess[str], says: str) -> None:
    # Ours say `error:`; click's usage errors say `Error:` after the usage line.
    errors = [line for line in proc.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert says in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for secret in SECRETS:
        assert secret[:4] not in proc.stderr + proc.stdout, secret[:4]


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with StandIn(StandInConfig(api_key=KEY)) as server:
        yield server


@pytest.fixture(scope="module")
def databases(make_database: Callable[[], Database], server: Database
              ) -> Iterator[dict[str, str]]:
    empty = make_database()
    migrated = make_database()
    migrate.apply(migrated)
    role = f"li_read_only_{uuid.uuid4().hex[:8]}"
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
    with migrated.connect(autocommit=True) as conn:
        for schema in ("identity_loader", "wxyc_schema"):
            conn.execute(sql.SQL("grant usage on schema {0} to {1}; "
                                 "grant select on all tables in schema {0} to {1}").format(
                sql.Identifier(schema), sql.Identifier(role)))
    read_only = psycopg.conninfo.make_conninfo(migrated.conninfo, user=role)
    yield {"unreachable": UNREACHABLE, "empty": empty.conninfo, "migrated": migrated.conninfo,
           "read_only": read_only,
           "no_role": psycopg.conninfo.make_conninfo(migrated.conninfo, user="no_such_role")}
    with migrated.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


@pytest.mark.parametrize(("case", "args", "env", "database", "code", "says"), CASES,
                         ids=[c[0] for c in CASES])
def test_exit_code(case: str, args: tuple[str, ...], env: dict[str, str], database: str,
                   code: int, says: str, databases: dict[str, str], standin: StandIn) -> None:
    environ = {"DATABASE_URL": databases[database], "LML_URL": standin.url,
               "LML_API_KEY": KEY, **env}
    proc = run_cli(args, environ)
    assert proc.returncode == code, proc.stderr
    if code != EXIT_OK:
        assert_one_clean_error(proc, says)


def test_the_readme_table_lists_exactly_these_codes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Exit codes", 1)[1].split("\n\n", 2)[1]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    covered = {c[4] for c in CASES} | set(ELSEWHERE)
    assert documented == covered == {EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_LML, EXIT_LOCKED,
                                     EXIT_ALERT, EXIT_DB, EXIT_INTERRUPTED}


# -- the two that need a run in progress --------------------------------------------------
@pytest.fixture
def seeded(make_database: Callable[[], Database]) -> Database:
    db = make_database()
    migrate.apply(db)
    with db.connect() as conn:
        seed_library(conn, 300)
    return db


@pytest.mark.slow
def test_a_second_ctrl_c_exits_130(seeded: Database, standin: StandIn) -> None:
    standin.config.latency_ms = 4000  # the first batch is still in flight at both signals
    standin.clear_log()
    try:
        proc = subprocess.Popen(
            [*CLI, *RESOLVE, "--batch-size", "20",
             "--va-batch-size", "20"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "DATABASE_URL": seeded.conninfo,
                            "LML_URL": standin.url, "LML_API_KEY": KEY})
        deadline = time.monotonic() + 120
        # The start-up probe, then the first batch (logged on arrival, before its latency).
        while len([r for r in standin.requests if r.path.endswith("libraries")]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        standin.config.latency_ms = 0
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert_one_clean_error(subprocess.CompletedProcess([], proc.returncode, out, err),
                           "interrupted")
    with seeded.connect() as conn:
        row = conn.execute("select status from identity_loader.runs").fetchone()
    assert row is not None and row[0] == "interrupted"


@pytest.fixture
def own_server() -> Iterator[tuple[Database, Path]]:
    """A server of the test's own, which the test may stop."""
    data_dir = ROOT / ".library-identity" / f"stop-{uuid.uuid4().hex[:8]}"
    db = start_embedded(data_dir)
    yield db, data_dir / "pgdata"
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
    time.sleep(1)
    subprocess.run(["rm", "-rf", str(data_dir)], check=False)


def test_postgres_stopped_during_the_merge_exits_6(own_server: tuple[Database, Path],
                                                   standin: StandIn) -> None:
    db, pgdata = own_server
    migrate.apply(db)
    with db.connect() as conn:
        seed_library(conn, 300)
    env = {"DATABASE_URL": db.conninfo, "LML_URL": standin.url, "LML_API_KEY": KEY}
    landed = run_cli((*RESOLVE, "--no-merge"), env)
    assert landed.returncode == 0, landed.stderr
    proc = subprocess.Popen([*CLI, "resolve", "--merge-only"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})
    deadline = time.monotonic() + 120
    while True:  # dbt is connected: the merge is under way
        with db.connect(autocommit=True) as conn:
            row = conn.execute("select count(*) from pg_stat_activity "
                               "where application_name like 'dbt%'").fetchone()
        if row and row[0]:
            break
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
        time.sleep(0.05)
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGINT)  # a fast shutdown: every session is ended
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_DB, err
    assert_one_clean_error(subprocess.CompletedProcess([], proc.returncode, out, err),
                           "database")


def dbt_waiting(db: Database) -> bool:
    with db.connect(autocommit=True) as conn:  # a fresh statistics snapshot each time
        row = conn.execute("select count(*) from pg_stat_activity where datname = "
                           "current_database() and application_name like 'dbt%' "
                           "and wait_event_type = 'Lock'").fetchone()
    return bool(row and row[0])


@pytest.mark.slow
def test_a_second_ctrl_c_during_the_candidate_build_exits_130(seeded: Database,
                                                               standin: StandIn) -> None:
    """dbt runs in-process and hands back every exception as its result's: a second Ctrl-C
    while it builds the candidates stops the command (exit 130), not a dbt failure."""
    with seeded.connect() as blocker:
        # The build waits on this lock: both signals reach the process while dbt runs.
        blocker.execute("lock table wxyc_schema.library in access exclusive mode")
        proc = subprocess.Popen(
            [*CLI, *RESOLVE], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "DATABASE_URL": seeded.conninfo,
                            "LML_URL": standin.url, "LML_API_KEY": KEY})
        deadline = time.monotonic() + 180
        while not dbt_waiting(seeded):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # the lock is still held: dbt did not finish
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert_one_clean_error(subprocess.CompletedProcess([], proc.returncode, out, err),
                           "interrupted")


# The command line loads in a tenth of a second; this one's loading is held for a while in
# the middle (a finder that sleeps when asked for the group's module), so the signal
# surely arrives while it is still importing.
SLOW_START = (sys.executable, "-c",
              "import sys, time\n"
              "class Slow:\n"
              "    @staticmethod\n"
              "    def find_spec(name, path=None, target=None):\n"
              "        if name == 'library_identity.cli.app':\n"
              "            time.sleep(20)\n"
              "sys.meta_path.insert(0, Slow)\n"
              "sys.argv = ['library-identity', '--help']\n"
              "from library_identity.__main__ import run\n"
              "run()\n")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_command_line_is_starting_exits_130_in_one_line(
        sig: signal.Signals) -> None:
    # The signal arrives while the command line is importing, once the entry point has
    # caught SIGTERM (which Python leaves uncaught until then: the process's caught-signals
    # mask shows the moment).
    proc = subprocess.Popen(SLOW_START, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "LIBRARY_IDENTITY_CONFIG": "/dev/null"})
    status = Path(f"/proc/{proc.pid}/status")
    deadline = time.monotonic() + 30
    while not _catches(status, signal.SIGTERM):
        assert proc.poll() is None and time.monotonic() < deadline, "no handler was installed"
        time.sleep(0.002)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == "error: interrupted while starting; nothing was done\n"
    assert out == ""


def _catches(status: Path, sig: signal.Signals) -> bool:
    """Whether the process whose /proc status this is has a handler for `sig`."""
    for line in status.read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False
