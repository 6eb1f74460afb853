"""The config file: what it may hold derives from the command line's options, a flag beats
the environment, which beats the file, which beats the default; a bad file stops every
command with exit 2 and one `error:` line naming the file and the key. Secrets come from
the environment or an owner-only secrets file. The demo refuses a configured target."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CLI, ROOT, STANDIN_KEY

from library_identity.cli import main
from library_identity.cli.config_file import CONFIG_ENV, SECRETS_FILE_ENV, every_key
from library_identity.db import Database

EXAMPLE = ROOT / "deploy" / "config.example.toml"
# What a shell may export that would point a command somewhere or configure it.
_SCRUBBED = ("DATABASE_URL", "LML_URL", "LML_API_KEY", "SENTRY_DSN", "SENTRY_ENVIRONMENT",
             "SENTRY_TRACES_SAMPLE_RATE", "SENTRY_NAMING", "LOG_FORMAT", CONFIG_ENV,
             SECRETS_FILE_ENV, "LIBRARY_IDENTITY_DATA_DIR", "LIBRARY_IDENTITY_KEEP_SERVER",
             "LIBRARY_IDENTITY_DBT_SCHEMA", "XDG_CONFIG_HOME")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment without anything a developer's shell exports, and a config
    home of its own (an empty one unless the test writes a file there)."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return env | extra


def _run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=_env(tmp_path, **extra), capture_output=True,
                          text=True, timeout=600, check=False)


def _invoke(tmp_path: Path, *args: str, **extra: str) -> Any:
    """In process, for the commands that stop before touching anything."""
    env: Mapping[str, str | None] = {k: None for k in _SCRUBBED} | {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **extra}
    return CliRunner().invoke(main, list(args), env=env)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


# -- stale_days, shared by resolve and report ---------------------------------------------
def _resolved_stale_days(db: Database) -> list[int]:
    with db.connect() as conn:
        return [row[0] for row in conn.execute(
            "select (options->>'stale_days')::int from identity_loader.runs "
            "where job = 'resolve' order by started_at")]


def _reported_stale_days(proc: subprocess.CompletedProcess[str]) -> set[int]:
    assert proc.returncode == 0, proc.stderr
    return {row["stale_days"] for row in json.loads(proc.stdout)["identity_age"]}


def _job_env(tmp_path: Path, db: Database, config: Path) -> dict[str, str]:
    return {"DATABASE_URL": db.conninfo, "LML_API_KEY": STANDIN_KEY, CONFIG_ENV: str(config)}


@pytest.mark.slow
def test_stale_days_in_the_file_reaches_resolve_and_report(
        migrated_db: Database, standin: Any, tmp_path: Path) -> None:
    config = _write(tmp_path / "config.toml",
                    f'lml_url = "{standin.url}"\nstale_days = 11\n')
    env = _job_env(tmp_path, migrated_db, config)
    resolved = _run(tmp_path, "resolve", "--no-merge", "--no-progress", "--json", **env)
    assert resolved.returncode == 0, resolved.stderr
    assert _resolved_stale_days(migrated_db) == [11]
    reported = _run(tmp_path, "report", "--format", "json", "--section", "identity_age", **env)
    assert _reported_stale_days(reported) == {11}


@pytest.mark.slow
def test_a_flag_beats_the_file(migrated_db: Database, standin: Any, tmp_path: Path) -> None:
    config = _write(tmp_path / "config.toml",
                    f'lml_url = "{standin.url}"\nstale_days = 11\n')
    env = _job_env(tmp_path, migrated_db, config)
    resolved = _run(tmp_path, "resolve", "--stale-days", "3", "--no-merge", "--no-progress",
                    "--json", **env)
    assert resolved.returncode == 0, resolved.stderr
    assert _resolved_stale_days(migrated_db) == [3]
    reported = _run(tmp_path, "report", "--stale-days", "4", "--format", "json",
                    "--section", "identity_age", **env)
    assert _reported_stale_days(reported) == {4}


# -- precedence and location (grants prints the database it was given; connects nowhere) --
def _granted_database(result: Any) -> str:
    assert result.exit_code == 0, result.output
    match = re.search(r"on database (\S+) to", result.output)
    assert match, result.output
    return match.group(1)


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    config = str(_write(tmp_path / "c.toml", 'database_url = "postgresql://u@h/from_file"\n'))
    env_url = "postgresql://u@h/from_env"
    assert _granted_database(_invoke(tmp_path, "grants", "r")) == "postgres"
    assert _granted_database(_invoke(tmp_path, "--config", config, "grants", "r")) == "from_file"
    assert _granted_database(_invoke(tmp_path, "--config", config, "grants", "r",
                                     DATABASE_URL=env_url)) == "from_env"
    assert _granted_database(_invoke(
        tmp_path, "--config", config, "--database-url", "postgresql://u@h/from_flag",
        "grants", "r", DATABASE_URL=env_url)) == "from_flag"
    # A command's own table: the file beats the default, the flag beats the file.
    _write(tmp_path / "c.toml", '[grants]\ndatabase = "from_table"\n')
    assert _granted_database(_invoke(tmp_path, "--config", config, "grants", "r")) == \
        "from_table"
    assert _granted_database(_invoke(tmp_path, "--config", config, "grants", "r",
                                     "--database", "x")) == "x"


def test_the_dbt_schema_from_the_file_reaches_dbt_and_the_grants(tmp_path: Path) -> None:
    # A subprocess: the setting is handed on through the process's environment.
    config = _write(tmp_path / "c.toml", 'dbt_schema = "station_identity"\n')
    proc = _run(tmp_path, "--config", str(config), "grants", "r")
    assert proc.returncode == 0, proc.stderr
    assert "create schema if not exists station_identity authorization r;" in proc.stdout


def test_a_commands_own_setting_takes_the_same_order(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """[rotation.backfill] quiet_pause against BACKFILL_QUIET_PAUSE_SECONDS and the flag."""
    from click.core import ParameterSource

    config = _write(tmp_path / "c.toml", "[rotation.backfill]\nquiet_pause = 5\n")
    monkeypatch.delenv("BACKFILL_QUIET_PAUSE_SECONDS", raising=False)

    def quiet_pause(*flags: str) -> tuple[float, ParameterSource | None]:
        root = main.make_context("library-identity", ["--config", str(config), "rotation",
                                                      "backfill", *flags])
        rotation = main.commands["rotation"]  # type: ignore[attr-defined]
        group = rotation.make_context("rotation", ["backfill", *flags], parent=root)
        backfill = rotation.commands["backfill"].make_context("backfill", list(flags),
                                                              parent=group)
        return (backfill.params["quiet_pause_s"],
                backfill.get_parameter_source("quiet_pause_s"))

    assert quiet_pause() == (5.0, ParameterSource.DEFAULT_MAP)
    monkeypatch.setenv("BACKFILL_QUIET_PAUSE_SECONDS", "7")
    assert quiet_pause() == (7.0, ParameterSource.ENVIRONMENT)
    assert quiet_pause("--quiet-pause", "9") == (9.0, ParameterSource.COMMANDLINE)
    _write(config, "")
    monkeypatch.delenv("BACKFILL_QUIET_PAUSE_SECONDS")
    assert quiet_pause() == (30.0, ParameterSource.DEFAULT)


def test_the_default_location_is_read_only_when_it_exists(tmp_path: Path) -> None:
    assert _granted_database(_invoke(tmp_path, "grants", "r")) == "postgres"
    _write(tmp_path / "xdg" / "library-identity" / "config.toml",
           'database_url = "postgresql://u@h/from_default_file"\n')
    assert _granted_database(_invoke(tmp_path, "grants", "r")) == "from_default_file"
    # The environment variable names another file; /dev/null is no settings at all.
    other = _write(tmp_path / "other.toml", 'database_url = "postgresql://u@h/other"\n')
    assert _granted_database(_invoke(tmp_path, "grants", "r", **{CONFIG_ENV: str(other)})) \
        == "other"
    assert _granted_database(_invoke(tmp_path, "--config", os.devnull, "grants", "r")) == \
        "postgres"


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = _invoke(tmp_path, "--config", str(missing), "grants", "r")
    assert result.exit_code == 2
    assert f"error: {missing}: cannot read the config file" in result.output


# -- bad files ------------------------------------------------------------------------------
BAD = [
    # (file, the key the message names, what it says)
    ("stale_days = 0\n", "stale_days", "must be at least 1, got 0"),
    ("stale_days = 3.5\n", "stale_days", "must be an integer, got 3.5"),
    ('stale_days = "7"\n', "stale_days", "must be an integer, got '7' (a string)"),
    ("[resolve]\nbatch_size = 1001\n", "[resolve] batch_size",
     "must be between 1 and 1000 (LML's cap), got 1001"),
    ("[rotation.backfill]\nquiet_pause = 0.5\n", "[rotation.backfill] quiet_pause",
     "must be at least 1, got 0.5"),
    ("[rotation.refresh]\ntimeout = true\n", "[rotation.refresh] timeout",
     "must be a number, got True"),
    ("sentry_traces_sample_rate = 1.5\n", "sentry_traces_sample_rate", "is not in the range"),
    ('log_format = "xml"\n', "log_format", "'xml' is not one of 'text', 'json'"),
    ('[resolve]\ncohort = "va"\n', "[resolve] cohort", "must be a list of strings"),
    ('lml_url = "ftp://lml.example"\n', "lml_url", "must be an http:// or https:// URL"),
    ("[resolve]\nstale_dayz = 3\n", "[resolve] stale_dayz",
     "not a setting of resolve (did you mean stale_days?)"),
    ("[resolv]\nmode = 'full'\n", "resolv", "not a setting or command (did you mean resolve?)"),
    ("[resolve]\nstale_days = 3\n", "[resolve] stale_days",
     "is shared by resolve and report: set it once at the top level"),
    ("[resolve]\ndry_run = true\n", "[resolve] dry_run",
     "--dry-run is chosen on the command line"),
    ("[demo]\nuse_configured = true\n", "[demo] use_configured",
     "--use-configured is chosen on the command line"),
    ('lml_api_key = "abcdef123456"\n', "lml_api_key", "is a secret"),
    ('database_url = "postgresql://u:hunter2pw@h/db"\n', "database_url", "holds a password"),
    ("resolve = 3\n", "resolve", "must be a table"),
]


@pytest.mark.parametrize(("text", "key", "says"), BAD)
def test_a_bad_value_exits_2_naming_the_file_and_the_key(
        tmp_path: Path, text: str, key: str, says: str) -> None:
    config = _write(tmp_path / "config.toml", text)
    # Any command refuses it (the whole file is checked), before touching anything.
    result = _invoke(tmp_path, "--config", str(config), "grants", "r")
    assert result.exit_code == 2, result.output
    line = _one_error(result.output)
    assert line.startswith(f"error: {config}: {key}: "), line
    assert says in line
    for secret in ("abcdef123456", "hunter2pw"):
        assert secret not in result.output


def test_a_bad_value_is_refused_with_the_flags_message(tmp_path: Path) -> None:
    config = _write(tmp_path / "config.toml", "[resolve]\nmax_attempts = 0\n")
    from_file = _one_error(_invoke(tmp_path, "--config", str(config), "resolve").output)
    from_flag = _invoke(tmp_path, "resolve", "--max-attempts", "0")
    assert from_flag.exit_code == 2
    message = from_file.split(": [resolve] max_attempts: ", 1)[1]
    assert message in from_flag.output


def test_malformed_toml_exits_2(tmp_path: Path) -> None:
    config = _write(tmp_path / "config.toml", "stale_days = 7\n[resolve\nmode = 'full'\n")
    proc = _run(tmp_path, "--config", str(config), "resolve")
    assert proc.returncode == 2
    line = _one_error(proc.stderr)
    assert line.startswith(f"error: {config}: not valid TOML"), line
    assert "line 2" in line


# -- secrets ----------------------------------------------------------------------------------
SECRET_URL = "postgresql://role:s3cret-pw-771@127.0.0.1:1/from_secrets"


def test_a_secrets_file_others_can_read_is_refused(tmp_path: Path) -> None:
    secrets_file = _write(tmp_path / "secrets.toml", f'database_url = "{SECRET_URL}"\n')
    config = _write(tmp_path / "config.toml", 'secrets_file = "secrets.toml"\n')
    for mode in (0o644, 0o640, 0o604):
        secrets_file.chmod(mode)
        result = _invoke(tmp_path, "--config", str(config), "grants", "r")
        assert result.exit_code == 2
        line = _one_error(result.output)
        assert line.startswith(f"error: {secrets_file}: the secrets file must be readable by "
                               "its owner only"), line
        assert f"chmod 600 {secrets_file}" in line
        assert "s3cret-pw-771" not in result.output


def test_secrets_come_from_an_owner_only_file_and_are_never_printed(tmp_path: Path) -> None:
    secrets_file = _write(tmp_path / "secrets.toml", f'database_url = "{SECRET_URL}"\n')
    secrets_file.chmod(0o600)
    config = _write(tmp_path / "config.toml", 'secrets_file = "secrets.toml"\n')
    assert _granted_database(_invoke(tmp_path, "--config", str(config), "grants", "r")) == \
        "from_secrets"
    # Named by the environment, without a config file; the environment's URL beats it.
    by_env = {SECRETS_FILE_ENV: str(secrets_file)}
    assert _granted_database(_invoke(tmp_path, "grants", "r", **by_env)) == "from_secrets"
    assert _granted_database(_invoke(tmp_path, "grants", "r", **by_env,
                                     DATABASE_URL="postgresql://u@h/env")) == "env"
    # A command that fails to connect names the database, never the password.
    proc = _run(tmp_path, "migrate", **by_env)
    assert proc.returncode == 6, proc.stderr
    assert "from_secrets@127.0.0.1:1" in _one_error(proc.stderr)
    assert "s3cret-pw-771" not in proc.stderr + proc.stdout


def test_a_secrets_file_holds_secrets_only(tmp_path: Path) -> None:
    secrets_file = _write(tmp_path / "secrets.toml", 'lml_api_key = "k-123456789"\n'
                                                     'stale_days = 3\n')
    secrets_file.chmod(0o600)
    result = _invoke(tmp_path, "grants", "r", **{SECRETS_FILE_ENV: str(secrets_file)})
    assert result.exit_code == 2
    assert _one_error(result.output).startswith(f"error: {secrets_file}: stale_days: not a secret")
    assert "k-123456789" not in result.output


# -- the annotated example ------------------------------------------------------------------
_COMMENTED_SETTING = re.compile(r"^# ([a-z_]+ = .*)$")


def _dotted(table: Mapping[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in table.items():
        if isinstance(value, dict):
            keys |= _dotted(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_the_example_parses_and_names_every_setting(tmp_path: Path) -> None:
    """As shipped, and with every `# key = value` line uncommented: each key is a real
    setting with a valid value, and every setting has its line."""
    text = EXAMPLE.read_text(encoding="utf-8")
    uncommented = "\n".join(_COMMENTED_SETTING.sub(r"\1", line) for line in text.splitlines())
    # The secrets file it names is the station's; a test one (owner-only, empty) stands in.
    secrets_file = _write(tmp_path / "secrets.toml", "")
    secrets_file.chmod(0o600)
    for name, body in (("shipped.toml", text), ("uncommented.toml", uncommented)):
        config = _write(tmp_path / name, body)
        result = _invoke(tmp_path, "--config", str(config), "grants", "r",
                         **{SECRETS_FILE_ENV: str(secrets_file)})
        assert result.exit_code == 0, result.output
    keys = _dotted(tomllib.loads(uncommented))
    assert keys <= every_key(main)
    missing = sorted(every_key(main) - keys)
    assert not missing, f"add these settings to {EXAMPLE.relative_to(ROOT)}: {missing}"


# -- the demo -------------------------------------------------------------------------------
def _user_relations(db: Database) -> tuple[list[str], int]:
    with db.connect() as conn:
        schemas = [row[0] for row in conn.execute(
            "select nspname from pg_namespace where nspname not like 'pg\\_%' "
            "and nspname not in ('information_schema', 'public') order by 1")]
        relations = conn.execute(
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'"
        ).fetchone()
    return schemas, int(relations[0]) if relations else 0


def test_the_demo_refuses_a_configured_database_and_leaves_it_empty(
        empty_db: Database, tmp_path: Path) -> None:
    proc = _run(tmp_path, "demo", "--rows", "50", DATABASE_URL=empty_db.conninfo)
    assert proc.returncode == 2, proc.stderr
    line = _one_error(proc.stderr)
    assert "DATABASE_URL is set (by the environment)" in line
    assert "--use-configured" in line
    assert "env -u DATABASE_URL library-identity demo" in line
    assert _user_relations(empty_db) == ([], 0)


def test_the_demo_refuses_an_lml_from_the_config_file(tmp_path: Path) -> None:
    config = _write(tmp_path / "config.toml", 'lml_url = "https://lml.example"\n')
    result = _invoke(tmp_path, "--config", str(config), "demo")
    assert result.exit_code == 2
    line = _one_error(result.output)
    assert f"LML_URL is set (by the config file {config})" in line
    assert "library-identity --config /dev/null demo" in line


def test_scripts_demo_refuses_an_exported_database_before_installing(tmp_path: Path) -> None:
    proc = subprocess.run([str(ROOT / "scripts" / "demo")], capture_output=True, text=True,
                          env=_env(tmp_path, DATABASE_URL="postgresql://u@h/station"),
                          timeout=60, check=False)
    assert proc.returncode == 2
    assert "exports DATABASE_URL or LML_URL" in proc.stderr
    assert "env -u DATABASE_URL -u LML_URL scripts/demo" in proc.stderr


@pytest.mark.slow
def test_the_demo_with_use_configured_names_the_database_before_writing(
        empty_db: Database, tmp_path: Path) -> None:
    proc = _run(tmp_path, "demo", "--use-configured", "--rows", "300", "--html",
                str(tmp_path / "report.html"), DATABASE_URL=empty_db.conninfo)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    named = lines.index(f"demo: writes to the database {empty_db.describe()}")
    assert lines[named + 1].startswith("demo: calls LML at http://127.0.0.1:")
    seeded = next(i for i, line in enumerate(lines) if line.startswith("seeded "))
    assert named < seeded
    with empty_db.connect() as conn:
        assert conn.execute("select count(*) from wxyc_schema.library").fetchone() == (300,)
