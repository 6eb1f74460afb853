"""The nightly recipe in deploy/: the systemd units are well formed, every command and flag
the units, the cron line and the script name exists, and the script maps the night's exit
codes (4 skipped quietly, 5 an alert, anything else a failure) running the real jobs."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from conftest import STANDIN_KEY

from library_identity import migrate
from library_identity.cli import main
from library_identity.db import Database
from library_identity.demo.seed import seed_library
from library_identity.demo.standin.refresh import refresh_item
from library_identity.demo.standin.server import StandIn
from library_identity.errors import EXIT_ALERT, EXIT_DB, EXIT_LOCKED
from library_identity.jobs.lock import LOCK_KEYS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SERVICE = DEPLOY / "library-identity-nightly.service"
TIMER = DEPLOY / "library-identity-nightly.timer"
CRONTAB = DEPLOY / "crontab"
SCRIPT = DEPLOY / "nightly"
INSTALLED_SCRIPT = "library-identity-nightly"  # the name the README installs it under


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser


def test_the_units_have_the_keys_a_nightly_oneshot_needs() -> None:
    service, timer = unit(SERVICE), unit(TIMER)
    assert service.sections() == ["Unit", "Service"]
    assert service["Unit"]["Description"]
    run = service["Service"]
    assert run["Type"] == "oneshot"
    assert run["User"] not in ("", "root") and run["Group"] not in ("", "root")
    assert run["ExecStart"].split()[0].endswith("/" + INSTALLED_SCRIPT)
    assert run["EnvironmentFile"].startswith("/etc/")
    assert run["NoNewPrivileges"] == "yes" and run["ProtectSystem"] == "strict"
    assert timer.sections() == ["Unit", "Timer", "Install"]
    assert timer["Timer"]["OnCalendar"]
    assert timer["Timer"]["Unit"] == SERVICE.name
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not on this machine; the INI checks above ran")
def test_systemd_verifies_the_units(tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point it at the script in this checkout.
    service = SERVICE.read_text(encoding="utf-8")
    exec_start = unit(SERVICE)["Service"]["ExecStart"].split()[0]
    (tmp_path / SERVICE.name).write_text(service.replace(exec_start, str(SCRIPT)),
                                         encoding="utf-8")
    shutil.copy(TIMER, tmp_path / TIMER.name)
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", TIMER.name, SERVICE.name],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # Unknown keys and unparsable values are only warnings: none may be printed.
    assert not proc.stderr.strip() and not proc.stdout.strip(), proc.stderr
    calendar = unit(TIMER)["Timer"]["OnCalendar"]
    proc = subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def script_steps() -> list[list[str]]:
    """The CLI invocations of deploy/nightly: its `step …` lines."""
    steps = []
    for line in SCRIPT.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "step":
            steps.append(words[1:])
    return steps


def commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at && || ; |), without the variable
    assignments before each and the redirections in it."""
    out: list[list[str]] = [[]]
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    for word in lexer:
        if word in ("&&", "||", ";", "|", "&"):
            out.append([])
        elif word.startswith((">", "<")) or (out[-1] and out[-1][-1] in (">>", ">", "2>&1")):
            continue
        elif not out[-1] and "=" in word and not word.startswith("-"):
            continue  # KEY=value before the program
        else:
            out[-1].append(word)
    return [c for c in out if c and not c[0].startswith(("2>", ">"))]


def cli_invocations(lines: list[str]) -> list[list[str]]:
    """Any `library-identity …` command these command lines run directly."""
    return [words[1:] for line in lines for words in commands(line)
            if Path(words[0]).name == "library-identity"]


def cron_commands() -> list[str]:
    entries = [line for line in CRONTAB.read_text(encoding="utf-8").splitlines()
               if line and not line.startswith("#") and "=" not in line.split()[0]]
    return [entry.split(None, 6)[6] for entry in entries]


def assert_exists(args: list[str]) -> None:
    """Every command and option in `args` exists in the CLI's command tree."""
    command: click.Command = main
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, f"no command {name!r} in {args}"
        command = command.commands[name]
    assert not isinstance(command, click.Group), f"{args} names a group, not a command"
    options = {opt: param for param in command.params if isinstance(param, click.Option)
               for opt in (*param.opts, *param.secondary_opts)}
    while rest:
        word = rest.pop(0)
        assert word.startswith("--"), f"unexpected argument {word!r} in {args}"
        flag = word.split("=", 1)[0]
        assert flag in options, f"{args[0]} has no option {flag}"
        if not options[flag].is_flag and "=" not in word:
            assert rest, f"{flag} needs a value in {args}"
            rest.pop(0)


def test_every_command_and_flag_the_recipe_names_exists() -> None:
    steps = script_steps()
    assert [s[:2] if s[0] == "rotation" else s[:1] for s in steps] == [
        ["resolve"], ["rotation", "backfill"], ["rotation", "refresh"], ["report"]]
    for step in steps:
        assert_exists(step)
    exec_lines = [value for key, value in unit(SERVICE)["Service"].items()
                  if key.startswith("Exec")]
    for invocation in cli_invocations(exec_lines + cron_commands()):
        assert_exists(invocation)
    # The unit and the cron line both run the script, under the name the README installs.
    assert Path(unit(SERVICE)["Service"]["ExecStart"].split()[0]).name == INSTALLED_SCRIPT
    cron = [line for line in CRONTAB.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#") and "=" not in line.split()[0]]
    assert len(cron) == 1
    fields = cron[0].split(None, 6)
    assert fields[5] not in ("root", "")  # /etc/cron.d format: the user comes sixth
    assert [Path(c[0]).name for c in commands(fields[6])] == ["cd", INSTALLED_SCRIPT]
    # The codes the script maps are the ones the CLI means.
    text = SCRIPT.read_text(encoding="utf-8")
    assert EXIT_LOCKED == 4 and EXIT_ALERT == 5
    assert "4) say \"skipped" in text and "5) say \"ALERT" in text


# -- the script, running the real jobs ----------------------------------------------------
@pytest.fixture
def seeded(make_database: Callable[[], Database]) -> Database:
    db = make_database()
    migrate.apply(db)
    stale = next(i for i in range(1, 100_000) if refresh_item(i)["status"] == "not_found")
    with db.connect() as conn:
        seed_library(conn, 600)
        # One handle in the active rotation LML no longer knows: the refresh alert.
        conn.execute("update wxyc_schema.rotation set lml_identity_id = %s where id = (select "
                     "min(id) from wxyc_schema.rotation where lml_identity_id is not null and "
                     "(kill_date is null or kill_date > current_date))", (stale,))
    return db


def night(tmp_path: Path, database_url: str, standin: StandIn
          ) -> subprocess.CompletedProcess[str]:
    cli = tmp_path / "library-identity"  # the real command line, as installed beside it
    cli.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m library_identity \"$@\"\n",
                   encoding="utf-8")
    cli.chmod(0o755)
    script = tmp_path / INSTALLED_SCRIPT
    shutil.copy(SCRIPT, script)
    env = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    env |= {"DATABASE_URL": database_url, "LML_URL": standin.url, "LML_API_KEY": STANDIN_KEY,
            "LIBRARY_IDENTITY_REPORT_HTML": str(tmp_path / "report.html"),
            "BACKFILL_QUIET_LOOKBACK_SECONDS": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_a_busy_lock_is_skipped_quietly_and_an_alert_is_exit_5(
        tmp_path: Path, seeded: Database, standin: StandIn) -> None:
    with seeded.connect(autocommit=True) as holder:  # a resolve still running
        holder.execute("select pg_advisory_lock(%s)", (LOCK_KEYS["resolve"],))
        proc = night(tmp_path, seeded.conninfo, standin)
    # The rotation holds a stale handle: the refresh raises its alert (exit 5).
    assert proc.returncode == EXIT_ALERT, proc.stderr
    assert "nightly: skipped resolve: another run holds its lock" in proc.stderr
    assert "ALERT from rotation refresh" in proc.stderr
    assert (tmp_path / "report.html").exists()  # the night went on to the report
    with seeded.connect() as conn:
        jobs = conn.execute("select job, status from identity_loader.runs order by started_at"
                            ).fetchall()
    assert jobs == [("rotation_backfill", "succeeded"), ("rotation_refresh", "alert")]
    assert proc.stderr.strip().splitlines()[-1] == "nightly: done, with an alert (exit 5)"


def test_a_failed_step_stops_the_night_with_its_code(tmp_path: Path, standin: StandIn) -> None:
    proc = night(tmp_path, "postgresql://postgres@127.0.0.1:1/nowhere", standin)
    assert proc.returncode == EXIT_DB, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == "nightly: FAILED: resolve --no-progress exited 6; the night stops here"
    assert "Next: `library-identity doctor`" in lines[-2]
    assert "rotation backfill" not in proc.stderr
    assert not (tmp_path / "report.html").exists()
