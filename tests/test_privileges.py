"""The whole flow as a least-privilege role on a station database, and the preflight.

The station database here is what the project finds on a station: the station's tables
(with their watermark and change-notification triggers) and data, owned by another role,
nothing of the project's, and nothing granted to PUBLIC (no CONNECT or TEMPORARY on the
database, no CREATE or USAGE on schema public, no EXECUTE on the station's functions), so
every line `grants` prints has to carry its weight. A fresh login role gets exactly what
`grants` prints (run by the superuser, as a DBA would) and then runs every command itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import station as station_file
from conftest import CLI, STANDIN_KEY
from psycopg import sql

from library_identity import dbt_names, migrate
from library_identity.db import Database
from library_identity.demo.seed import seed_library
from library_identity.demo.standin.server import StandIn
from library_identity.errors import ConfigurationError
from library_identity.privileges import grants_sql, privileges, quote_ident, takeover_sql

ROOT = Path(__file__).resolve().parent.parent
N_ROWS = 3000
# One test id per grant line: its label, e.g. "SELECT on wxyc_schema.library".
LABELS = [p.label() for p in privileges()]
# What a job may write; each must be untouched when a job refuses to start.
WRITTEN = {
    "library_identity": "select count(*) from wxyc_schema.library_identity",
    "library_identity_source": "select count(*) from wxyc_schema.library_identity_source",
    "library_identity_history": "select count(*) from wxyc_schema.library_identity_history",
    "linked tracks": "select count(*) from wxyc_schema.compilation_track_artist "
                     "where track_artist_id is not null",
    "no-match stamps": "select count(unresolved_attempted_at) from wxyc_schema.library",
    "rotation identities": "select count(lml_identity_id) from wxyc_schema.rotation",
    "watermark": "select last_modified_at::text from wxyc_schema.library_watermark",
    "runs": "select count(*) from identity_loader.runs",
    "raw verdicts": "select count(*) from identity_loader.raw_verdicts",
}
# Read when the snapshot is taken: LIBRARY_IDENTITY_DBT_SCHEMA names dbt's schema.
DBT_RELATIONS = ("select count(*) from pg_class c join pg_namespace n "
                 "on n.oid = c.relnamespace where n.nspname = %s")


@pytest.fixture(scope="module")
def station(station_schema: Database | None, make_database: Callable[[], Database],
            clone_database: Callable[[Database], Database]) -> Database:
    """Station tables, triggers and data owned by the superuser; no project objects. Built
    from the station's own schema when the server can hold it."""
    if station_schema is not None:
        db = clone_database(station_schema)
        with db.connect() as conn:
            station_file.seed_sample(conn, N_ROWS)
    else:
        db = make_database()
        migrate.apply(db)
        with db.connect() as conn:
            seed_library(conn, N_ROWS)
    with db.connect(autocommit=True) as conn:
        assert conn.execute("select count(*) from pg_trigger where tgrelid = "
                            "'wxyc_schema.library'::regclass and not tgisinternal"
                            ).fetchone()[0] >= 2, "the station's triggers are not installed"
        conn.execute("drop schema if exists identity_loader cascade")
        conn.execute("drop schema if exists identity cascade")
        conn.execute("revoke all on schema public from public")
        conn.execute("revoke execute on all functions in schema wxyc_schema from public")
    return db


@dataclass
class Role:
    """A fresh login role on the test server, and the databases it was granted on."""

    name: str
    server: Database
    used: list[Database] = field(default_factory=list)

    def station_copy(self, station: Database, clone: Callable[[Database], Database],
                     skip: str | None = None) -> Database:
        """A copy of the station with every grant line but the one labelled `skip`
        applied by the superuser; returns the copy as seen by the role."""
        db = clone(station)
        self.used.append(db)
        dbname = db.params["dbname"]
        script = grants_sql(self.name, dbname).splitlines()
        if skip is not None:
            del script[LABELS.index(skip)]
        with db.connect(autocommit=True) as conn:
            # Database privileges are not copied with a template.
            conn.execute(sql.SQL("revoke all on database {} from public").format(
                sql.Identifier(dbname)))
            for line in script:
                conn.execute(line.encode())
        return self.as_role(db)

    def as_role(self, db: Database) -> Database:
        params = db.params | {"user": self.name}
        params.pop("password", None)
        return Database(conninfo=psycopg.conninfo.make_conninfo(**params), embedded=False)


@pytest.fixture(scope="module")
def role(server: Database) -> Iterator[Role]:
    name = f"li_role_{uuid.uuid4().hex[:10]}"
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(name)))
    r = Role(name, server)
    yield r
    for db in r.used:
        with psycopg.connect(db.conninfo, autocommit=True) as conn:
            # Cascade: a schema of the role's may hold another role's tables.
            conn.execute(sql.SQL("drop owned by {} cascade").format(sql.Identifier(name)))
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def superuser(db: Database, role: Role) -> Database:
    """The same database, as the test server's own user."""
    params = db.params | {"user": role.server.params.get("user", "postgres")}
    return Database(conninfo=psycopg.conninfo.make_conninfo(**params), embedded=False)


def cli(db: Database, standin: StandIn | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db.conninfo, "LML_API_KEY": STANDIN_KEY}
    env.pop("LML_URL", None)
    if standin is not None:
        env["LML_URL"] = standin.url
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def snapshot(db: Database) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with db.connect(autocommit=True) as conn:
        for name, query in WRITTEN.items():
            try:
                out[name] = conn.execute(query).fetchone()[0]  # type: ignore[index]
            except psycopg.errors.UndefinedTable:
                out[name] = None
        row = conn.execute(DBT_RELATIONS, (dbt_names.schema(),)).fetchone()
        out["dbt relations"] = row[0] if row else None
    return out


def scalar(db: Database, query: str) -> Any:
    with db.connect(autocommit=True) as conn:
        return conn.execute(query).fetchone()[0]  # type: ignore[index]


# -- the whole flow ----------------------------------------------------------------------
def test_every_command_runs_as_the_role_with_exactly_the_grants(
        station: Database, role: Role, clone_database: Callable[[Database], Database],
        standin: StandIn) -> None:
    db = role.station_copy(station, clone_database)
    owner = superuser(db, role)
    assert scalar(db, "select current_user") == role.name
    assert not scalar(db, "select rolsuper from pg_roles where rolname = current_user")

    done = cli(db, None, "migrate")
    assert done.returncode == 0, done.stderr

    doctor = cli(db, standin, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "FAIL" not in doctor.stdout
    assert re.search(r"all \d+ checks passed", doctor.stdout)
    watermark = scalar(owner, "select last_modified_at from wxyc_schema.library_watermark")

    resolved = cli(db, standin, "resolve", "--no-progress")
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert "merge and gates: passed" in resolved.stdout
    again = cli(db, standin, "resolve", "--no-progress")
    assert again.returncode == 0, again.stdout + again.stderr
    # Written as the role: identities, sources, links, stamps, and the run.
    assert scalar(owner, "select count(*) from wxyc_schema.library_identity") > 0
    assert scalar(owner, "select count(*) from wxyc_schema.library_identity_source") > 0
    assert scalar(owner, "select count(*) from wxyc_schema.compilation_track_artist "
                         "where track_artist_link_method = 'lml_backfill'") > 0
    assert scalar(owner, "select count(unresolved_attempted_at) from wxyc_schema.library") > 0
    assert scalar(owner, "select status from identity_loader.runs where job = 'resolve'"
                  ) == "succeeded"
    # Postgres skips ANALYZE of a table the role does not own with a warning; the merge
    # does not ask for it.
    assert "only table or database owner can analyze" not in resolved.stdout + resolved.stderr

    # Some stored identities now carry another method: replaying the verdict log
    # (merge --full-rebuild) archives each (history_id from the station's sequence) and
    # writes the verdict's method back.
    with owner.connect() as conn:
        conn.execute(
            "update wxyc_schema.library_identity set method = 'superseded_by_test' "
            "where library_id in (select library_id from wxyc_schema.library_identity "
            "order by 1 limit 25)")
    merged = cli(db, None, "merge", "--full-rebuild")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert scalar(owner, "select count(*) from wxyc_schema.library_identity_history "
                         "where method = 'superseded_by_test'") == 25
    assert scalar(owner, "select count(*) from wxyc_schema.library_identity "
                         "where method = 'superseded_by_test'") == 0

    missing = scalar(owner, "select count(*) from wxyc_schema.rotation where "
                            "(kill_date is null or kill_date > current_date) and "
                            "lml_identity_id is null and discogs_release_id is not null")
    assert missing > 0, "the sample needs rotation rows to backfill"
    backfill = cli(db, standin, "rotation", "backfill", "--requests-per-minute", "6000")
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    assert scalar(owner, "select count(*) from wxyc_schema.rotation where "
                         "(kill_date is null or kill_date > current_date) and "
                         "lml_identity_id is null and discogs_release_id is not null") == 0
    # rotation's statement-level trigger advanced the watermark, as the role.
    assert scalar(owner, "select last_modified_at from wxyc_schema.library_watermark"
                  ) > watermark

    refresh = cli(db, standin, "rotation", "refresh", "--requests-per-minute", "6000")
    # The sample rotation holds a few stale handles on purpose: the alert (5) is the
    # expected outcome; anything else is a failure.
    assert refresh.returncode in (0, 5), refresh.stdout + refresh.stderr
    assert scalar(owner, "select count(*) from identity_loader.rotation_refresh_results") > 0

    coverage = cli(db, None, "rotation", "coverage")
    assert coverage.returncode == 0, coverage.stdout + coverage.stderr
    report = cli(db, None, "report", "--format", "json")
    assert report.returncode == 0, report.stdout + report.stderr
    assert '"library_coverage"' in report.stdout


def test_a_role_takes_over_after_a_superuser_migrate(
        station: Database, role: Role, clone_database: Callable[[Database], Database],
        standin: StandIn) -> None:
    """Migrated (and its models built) as the superuser, then handed to the role with
    `grants ROLE --take-over`, as doctor says."""
    db = role.station_copy(station, clone_database)
    owner = superuser(db, role)
    done = cli(owner, None, "migrate")
    assert done.returncode == 0, done.stderr
    built = cli(owner, None, "dbt", "run", "--select", "+library_candidates")
    assert built.returncode == 0, built.stdout + built.stderr

    doctor = cli(db, standin, "doctor")
    assert doctor.returncode == 6, doctor.stdout + doctor.stderr
    fix = f"fix: `library-identity grants {role.name} --take-over`"
    assert fix in doctor.stdout, doctor.stdout
    refused = cli(db, standin, "resolve", "--no-progress")
    assert refused.returncode == 6, refused.stdout + refused.stderr

    printed = cli(owner, None, "grants", role.name, "--take-over",
                  "--database", db.params["dbname"])
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == takeover_sql(role.name, db.params["dbname"])
    with owner.connect(autocommit=True) as conn:
        conn.execute(printed.stdout.encode())

    doctor = cli(db, standin, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    resolved = cli(db, standin, "resolve", "--no-progress")
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert scalar(owner, "select count(*) from wxyc_schema.library_identity") > 0


def test_analyze_if_owner_renders_only_for_the_owner(
        station: Database, role: Role, clone_database: Callable[[Database], Database]) -> None:
    db = role.station_copy(station, clone_database)
    assert cli(db, None, "migrate").returncode == 0
    inline = "{{ analyze_if_owner(source('station', 'library_identity')) }}"
    as_role = cli(db, None, "dbt", "compile", "--inline", inline)
    as_owner = cli(superuser(db, role), None, "dbt", "compile", "--inline", inline)
    assert as_role.returncode == 0 and as_owner.returncode == 0, as_role.stderr + as_owner.stderr
    assert 'analyze "' in as_owner.stdout
    assert "analyze" not in as_role.stdout.split("Compiled inline node is:")[-1]


# -- one grant line missing ------------------------------------------------------------
def missing_line(label: str, role: Role, db: Database) -> str:
    """The statement `grants` prints for the line labelled `label` on this database."""
    return privileges()[LABELS.index(label)].sql(role.name, db.params["dbname"])


@pytest.mark.parametrize("label", LABELS)
def test_doctor_names_a_missing_line(
        label: str, station: Database, role: Role,
        clone_database: Callable[[Database], Database], standin: StandIn) -> None:
    db = role.station_copy(station, clone_database, skip=label)
    with contextlib.suppress(Exception):  # when the missing line is one migrate needs
        migrate.apply(db)
    doctor = cli(db, standin, "doctor")
    assert f"fix: {missing_line(label, role, db)}" in doctor.stdout, doctor.stdout
    if privileges()[LABELS.index(label)].needed_for:
        # Only one use needs it: a warning, and the jobs that do not need it run.
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert f"[warn] {label}" in doctor.stdout and "(1 warning)" in doctor.stdout
    else:
        assert doctor.returncode == 6, doctor.stdout + doctor.stderr
        assert f"[FAIL] {label}" in doctor.stdout


def test_without_reading_the_on_air_log_only_the_quiet_period_stops(
        station: Database, role: Role, clone_database: Callable[[Database], Database],
        standin: StandIn) -> None:
    db = role.station_copy(station, clone_database, skip="SELECT on wxyc_schema.flowsheet")
    assert cli(db, None, "migrate").returncode == 0
    backfill = cli(db, standin, "rotation", "backfill")
    assert backfill.returncode == 2, backfill.stdout + backfill.stderr
    assert backfill.stderr.strip().splitlines()[-1] == (
        "error: the quiet period reads the on-air log wxyc_schema.flowsheet, which this role "
        "may not read (grant select on wxyc_schema.flowsheet); pass --quiet-lookback 0 to "
        "send without waiting")
    for args in (("rotation", "backfill", "--quiet-lookback", "0"),
                 ("resolve", "--no-progress")):
        done = cli(db, standin, *args)
        assert done.returncode == 0, done.stdout + done.stderr


REFUSALS = {
    "resolve": ("resolve", "--no-progress"),
    "merge": ("resolve", "--merge-only"),
    "backfill": ("rotation", "backfill"),
    "refresh": ("rotation", "refresh"),
}


@pytest.mark.parametrize(("label", "job"), [
    ("USAGE on wxyc_schema.library_identity_history_history_id_seq", "resolve"),
    ("UPDATE (track_artist_id, track_artist_link_confidence, track_artist_link_method, "
     "track_position) on wxyc_schema.compilation_track_artist", "merge"),
    ("SELECT, UPDATE on wxyc_schema.library_watermark", "backfill"),
    ("SELECT on wxyc_schema.rotation", "refresh"),
])
def test_jobs_refuse_to_start_and_write_nothing(
        label: str, job: str, station: Database, role: Role,
        clone_database: Callable[[Database], Database], standin: StandIn) -> None:
    db = role.station_copy(station, clone_database, skip=label)
    migrate.apply(db)
    owner = superuser(db, role)
    before = snapshot(owner)
    refused = cli(db, standin, *REFUSALS[job])
    assert refused.returncode == 6, refused.stdout + refused.stderr
    assert "nothing was written" in refused.stderr
    assert f"fix: {missing_line(label, role, db)}" in refused.stderr
    assert snapshot(owner) == before
    assert not standin.requests, "LML was called before the database was checked"


def test_readme_lists_exactly_what_grants_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    # The README shows the default dbt schema.
    monkeypatch.delenv(dbt_names.SCHEMA_ENV, raising=False)
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## For the station's DBA", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sql\n", 1)[1].split("```", 1)[0]
    assert block == grants_sql("library_identity", "wxyc")
    # Every line is explained.
    for p in privileges():
        assert p.label() in section, p.label()


@pytest.mark.parametrize("name", ["select", "user", 'Li "Quoted" Role'])
def test_grants_quote_every_role_name(name: str, station: Database,
                                      clone_database: Callable[[Database], Database],
                                      server: Database) -> None:
    """A role named like a key word, or with capitals, spaces and quotes, gets exactly the
    script's grants: every statement runs, and they land on that role, not another."""
    if name != "select" and name != "user":
        name = f"{name} {uuid.uuid4().hex[:6]}"
    with server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("create role {}").format(sql.Identifier(name)))
    role = Role(name, server)
    try:
        db = superuser(role.station_copy(station, clone_database), role)
        with db.connect() as conn:
            assert conn.execute(
                "select has_table_privilege(%s, 'wxyc_schema.library_identity', 'update'), "
                "has_table_privilege('public', 'wxyc_schema.library_identity', 'update')",
                (name,)).fetchone() == (True, False)
    finally:
        for used in role.used:
            with used.connect(autocommit=True) as conn:
                conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
        with server.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


@pytest.mark.parametrize(("role", "says"), [("public", "every role"), ("PUBLIC", "every role"),
                                            ("none", "no role"), ("", "non-empty"),
                                            ("x" * 64, "63 bytes")])
def test_grants_refuse_a_name_that_is_not_one_role(role: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        grants_sql(role, "wxyc")


def test_one_quoting_rule() -> None:
    assert [quote_ident(n) for n in ("library_identity", "select", "user", "Wxyc", 'a"b', "1x",
                                     "with space", "current_user")] == [
        "library_identity", '"select"', '"user"', '"Wxyc"', '"a""b"', '"1x"', '"with space"',
        '"current_user"']
