"""Shared fixtures: a real Postgres (DATABASE_URL, or the embedded server) and fresh
databases on it, so each test module works on its own empty database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from loader import migrate
from loader.db import Database, resolve_database

ROOT = Path(__file__).resolve().parent.parent


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
