"""Where the database is: `DATABASE_URL` when given, otherwise an embedded Postgres
(library_identity/demo/embedded.py, imported only then: it comes with the `demo` extra).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from library_identity import dbt_names, jsonfast, paths, secrets
from library_identity.errors import ConfigurationError, DatabaseError

log = logging.getLogger(__name__)
T = TypeVar("T")

LOADER_SCHEMA = "identity_loader"
STATION_SCHEMA = "wxyc_schema"


def require_migrated(conn: psycopg.Connection) -> None:
    """The loader's tables exist, or a DatabaseError that says to run `migrate`."""
    row = conn.execute("select to_regclass('identity_loader.runs') is not null").fetchone()
    if not (row and row[0]):
        raise DatabaseError("the database is not migrated (identity_loader.runs is missing); "
                            "run `library-identity migrate` first")


@dataclass(frozen=True)
class Database:
    conninfo: str
    embedded: bool

    @property
    def params(self) -> dict[str, str]:
        return {k: str(v) for k, v in conninfo_to_dict(self.conninfo).items()}

    def connect(self, *, autocommit: bool = False, application_name: str = "library-identity",
                statement_timeout_ms: int | None = None,
                settings: Mapping[str, str] | None = None) -> psycopg.Connection:
        """settings: server parameters for this session (name and value are the project's own,
        never user input)."""
        options = []
        if statement_timeout_ms is not None:
            options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
        options.extend(f"-c {name}={value}" for name, value in (settings or {}).items())
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
            dbt_names.SCHEMA_ENV: dbt_names.schema(),
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


# libpq checks these values only when it connects, where a wrong one reads like an
# unreachable database; they are settings, checked with the rest (each option may also come
# from its PG* environment variable, as libpq reads it).
_INTEGER_OPTIONS = {"port": "PGPORT", "connect_timeout": "PGCONNECT_TIMEOUT",
                    "keepalives": "", "keepalives_idle": "", "keepalives_interval": "",
                    "keepalives_count": "", "tcp_user_timeout": ""}
_TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_CHOICE_OPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sslmode": ("PGSSLMODE", ("disable", "allow", "prefer", "require", "verify-ca",
                              "verify-full")),
    "gssencmode": ("PGGSSENCMODE", ("disable", "prefer", "require")),
    "channel_binding": ("PGCHANNELBINDING", ("disable", "prefer", "require")),
    "target_session_attrs": ("PGTARGETSESSIONATTRS", ("any", "read-write", "read-only",
                                                      "primary", "standby", "prefer-standby")),
    "load_balance_hosts": ("PGLOADBALANCEHOSTS", ("disable", "random")),
    "sslnegotiation": ("PGSSLNEGOTIATION", ("postgres", "direct")),
    "ssl_min_protocol_version": ("PGSSLMINPROTOCOLVERSION", _TLS_VERSIONS),
    "ssl_max_protocol_version": ("PGSSLMAXPROTOCOLVERSION", _TLS_VERSIONS),
    "sslcompression": ("PGSSLCOMPRESSION", ("0", "1")),
    "sslsni": ("PGSSLSNI", ("0", "1")),
}


def database_params(database_url: str) -> dict[str, str]:
    """DATABASE_URL's connection parameters, or a ConfigurationError that never shows the
    password: the string parses, and each value libpq would refuse only when connecting
    (sslmode, port, connect_timeout, ...) is one it accepts."""
    # Registered before parsing, so even a URL that cannot be parsed never shows it.
    password = secrets.url_password(database_url)
    secrets.register(password)
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(database_url).items()}
    except psycopg.Error as exc:
        reason = secrets.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        if not reason or database_url in reason or (password and password in reason):
            reason = "it cannot be parsed"
        hint = "" if "query parameter" in reason else (
            "; characters such as % @ : / in the password must be percent-encoded, e.g. "
            "%25 for %")
        raise ConfigurationError(f"DATABASE_URL is not a valid Postgres connection string "
                                 f"({reason}{hint})") from None
    secrets.register(params.get("password"))
    for name, env in _INTEGER_OPTIONS.items():
        value, where = _option(params, name, env)
        if value is None:
            continue
        if name == "port":  # one port a host; an empty one means the default
            ports = [part.strip() for part in value.split(",")]
            if not all(re.fullmatch(r"[0-9]{1,5}", p) and 0 < int(p) < 65536
                       for p in ports if p):
                raise ConfigurationError(f"{where}: port must be a number from 1 to 65535, "
                                         f"got {value!r}")
        elif not re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
            raise ConfigurationError(f"{where}: {name} must be a whole number, got {value!r}")
    for name, (env, choices) in _CHOICE_OPTIONS.items():
        value, where = _option(params, name, env)
        if value is not None and value not in choices:
            raise ConfigurationError(f"{where}: {name} must be one of {', '.join(choices)}, "
                                     f"got {value!r}")
    return params


def _option(params: Mapping[str, str], name: str, env: str) -> tuple[str | None, str]:
    """An option's value and where it was set, as libpq finds it (None when unset)."""
    if name in params:
        return params[name], "DATABASE_URL"
    if env and os.environ.get(env):
        return os.environ[env], env
    return None, ""


def resolve_database(database_url: str | None, data_dir: Path | None = None, *,
                     keep_server: bool = False) -> Database:
    """DATABASE_URL's database, or the embedded server's (data_dir, default the one
    library_identity/paths.py names); ConfigurationError when the URL is unusable or the
    embedded server is not installed."""
    dbt_names.schema()  # a schema name dbt cannot use is a setting error, found first
    if database_url:
        database_params(database_url)
        return Database(conninfo=database_url, embedded=False)
    from library_identity.demo.embedded import start_embedded

    return start_embedded(data_dir or paths.default_data_dir(), keep=keep_server)


# A NUL character as JSON encodes it: `\u0000` after an even run of backslashes (an odd
# run would make it the literal text `\u0000`, which jsonb stores fine).
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def has_nul(json_text: str) -> bool:
    """Whether JSON text holds a NUL character, which no Postgres text or jsonb can store."""
    return "\\u0000" in json_text and _JSON_NUL.search(json_text) is not None


def landable(value: Any) -> str:
    """JSON text a jsonb column holds exactly as given, or jsonfast.NotJSON saying why not
    (a NUL character, which no Postgres text or jsonb can store, among the reasons): the
    rule for what LML sent, which lands as sent or not at all."""
    text = jsonfast.dumps(value)
    if has_nul(text):
        raise jsonfast.NotJSON("a NUL character in a string")
    return text


def jsonb_text(value: Any) -> str:
    """JSON text for a jsonb column (as a COPY or query parameter), NUL characters dropped
    (jsonb rejects them; a title or an exception message could carry one). Literal text
    such as a backslash followed by `u0000` is kept as it is. Raises jsonfast.NotJSON for
    what no jsonb can hold (NaN, a lone surrogate)."""
    text = jsonfast.dumps(value)
    return _JSON_NUL.sub(r"\1", text) if has_nul(text) else text


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
