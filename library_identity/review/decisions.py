"""`library-identity review apply`: a filled worklist file read, checked line by line
against the station, and (only when every line is good) its decisions landed in
identity_loader.review_decisions under the resolve lock, then merged: the write-back
writes them to the station's identity tables as a librarian's rows.

accept keeps the stored identity and makes it the person's; reject removes it and keeps
every later verdict for the row out until a person decides again; set writes the ids the
person gave (method manual, confidence 1).
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from library_identity.db import LOADER_SCHEMA, STATION_SCHEMA, Database
from library_identity.dbt_names import project_vars
from library_identity.errors import ConfigurationError
from library_identity.jobs.lock import acquire_lock
from library_identity.report.data import from_spreadsheet_safe
from library_identity.resolve.merge import MergeOutcome, merge
from library_identity.review.worklist import ID_COLUMNS
from library_identity.tables import column_meta

DECISIONS = ("accept", "reject", "set")
NOTE_MAX = 500
INT_MAX = 2**31 - 1
# What each id column holds (library_identity's types, and the forms the sources use), as
# its declaration says.
_ID_FORMS: dict[str, tuple[str, re.Pattern[str] | None]] = {
    column: (review["form"], re.compile(review["pattern"]) if review.get("pattern") else None)
    for column, review in column_meta("station", "library_identity", "review").items()}


@dataclass(frozen=True)
class BadLine:
    line: int
    message: str


@dataclass
class Decision:
    line: int
    library_id: int
    decision: str
    ids: dict[str, Any]
    note: str | None
    change: str = ""  # what it does to the station, for the summary and --dry-run


@dataclass
class Review:
    """A file read and checked: its decisions, or the lines that stop it."""

    decisions: list[Decision] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    undecided: int = 0


class BadFile(ValueError):
    """A file that cannot be read as a worklist at all (not the rows' problems)."""


def _parse_id(column: str, text: str) -> Any:
    """A cell as the id column's value; ValueError naming the form it must have."""
    form, pattern = _ID_FORMS[column]
    if pattern is None:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise ValueError(f"{column} must be {form}, got {text!r}") from None
    if not pattern.fullmatch(text):
        raise ValueError(f"{column} must be {form}, got {text!r}")
    if column.startswith("discogs_"):
        value = int(text)
        if value > INT_MAX:
            raise ValueError(f"{column} must be {form} up to {INT_MAX}, got {text!r}")
        return value
    return text


def _records(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line where the record starts, record) for each record after the header."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"library_id", "decision", "note", *ID_COLUMNS} - set(reader.fieldnames or ())
    if missing:
        raise BadFile(f"line 1: the header lacks {', '.join(sorted(missing))} (write the "
                      "file with `library-identity review export`)")
    start = reader.line_num + 1
    for record in reader:
        yield start, record
        start = reader.line_num + 1


def read(path: Path) -> tuple[str, Review]:
    """The file's text and its decisions as written (not yet checked against the station)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise BadFile(f"cannot read it ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise BadFile("it is not UTF-8 text") from None
    review = Review()
    seen: dict[int, int] = {}
    try:
        for line, record in _records(text):
            cells = {k: from_spreadsheet_safe((v or "").strip()) for k, v in record.items()
                     if k is not None}
            decision = cells.get("decision", "").lower()
            if not decision:
                review.undecided += 1
                continue
            problems: list[str] = []
            if decision not in DECISIONS:
                problems.append(f"decision must be accept, reject or set, got "
                                f"{cells['decision']!r}")
            library_id = 0
            try:
                library_id = int(cells.get("library_id", ""))
                if not 0 < library_id <= INT_MAX:
                    raise ValueError
            except ValueError:
                problems.append(f"library_id must be a library row's id, got "
                                f"{cells.get('library_id', '')!r}")
            ids: dict[str, Any] = {}
            for column in ID_COLUMNS:
                if cells.get(column):
                    try:
                        ids[column] = _parse_id(column, cells[column])
                    except ValueError as exc:
                        problems.append(str(exc))
            if decision == "set" and not ids and not problems:
                problems.append("set needs at least one id (the identity to use)")
            note = cells.get("note") or None
            if note is not None and len(note) > NOTE_MAX:
                problems.append(f"note is longer than {NOTE_MAX} characters")
            if library_id and library_id in seen:
                problems.append(f"library_id {library_id} is decided on line "
                                f"{seen[library_id]} already")
            if problems:
                review.bad.append(BadLine(line, "; ".join(problems)))
                continue
            seen[library_id] = line
            review.decisions.append(Decision(line, library_id, decision, ids, note))
    except csv.Error as exc:
        raise BadFile(f"not a CSV file ({exc})") from None
    return text, review


def _station_rows(conn: psycopg.Connection, library_ids: list[int]
                  ) -> tuple[set[int], dict[int, dict[str, Any]]]:
    """The library ids that exist, and the station identity row of each that has one."""
    known = {r[0] for r in conn.execute(
        f"select id from {STATION_SCHEMA}.library where id = any(%s)", (library_ids,))}
    cur = conn.execute(
        f"select library_id, notes, {', '.join(ID_COLUMNS)} "
        f"from {STATION_SCHEMA}.library_identity where library_id = any(%s)", (library_ids,))
    names = [c.name for c in cur.description or ()]
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    return known, rows


def _is_ours(notes: str | None) -> bool:
    """The project's row, the row of the writer it replaces, or a person's decision's."""
    variables = project_vars()
    if variables.get("take_over_other_writers"):
        return True
    return notes is not None and (
        notes in (variables["identity_notes"], *variables["identity_takeover_notes"])
        or notes.startswith(variables["review_notes_prefix"]))


def check(conn: psycopg.Connection, review: Review) -> None:
    """Check each decision against the station (adds to review.bad; says what each good one
    changes)."""
    known, station = _station_rows(conn, [d.library_id for d in review.decisions])
    good = []
    for d in review.decisions:
        row = station.get(d.library_id)
        problem = None
        if d.library_id not in known:
            problem = f"library_id {d.library_id} is not in the library"
        elif row is not None and not _is_ours(row["notes"]):
            problem = (f"library_id {d.library_id}'s identity belongs to another writer; "
                       "change it where that writer keeps it")
        elif d.decision == "accept" and row is None:
            problem = (f"library_id {d.library_id} has no stored identity to accept; write "
                       "the ids and use set")
        elif d.decision == "accept":
            differs = [c for c in ID_COLUMNS
                       if str(d.ids.get(c, "")) != str(row[c] if row[c] is not None else "")]
            if differs:
                problem = (f"accept keeps the stored identity, but {', '.join(differs)} "
                           "differ from it; use set to change ids")
        if problem:
            review.bad.append(BadLine(d.line, problem))
            continue
        d.change = {
            "accept": "keep the stored identity as the librarian's",
            "reject": ("remove the stored identity and refuse it from now on" if row
                       else "refuse LML's identity from now on (none is stored)"),
            "set": ("replace the stored identity with " if row else "store ")
            + ", ".join(f"{k} {v}" for k, v in d.ids.items()),
        }[d.decision]
        good.append(d)
    review.decisions = good
    review.bad.sort(key=lambda b: b.line)


def decided_by(conn: psycopg.Connection, by: str | None) -> str:
    """Who decides: --by, else the database role."""
    if by is not None:
        if not by.strip() or len(by) > 100 or any(ord(ch) < 32 for ch in by):
            raise ConfigurationError("--by must be a name of 1 to 100 printable characters")
        return by.strip()
    row = conn.execute("select current_user").fetchone()
    return str(row[0]) if row else "unknown"


@dataclass
class Applied:
    review: Review
    by: str
    merge: MergeOutcome | None = None


def apply(db: Database, path: Path, *, by: str | None, dry_run: bool,
          dbt_vars: dict[str, Any]) -> Applied:
    """Read, check and (unless a dry run, or any line is bad) land the file's decisions and
    merge them, all under the resolve lock so no merge runs between. Raises BadFile."""
    _, review = read(path)
    lock = acquire_lock(db.connect(autocommit=True, application_name="library-identity:lock"),
                        "resolve")
    try:
        with db.connect() as conn:
            who = decided_by(conn, by)
            check(conn, review)
            if review.bad or dry_run or not review.decisions:
                return Applied(review, who)
            with conn.transaction(), conn.cursor().copy(
                f"copy {LOADER_SCHEMA}.review_decisions (library_id, decision, "
                f"{', '.join(ID_COLUMNS)}, note, decided_by, source_file, source_line) "
                "from stdin") as copy:
                for d in review.decisions:
                    copy.write_row((d.library_id, d.decision,
                                    *(d.ids.get(c) for c in ID_COLUMNS), d.note, who,
                                    path.name, d.line))
        return Applied(review, who, merge(db, dbt_vars))
    finally:
        lock.release()
