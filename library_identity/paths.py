"""Where the project's files live, found through the package, never the current directory.

- The dbt project (dbt_project.yml, profiles.yml, selectors.yml, models/, macros/, seeds/,
  tests/generic/, tests/singular/) and the migrations: read-only. A wheel carries them
  inside the package (pyproject.toml's force-include puts them in `_dbt/` and
  `_migrations/`); an editable install reads them at the checkout's top level.
- dbt's target/ and logs/: written on every run, so they live in a state folder per user,
  `LIBRARY_IDENTITY_STATE_DIR` (default `$XDG_STATE_HOME/library-identity`, else
  `~/.local/state/library-identity`), one subfolder per project folder so that a checkout
  and an installed copy never share dbt's partial parse.
- The embedded server's data: `LIBRARY_IDENTITY_DATA_DIR` or `--data-dir` (default
  `$XDG_DATA_HOME/library-identity`, else `~/.local/share/library-identity`; for root
  `/var/lib/library-identity`, because the server then runs as another system user who
  must be able to reach the folder, and /root stays closed).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parent


def _shipped(packaged: str, checkout: Path) -> Path:
    """The packaged copy when the package carries one, else the checkout's."""
    inside = PACKAGE_DIR / packaged
    return inside if inside.is_dir() else checkout


PROJECT_DIR = _shipped("_dbt", _CHECKOUT)
MIGRATIONS_DIR = _shipped("_migrations", _CHECKOUT / "migrations")

STATE_DIR_ENV = "LIBRARY_IDENTITY_STATE_DIR"
DATA_DIR_ENV = "LIBRARY_IDENTITY_DATA_DIR"
ROOT_DATA_DIR = Path("/var/lib/library-identity")


def _xdg(variable: str, fallback: str) -> Path:
    # The XDG spec ignores a relative value.
    value = os.environ.get(variable, "")
    base = Path(value) if value and Path(value).is_absolute() else Path.home() / fallback
    return base / "library-identity"


def state_dir() -> Path:
    """The writable state folder (read when needed: a test or a command may set it)."""
    value = os.environ.get(STATE_DIR_ENV)
    return Path(value).expanduser().resolve() if value else _xdg("XDG_STATE_HOME",
                                                                    ".local/state")


def dbt_state_dir() -> Path:
    """dbt's folder in the state folder, for this project folder."""
    key = hashlib.sha256(str(PROJECT_DIR).encode()).hexdigest()[:12]
    return state_dir() / "dbt" / key


def dbt_target_dir() -> Path:
    return dbt_state_dir() / "target"


def dbt_log_dir() -> Path:
    return dbt_state_dir() / "logs"


def default_data_dir() -> Path:
    """The embedded server's folder when neither --data-dir nor LIBRARY_IDENTITY_DATA_DIR
    chooses one."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ROOT_DATA_DIR
    return _xdg("XDG_DATA_HOME", ".local/share")
