"""Shared fixtures: a real Postgres (DATABASE_URL, or the embedded server) and fresh
databases on it, so each test module works on its own empty database."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sentry_sdk
import station
from psycopg import sql
from sentry_sdk.transport import Transport

from library_identity import migrate
from library_identity.db import Database, resolve_database
from library_identity.demo.seed import seed_library
from library_identity.resolve import candidates
from library_identity.resolve.resolve_job import ResolveOptions

ROOT = Path(__file__).resolve().parent.parent
# Every command the tests run reads no config file (a developer's own would leak in); a
# test that wants one names it.
os.environ["LIBRARY_IDENTITY_CONFIG"] = os.devnull
os.environ.pop("LIBRARY_IDENTITY_SECRETS_FILE", None)
# The command line, as a subprocess of the interpreter running the tests.
CLI = (sys.executable, "-m", "library_identity")


# Set (to 1) where the station's schema must load: CI's full servers.
REQUIRE_STATION_SCHEMA = "LIBRARY_IDENTITY_REQUIRE_STATION_SCHEMA"


def pytest_report_header() -> str:
    try:
        db = resolve_database(os.environ.get("DATABASE_URL"),
                              ROOT / ".library-identity" / "test")
        reason = station.unavailable(db)
    except Exception as exc:  # the fixtures report an unreachable server properly
        return f"station tables: unknown ({type(exc).__name__})"
    return ("station tables: the project's own (" + reason + ")" if reason
            else "station tables: the station's schema (tests/fixtures/wxyc_schema.sql)")


@pytest.fixture(scope="session")
def server() -> Database:
    """The server under test: DATABASE_URL when set, else the embedded one."""
    return resolve_database(os.environ.get("DATABASE_URL"), ROOT / ".library-identity" / "test")


def _with_dbname(db: Database, name: str) -> Database:
    params = db.params | {"dbname": name}
    return Database(conninfo=psycopg.conninfo.make_conninfo(**params), embedded=db.embedded)


@pytest.fixture(scope="session")
def make_database(server: Database) -> Iterator[Callable[[], Database]]:
    """Factory for new, empty databases on the test server; all dropped at the end."""
    created: list[str] = []

    def make() -> Database:
        name = f"li_test_{uuid.uuid4().hex[:12]}"
        with server.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        created.append(name)
        return _with_dbname(server, name)

    yield make
    with server.connect(autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))


# The key the test stand-ins accept and the loader's clients send.
STANDIN_KEY = "test-key-9f8e7d6c5b4a"


@pytest.fixture
def standin() -> Iterator[Any]:
    """The LML stand-in on loopback, with its default (fault-free) behaviour."""
    from library_identity.demo.standin.server import StandIn, StandInConfig

    with StandIn(StandInConfig(api_key=STANDIN_KEY)) as server:
        yield server


@pytest.fixture(scope="session")
def station_schema(server: Database, make_database: Callable[[], Database]) -> Database | None:
    """An empty database built from the station's own schema (tests/fixtures), loaded once
    per session; None when this server cannot hold it."""
    reason = station.unavailable(server)
    if reason:
        if os.environ.get(REQUIRE_STATION_SCHEMA) == "1":
            pytest.fail(f"{REQUIRE_STATION_SCHEMA}=1, but {reason}")
        return None
    db = make_database()
    station.load(db)
    return db


@pytest.fixture
def station_db(station_schema: Database | None, server: Database,
               clone_database: Callable[[Database], Database]) -> Database:
    """A fresh database built from the station's own schema (no migration, no rows)."""
    if station_schema is None:
        pytest.skip(station.unavailable(server) or "")
    return clone_database(station_schema)


@pytest.fixture(scope="session")
def blank_station_template(station_schema: Database | None,
                           make_database: Callable[[], Database],
                           clone_database: Callable[[Database], Database]) -> Database:
    """Migrated, with empty station tables: the station's own schema (with the genre and
    format test albums are filed under) when the server can hold it, else the project's
    own station tables."""
    if station_schema is None:
        db = make_database()
        migrate.apply(db)
        return db
    db = clone_database(station_schema)
    migrate.apply(db)
    with db.connect() as conn:
        station.add_lookups(conn)
    return db


@pytest.fixture
def blank_station(blank_station_template: Database,
                  clone_database: Callable[[Database], Database]) -> Database:
    """A fresh copy of `blank_station_template`: for tests that write their own rows."""
    return clone_database(blank_station_template)


def station_template(station_schema: Database | None, make_database: Callable[[], Database],
                     clone_database: Callable[[Database], Database], rows: int) -> Database:
    """A migrated database with the sample library of `rows` rows and its candidates built,
    on the station's own schema when the server can hold it, else on the project's own
    station tables."""
    if station_schema is not None:
        db = clone_database(station_schema)
        migrate.apply(db)
        with db.connect() as conn:
            station.seed_sample(conn, rows)
    else:
        db = make_database()
        migrate.apply(db)
        with db.connect() as conn:
            seed_library(conn, rows)
    candidates.build_candidates(db, ResolveOptions().dbt_vars())
    return db


@pytest.fixture(scope="module")
def template(request: pytest.FixtureRequest, station_schema: Database | None,
             make_database: Callable[[], Database],
             clone_database: Callable[[Database], Database]) -> Database:
    """The test module's N_ROWS-row sample, migrated, with its candidates built: what `db`
    copies for each test."""
    return station_template(station_schema, make_database, clone_database,
                            request.module.N_ROWS)


@pytest.fixture
def db(template: Database, clone_database: Callable[[Database], Database]) -> Database:
    """A fresh copy of the test module's `template` database (seeded, migrated)."""
    return clone_database(template)


@pytest.fixture
def empty_db(make_database: Callable[[], Database]) -> Database:
    return make_database()


@pytest.fixture
def migrated_db(make_database: Callable[[], Database]) -> Database:
    db = make_database()
    migrate.apply(db)
    return db


@pytest.fixture(scope="session")
def clone_database(server: Database, make_database: Callable[[], Database]
                   ) -> Callable[[Database], Database]:
    """Copy a prepared database (CREATE DATABASE … TEMPLATE): a fresh, seeded, migrated
    database per test in a fraction of a second."""

    def clone(template: Database) -> Database:
        db = make_database()  # registers the name for cleanup
        name, source = db.params["dbname"], template.params["dbname"]
        with server.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(source)))
        return db

    return clone


class SentryCapture(Transport):
    """A sentry-sdk transport that keeps envelopes in memory instead of sending them."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Any] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.envelopes.append(envelope)

    def flush(self, *args: Any, **kwargs: Any) -> None:
        pass

    def kill(self) -> None:
        pass

    def is_healthy(self) -> bool:
        return True

    def record_lost_event(self, *args: Any, **kwargs: Any) -> None:
        pass

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(item.get_bytes()) for envelope in self.envelopes
                for item in envelope.items if item.type == kind]

    def serialized(self) -> str:
        """Everything that would have left the process, as text (for secret checks)."""
        return "\n".join(item.get_bytes().decode("utf-8", "replace")
                         for envelope in self.envelopes for item in envelope.items)


SENTRY_TEST_DSN = "https://k7Qs-sentry-0b9e4d@o1.ingest.example/42"


@pytest.fixture
def sentry_transport() -> Iterator[SentryCapture]:
    from library_identity.telemetry import init_sentry

    transport = SentryCapture()
    init_sentry(SENTRY_TEST_DSN, transport=transport)
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # back to a disabled client
    init_sentry(None)  # and to the default naming
