"""The `library-identity` command line: the group lives in app.py, each area's commands
in a module of their own."""

from library_identity.cli import (  # noqa: F401  (registers the commands)
    demo,
    doctor,
    report,
    resolve,
    review,
    rotation,
    setup,
)
from library_identity.cli.app import main

__all__ = ["main"]
