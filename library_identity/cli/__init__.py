"""The `library-identity` command line: the group lives in app.py, each area's commands
in a module of their own."""

from library_identity.cli import demo, doctor, report, resolve, rotation, setup  # noqa: F401  (registers the commands)
from library_identity.cli.app import main

__all__ = ["main"]
