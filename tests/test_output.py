"""Output a log can keep: a summary piped to a file holds every value whole, without
escape sequences; text from the data never reaches a terminal raw; log lines carry the run
id; and the last line of a failure says what was saved and what to run next."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import CLI, STANDIN_KEY

from library_identity import migrate, telemetry
from library_identity.db import Database
from library_identity.demo.seed import seed_library
from library_identity.demo.standin.server import StandIn
from library_identity.errors import EXIT_DB, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK
from library_identity.jobs.lock import LOCK_KEYS
from library_identity.report.page import COVERAGE_MEASURES

ROOT = Path(__file__).resolve().parent.parent
N_ROWS = 3000
# What makes rich cut and colour when it believes it writes to a narrow colour terminal.
NARROW_COLOUR = {"COLUMNS": "40", "FORCE_COLOR": "1", "TERM": "xterm-256color"}
INJECTED = "exact_match\x1b[31mRED\x1b[0m"
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere"


def env_for(db: Database | str, standin: StandIn, **extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    return environ | {"DATABASE_URL": db if isinstance(db, str) else db.conninfo,
                      "LML_URL": standin.url, "LML_API_KEY": STANDIN_KEY, **extra}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def assert_cell(out: str, value: int) -> None:
    """`value`, digits grouped, is a whole cell of a table in `out`."""
    assert re.search(rf"\|\s*{re.escape(f'{value:,}')}\s*\|", out), (value, out)


@pytest.fixture(scope="module")
def resolved(make_database: Callable[[], Database], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Database, subprocess.CompletedProcess[str]]]:
    """A seeded database resolved once, its summary piped to a file."""
    from library_identity.demo.standin.server import StandInConfig

    db = make_database()
    migrate.apply(db)
    with db.connect() as conn:
        seed_library(conn, N_ROWS)
    with StandIn(StandInConfig(api_key=STANDIN_KEY)) as standin:
        path = tmp_path_factory.mktemp("log") / "resolve.log"
        with path.open("w") as log:
            proc = subprocess.run([*CLI, "resolve", "--no-progress"], cwd=ROOT, text=True,
                                  env=env_for(db, standin, **NARROW_COLOUR), stdout=log,
                                  stderr=subprocess.PIPE, timeout=600)
        yield db, subprocess.CompletedProcess(proc.args, proc.returncode,
                                              path.read_text(), proc.stderr)


def test_a_resolve_summary_in_a_file_holds_every_value(
        resolved: tuple[Database, subprocess.CompletedProcess[str]]) -> None:
    db, proc = resolved
    assert proc.returncode == EXIT_OK, proc.stderr
    out = proc.stdout
    assert "\u2026" not in out and "..." not in out
    assert "\x1b" not in out
    with db.connect() as conn:
        row = conn.execute("select run_id, counters from identity_loader.runs").fetchone()
        merged = conn.execute("select (counts->>'identity_rows_written')::int, "
                              "(counts->>'compilation_track_rows_written')::int "
                              "from identity_loader.merges").fetchone()
    assert row is not None and merged is not None
    run_id, counters = row
    assert f"resolve run {run_id} " in out
    total = counters["total"]
    for value in (total["scanned"], total["rows_resolved"], total["rows_unresolved"],
                  total["rows_resolved_compilation"], total["source_rows_skipped_null_confidence"],
                  *counters["va"]["rows_skipped"].values(), *merged):
        assert_cell(out, value)


def test_every_log_line_of_the_run_carries_its_run_id(
        resolved: tuple[Database, subprocess.CompletedProcess[str]]) -> None:
    db, proc = resolved
    with db.connect() as conn:
        row = conn.execute("select run_id from identity_loader.runs").fetchone()
    assert row is not None
    job_lines = [line for line in proc.stderr.splitlines()
                 if " library_identity.resolve" in line]
    assert job_lines, proc.stderr
    for line in job_lines:
        assert f"job=resolve run_id={row[0]}" in line, line


def test_a_report_in_a_file_holds_every_value(
        resolved: tuple[Database, subprocess.CompletedProcess[str]], standin: StandIn) -> None:
    db, _ = resolved
    env = env_for(db, standin, **NARROW_COLOUR)
    as_json = cli(env, "report", "--format", "json")
    assert as_json.returncode == EXIT_OK, as_json.stderr
    report = json.loads(as_json.stdout)
    proc = cli(env, "report", "--no-refresh")
    assert proc.returncode == EXIT_OK, proc.stderr
    out = proc.stdout
    assert "\u2026" not in out and "\x1b" not in out
    with db.connect() as conn:
        rows = conn.execute("select count(*) from wxyc_schema.library").fetchone()
    assert rows is not None and rows[0] == N_ROWS
    assert_cell(out, N_ROWS)
    shown = [(row, [m for m, _ in COVERAGE_MEASURES]) for row in report["library_coverage"]]
    shown += [(row, ["scanned", "resolved", "resolved_compilation", "unresolved", "skipped"])
              for row in report["run_history"]]
    shown += [(row, ["identities", "stale_identities"]) for row in report["identity_age"]]
    values = [row[column] for row, columns in shown for column in columns
              if isinstance(row[column], int) and not isinstance(row[column], bool)]
    assert len(values) > 40
    for value in values:
        assert_cell(out, value)
    # The widest table, the run history, on one line per run.
    run_line = next(line for line in out.splitlines() if line.startswith("| #1 "))
    assert "succeeded" in run_line and f"{report['run_history'][0]['scanned']:,}" in run_line


@pytest.mark.slow
def test_a_stored_name_cannot_put_escape_sequences_on_the_terminal(
        resolved: tuple[Database, subprocess.CompletedProcess[str]],
        clone_database: Callable[[Database], Database], standin: StandIn) -> None:
    db = clone_database(resolved[0])
    with db.connect() as conn:  # another writer's identity row with a hostile method name
        conn.execute("update wxyc_schema.library_identity set method = %s, notes = 'librarian' "
                     "where library_id = (select min(library_id) "
                     "from wxyc_schema.library_identity)", (INJECTED,))
    env = env_for(db, standin, COLUMNS="300", TERM="xterm-256color")
    main, child = pty.openpty()  # a real terminal: rich styles its own output
    proc = subprocess.Popen([*CLI, "report"], cwd=ROOT, env=env, stdout=child,
                            stderr=subprocess.PIPE, text=False)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_OK, err
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in shown  # the terminal got rich's own styling...
    assert INJECTED not in shown and "\x1b[31mRED" not in shown  # ...but not the data's
    assert "exact_match\\x1b[31mRED\\x1b[0m" in shown


# -- the last line of a failure -----------------------------------------------------------
def last_error(proc: subprocess.CompletedProcess[str]) -> str:
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1
    return last


def test_lock_busy_says_nothing_was_saved_and_what_to_do(
        resolved: tuple[Database, subprocess.CompletedProcess[str]], standin: StandIn) -> None:
    db, _ = resolved
    with db.connect(autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (LOCK_KEYS["resolve"],))
        proc = cli(env_for(db, standin), "resolve", "--no-progress")
    assert proc.returncode == EXIT_LOCKED, proc.stderr
    last = last_error(proc)
    assert "another resolve run is in progress" in last
    assert last.endswith("Saved: nothing: this run did not start. Next: nothing: the run in "
                         "progress carries on; run `library-identity resolve` again after it, "
                         "if needed.")


def test_database_down_names_the_command_to_run_again(standin: StandIn) -> None:
    proc = cli(env_for(UNREACHABLE, standin), "rotation", "backfill")
    assert proc.returncode == EXIT_DB, proc.stderr
    assert last_error(proc).endswith(
        "Saved: nothing was written. Next: `library-identity doctor` says what the database "
        "lacks; run `library-identity rotation backfill` again once it passes.")


@pytest.mark.slow
def test_ctrl_c_says_which_run_kept_what(
        resolved: tuple[Database, subprocess.CompletedProcess[str]],
        clone_database: Callable[[Database], Database], standin: StandIn) -> None:
    db = clone_database(resolved[0])
    standin.config.latency_ms = 1500
    standin.clear_log()
    try:
        proc = subprocess.Popen([*CLI, "resolve", "--no-progress", "--mode", "recheck",
                                 "--batch-size", "50", "--va-batch-size", "50"], cwd=ROOT,
                                env=env_for(db, standin), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len([r for r in standin.requests if r.path.endswith("libraries")]) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        standin.config.latency_ms = 0
    assert proc.returncode == EXIT_INTERRUPTED, err
    with db.connect() as conn:
        row = conn.execute("select run_id from identity_loader.runs where status = "
                           "'interrupted'").fetchone()
    assert row is not None
    last = last_error(subprocess.CompletedProcess([], proc.returncode, out, err))
    assert last.endswith(f"Saved: run {row[0]} is recorded as interrupted, with everything "
                         "it landed. Next: run `library-identity resolve` again: it carries "
                         "on with what was not landed yet.")


def test_log_lines_carry_the_run_and_show_control_characters() -> None:
    record = logging.LogRecord("library_identity.resolve", logging.WARNING, __file__, 1,
                               "lml_error error=%s", ("LML said \x1b[2Jbye\x07",), None)
    telemetry.set_run("resolve", "5b95b05e")
    try:
        text = telemetry.ScrubbingFormatter(fmt_json=False).format(record)
        entry = json.loads(telemetry.ScrubbingFormatter(fmt_json=True).format(record))
    finally:
        telemetry.set_run(None, None)
    assert text.endswith("lml_error error=LML said \\x1b[2Jbye\\x07 job=resolve run_id=5b95b05e")
    assert entry["job"] == "resolve" and entry["run_id"] == "5b95b05e"
    assert "run_id" not in telemetry.ScrubbingFormatter(fmt_json=False).format(record)
