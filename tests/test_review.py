"""The review loop end to end: the worklist exported as CSV, filled in as a person would,
applied with `library-identity review apply`, merged into the station's identity tables
as a librarian's rows, and left alone by every later resolve and merge."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI, STANDIN_KEY

from library_identity.db import Database
from library_identity.demo.standin.server import StandIn, StandInConfig
from library_identity.lml.client import LMLClient
from library_identity.resolve.resolve_job import ResolveOptions, resolve
from library_identity.review.worklist import HEADER, ID_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
N_ROWS = 2000
IDENTITY = ("library_id, discogs_release_id, discogs_master_id, musicbrainz_release_group_mbid, "
            "musicbrainz_release_mbid, wikidata_qid, spotify_id, apple_music_id, method, "
            "confidence, notes")


def _resolve(db: Database) -> None:
    with StandIn(StandInConfig(api_key=STANDIN_KEY, out_of_band_rate=0.05)) as standin, \
            LMLClient(base_url=standin.url, api_key=STANDIN_KEY) as client:
        run = resolve(db, client, ResolveOptions(concurrency=2), merge=True)
    assert run.status == "succeeded" and run.merge is not None and run.merge.success, run


@pytest.fixture(scope="module")
def resolved(template: Database, clone_database: Callable[[Database], Database]) -> Database:
    """The seeded sample resolved through the stand-in and merged once."""
    db = clone_database(template)
    _resolve(db)
    return db


@pytest.fixture
def sample(resolved: Database, clone_database: Callable[[Database], Database]) -> Database:
    return clone_database(resolved)


def cli(db: Database, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db.conninfo, "COLUMNS": "200"}
    out = subprocess.run([*CLI, "review", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == code, out.stderr[-3000:]
    return out


def rows(db: Database, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(query, params).fetchall()


def export(db: Database, tmp_path: Path, *args: str) -> list[dict[str, str]]:
    out = tmp_path / "worklist.csv"
    cli(db, "export", "--out", str(out), *args)
    with out.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == HEADER
        return list(reader)


def write(path: Path, records: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    return path


def identity(db: Database, library_id: int) -> tuple[Any, ...] | None:
    found = rows(db, f"select {IDENTITY} from wxyc_schema.library_identity "
                     "where library_id = %s", library_id)
    return found[0] if found else None


def test_export_fill_apply_merge_and_later_runs_leave_it(sample: Database,
                                                         tmp_path: Path) -> None:
    records = export(sample, tmp_path)
    by_kind: dict[str, list[dict[str, str]]] = {}
    for record in records:
        assert record["decision"] == record["note"] == ""
        by_kind.setdefault(record["kind"], []).append(record)
    assert set(by_kind) == {"unresolved", "refused", "low-confidence"}
    accepted, rejected = by_kind["low-confidence"][:2]
    chosen = by_kind["unresolved"][0]
    # The id columns hold the stored identity of a low-confidence row.
    stored = identity(sample, int(accepted["library_id"]))
    assert stored is not None
    assert [accepted[c] for c in ID_COLUMNS] == ["" if v is None else str(v)
                                                  for v in stored[1:8]]
    accepted |= {"decision": "accept", "note": "checked the sleeve"}
    rejected |= {"decision": "reject", "note": "another band of that name"}
    chosen |= {"decision": "set", "wikidata_qid": "Q42", "spotify_id": "4Z8W4fKeB5YxbusRsdQVPb",
               "discogs_release_id": "1234567"}
    filled = write(tmp_path / "filled.csv", records)

    dry = cli(sample, "apply", str(filled), "--dry-run")
    assert "set" in dry.stdout and "accept" in dry.stdout and "reject" in dry.stdout
    assert rows(sample, "select count(*) from identity_loader.review_decisions") == [(0,)]
    cli(sample, "apply", str(filled), "--by", "music director")

    decided = rows(sample, "select library_id, decision, decided_by, source_line, "
                           "applied_at is not null from identity_loader.review_decisions "
                           "order by library_id")
    assert {r[0]: r[1] for r in decided} == {int(accepted["library_id"]): "accept",
                                             int(rejected["library_id"]): "reject",
                                             int(chosen["library_id"]): "set"}
    assert all(r[2] == "music director" and r[4] for r in decided)
    # accept: the same identity, now the librarian's.
    kept = identity(sample, int(accepted["library_id"]))
    assert kept is not None and kept[:10] == stored[:10]
    assert kept[10].startswith("librarian: music director") and "checked the sleeve" in kept[10]
    # set: the person's ids, method manual, with a librarian's source row per id.
    set_row = identity(sample, int(chosen["library_id"]))
    assert set_row is not None
    assert (set_row[2 - 1], set_row[5], set_row[6], set_row[8], set_row[9]) == (
        1234567, "Q42", "4Z8W4fKeB5YxbusRsdQVPb", "manual", 1.0)
    assert sorted(rows(sample, "select source, external_id, left(notes, 10) from "
                               "wxyc_schema.library_identity_source where library_id = %s",
                       int(chosen["library_id"]))) == [
        ("discogs", "1234567", "librarian:"), ("spotify", "4Z8W4fKeB5YxbusRsdQVPb", "librarian:"),
        ("wikidata", "Q42", "librarian:")]
    # reject: gone, archived in the history with who and why.
    assert identity(sample, int(rejected["library_id"])) is None
    assert rows(sample, "select count(*) from wxyc_schema.library_identity_source "
                        "where library_id = %s", int(rejected["library_id"])) == [(0,)]
    [(reason, category)] = rows(sample, "select superseded_reason, reason_category from "
                                        "wxyc_schema.library_identity_history "
                                        "where library_id = %s", int(rejected["library_id"]))
    assert category == "librarian_decision" and "reject by music director" in reason

    # Everything due again: a later resolve answers these rows once more, and its merge
    # leaves the person's rows alone and keeps the rejected identity out.
    decided_ids = [int(r[0]) for r in decided]
    kept_rows = {i: identity(sample, i) for i in decided_ids}
    with sample.connect() as conn:
        conn.execute("update wxyc_schema.library_identity set last_verified_at = "
                     "last_verified_at - interval '30 days'")
        conn.execute("update wxyc_schema.library set unresolved_attempted_at = "
                     "unresolved_attempted_at - interval '30 days'")
        conn.execute("update identity_loader.raw_verdicts set attempted_at = "
                     "attempted_at - interval '30 days'")
    # A replay of the whole log (the verdict state takes the shifted times) leaves them too.
    env = {**os.environ, "DATABASE_URL": sample.conninfo}
    replay = subprocess.run([*CLI, "merge", "--full-rebuild"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert replay.returncode == 0, replay.stderr[-3000:]
    with sample.connect() as conn:  # a person's rows are as old as their decision: age them
        conn.execute("update wxyc_schema.library_identity set last_verified_at = "
                     "last_verified_at - interval '30 days' where notes like 'librarian:%%'")
    before = {i: identity(sample, i) for i in decided_ids}
    _resolve(sample)
    answered = dict(rows(sample, "select library_id, count(*) from identity_loader.raw_verdicts "
                                 "where library_id = any(%s) group by 1", decided_ids))
    assert all(answered[i] == 2 for i in decided_ids), answered
    assert {i: identity(sample, i) for i in decided_ids} == before
    assert before == kept_rows
    skips = dict(rows(sample, "select library_id, reason from identity_loader.merge_skips "
                              "where skip_level = 'verdict' and library_id = any(%s) and "
                              "merge_id = (select max(merge_id) from identity_loader.merges)",
                      decided_ids))
    assert skips[int(rejected["library_id"])] == "rejected_by_librarian"
    assert skips[int(accepted["library_id"])] == "librarian_decision"
    # The worklist no longer lists the accepted and set rows; the rejected one says why.
    after = {r["library_id"]: r for r in export(sample, tmp_path)}
    assert accepted["library_id"] not in after and chosen["library_id"] not in after
    assert after[rejected["library_id"]]["why"] == "a person rejected this identity"


def test_one_bad_line_applies_nothing_and_names_it(sample: Database, tmp_path: Path) -> None:
    records = export(sample, tmp_path, "--kind", "low-confidence")
    records[0]["decision"] = "accept"
    records[1]["decision"] = "set"
    records[1]["wikidata_qid"] = "42"  # not a Wikidata id
    records[2]["decision"] = "reject"
    records[3] |= {"decision": "accept", "library_id": "999999"}  # no such library row
    filled = write(tmp_path / "bad.csv", records)
    before = rows(sample, f"select {IDENTITY} from wxyc_schema.library_identity order by 1")
    out = cli(sample, "apply", str(filled), code=2)
    lines = out.stderr.strip().splitlines()
    assert lines[0] == f"{filled}:3: wikidata_qid must be a Wikidata item id such as Q42, got '42'"
    assert lines[1] == f"{filled}:5: library_id 999999 is not in the library"
    assert lines[-1].startswith("error: ") and "nothing was applied" in lines[-1]
    assert rows(sample, "select count(*) from identity_loader.review_decisions") == [(0,)]
    assert rows(sample, f"select {IDENTITY} from wxyc_schema.library_identity order by 1"
                ) == before


def test_formula_like_cells_are_neutralised_and_come_back(sample: Database,
                                                          tmp_path: Path) -> None:
    target = int(next(r["library_id"] for r in export(sample, tmp_path)
                      if r["kind"] == "low-confidence"))
    with sample.connect() as conn:
        conn.execute("update wxyc_schema.library set album_title = '=HYPERLINK(\"x\")' "
                     "where id = %s", (target,))
    text = (tmp_path / "w.csv")
    cli(sample, "export", "--out", str(text))
    records = list(csv.DictReader(io.StringIO(text.read_text(encoding="utf-8"))))
    row = next(r for r in records if r["library_id"] == str(target))
    assert row["title"] == "'=HYPERLINK(\"x\")"
    row |= {"decision": "accept", "note": "'=SUM(1+1)"}  # as a spreadsheet keeps a formula
    cli(sample, "apply", str(write(tmp_path / "f.csv", records)))
    assert rows(sample, "select note from identity_loader.review_decisions") == [("=SUM(1+1)",)]
