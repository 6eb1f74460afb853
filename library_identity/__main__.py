"""The `library-identity` command: `python -m library_identity`, and the installed script.

Importing the command line takes a moment (about a tenth of a second: each command loads
dbt, psycopg or httpx only when it runs); a Ctrl-C or SIGTERM meanwhile ends the command
with one line and exit 130, as it does once running."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def _interrupted_while_starting(_signum: int, _frame: Any) -> None:
    sys.stderr.write("error: interrupted while starting; nothing was done\n")
    sys.stderr.flush()
    os._exit(130)  # nothing to clean up yet: no connection, no server, no run


def run() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupted_while_starting)
    from library_identity.cli import main

    # The command line installs its own handlers once it runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    main(prog_name="library-identity")


if __name__ == "__main__":
    run()
