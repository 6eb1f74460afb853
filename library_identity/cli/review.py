"""`library-identity review export | apply`: the worklist as a file a person fills in,
and their decisions written back as a librarian's rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from library_identity.cli.app import Settings, fail, job_failed, main, pass_settings
from library_identity.cli.output import print_table
from library_identity.cli.resolve import print_merge
from library_identity.errors import EXIT_GATE, EXIT_OK, EXIT_USAGE
from library_identity.review import KINDS


@main.group()
def review() -> None:
    """What needs a person: export the worklist, apply their decisions."""


@review.command("export")
@click.option("--kind", type=click.Choice(KINDS),
              help="Only unresolved albums, identities the merge refused, or low-confidence "
                   "identities (default: all three).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The CSV file to write (`-` for stdout).")
@click.option("--no-refresh", is_flag=True,
              help="Read the report views as they are instead of rebuilding them first.")
@pass_settings
def export_command(settings: Settings, kind: str | None, out: Path, no_refresh: bool) -> None:
    """Write the worklist as CSV: one line per library row, with its library_id, why it
    needs a person, the station identity's ids where one exists, and empty decision and
    note columns to fill (accept, reject or set) for `review apply`."""
    from library_identity.db import require_migrated
    from library_identity.review import worklist

    db = settings.database()
    try:
        with db.connect() as conn:
            require_migrated(conn)
        rows = worklist.load(db, kind, refresh_models=not no_refresh)
    except Exception as exc:
        job_failed(exc)
    text = worklist.to_csv(rows)
    if str(out) == "-":
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {len(rows):,} rows to {out}", err=True)
    sys.exit(EXIT_OK)


@review.command("apply")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--by", help="Who decided (default: the database role).")
@click.option("--dry-run", is_flag=True,
              help="Check the file and show what each decision would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_settings
def apply_command(settings: Settings, path: Path, by: str | None, dry_run: bool,
                  as_json: bool) -> None:
    """Apply a filled worklist file: decision accept (keep the stored identity as the
    librarian's), reject (remove it, and keep LML's from coming back until a person
    decides again) or set (use the ids in the row's id columns). Lines without a decision
    are left alone. Any bad line (unknown library_id, bad decision, an id of the wrong
    form) is reported with its line number and nothing from the file is applied.

    The decisions land in identity_loader.review_decisions with who and when, then the
    merge writes them to the station's identity tables as a librarian's rows (notes
    `librarian: ...`), which no later verdict overwrites.
    """
    from library_identity.preflight import require_database_ready
    from library_identity.resolve.options import ResolveOptions
    from library_identity.review import decisions

    db = settings.job_database()
    try:
        require_database_ready(db)
        done = decisions.apply(db, path, by=by, dry_run=dry_run,
                               dbt_vars=ResolveOptions().dbt_vars())
    except decisions.BadFile as exc:
        fail(f"{path}: {exc}; nothing was applied", EXIT_USAGE)
    except Exception as exc:
        job_failed(exc)
    found = done.review
    if found.bad:
        for bad in found.bad:
            click.echo(f"{path}:{bad.line}: {bad.message}", err=True)
        fail(f"{path}: {len(found.bad)} bad line{'s' if len(found.bad) != 1 else ''} (line "
             f"{', '.join(str(b.line) for b in found.bad[:10])}"
             f"{', ...' if len(found.bad) > 10 else ''}); nothing was applied", EXIT_USAGE)
    summary = {"dry_run": dry_run, "decided_by": done.by, "undecided_lines": found.undecided,
               "decisions": [{"line": d.line, "library_id": d.library_id,
                              "decision": d.decision, "change": d.change}
                             for d in found.decisions]}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        print_table(f"review {'dry run' if dry_run else 'applied'}: {len(found.decisions)} "
                    f"decisions by {done.by}", ("line", "library_id", "decision", "change"),
                    [(d.line, d.library_id, d.decision, d.change) for d in found.decisions])
        if done.merge is not None and done.merge.merge_id is None and done.merge.success:
            click.echo("merge: the decisions were written to the station")
        elif done.merge is not None:
            print_merge(done.merge)
    if done.merge is not None and not done.merge.success:
        fail("the decisions are recorded, but the merge failed: " +
             "; ".join(done.merge.failures) + "; `library-identity merge` writes them",
             EXIT_GATE)
    sys.exit(EXIT_OK)
