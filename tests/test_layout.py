"""README's layout table names every room of the loader, and names no room that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layout_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_every_loader_module_and_folder_is_in_the_layout_table() -> None:
    table = _layout_section()
    rooms = [p for p in (ROOT / "library_identity").iterdir()
             if p.name not in ("__init__.py", "__main__.py", "__pycache__")
             and (p.is_dir() or p.suffix == ".py")]
    named = {f"`library_identity/{p.name}{'/' if p.is_dir() else ''}`" for p in rooms}
    missing = sorted(name for name in named if name not in table)
    assert not missing, f"README's layout table does not name {missing}"


def test_every_path_the_layout_table_names_exists() -> None:
    paths = re.findall(r"`((?:library_identity|models|macros|tests|bench|scripts|migrations)"
                       r"/[^`]*)`", _layout_section())
    assert paths
    gone = sorted(p for p in paths if not any(ROOT.glob(p.rstrip("/"))))
    assert not gone, f"README's layout table names paths that do not exist: {gone}"
