"""The `library-identity` command line: the group lives in app.py, each area's commands
in a module of their own."""

from loader.cli import demo, doctor, report, resolve, rotation, setup  # noqa: F401  (registers the commands)
from loader.cli.app import main

__all__ = ["main"]
