"""Terminal output shared by the commands.

On a terminal a table fits the window, and a value too wide for its column folds onto
the next line rather than being cut. Anywhere else (a pipe, a file, a scheduler's log) a
table is printed at its full width as plain text, without escape sequences, so a log
keeps every value whole. Text from the data (stored names, LML's messages) never reaches
the terminal raw: control characters, escape sequences among them, are shown as `\\xNN`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from library_identity.telemetry import printable

# Wide enough for any table: rich sizes a table to its content, never to the console.
_LOG_WIDTH = 1_000_000


def to_terminal() -> bool:
    """Whether stdout is a terminal a person reads (else a log that must keep everything)."""
    return sys.stdout.isatty()


def cell(value: Any) -> str:
    """A value as one table cell: ints with their digits grouped, all of it printable."""
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return printable(text, keep_lines=False)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    terminal = to_terminal()
    table = Table(box=box.HEAVY_HEAD if terminal else box.MARKDOWN, pad_edge=True)
    for i, header in enumerate(headers):
        # Values fold rather than end in an ellipsis, even on a narrow terminal.
        table.add_column(Text(cell(header)), justify="left" if i == 0 else "right",
                         overflow="fold")
    for row in rows:
        # Text, not str: a value is never read as rich markup ("[red]" stays as it is).
        table.add_row(*(Text(cell(v)) for v in row))
    if terminal:
        console = Console()
        console.print(Text(cell(title), style="italic"))
        console.print(table)
        return
    # Rendered without a console width or colours, then written as plain lines; the title
    # goes on a line of its own, since rich would wrap it to the table's width.
    console = Console(width=_LOG_WIDTH, color_system=None, force_terminal=False,
                      no_color=True, emoji=False, highlight=False)
    with console.capture() as captured:
        console.print(table)
    lines = [line.rstrip() for line in captured.get().splitlines()]
    click.echo(cell(title))
    click.echo("\n".join(line for line in lines if line))
