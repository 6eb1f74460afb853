"""`library-identity grants ROLE` and `library-identity doctor`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from library_identity import secrets
from library_identity.cli.app import Settings, main, pass_settings
from library_identity.errors import (
    EXIT_DB,
    EXIT_LML,
    EXIT_OK,
    EXIT_USAGE,
    LMLAuthError,
    LMLUnavailable,
)

if TYPE_CHECKING:
    from library_identity.preflight import Check

# Every route a job calls, with a body LML must reject (a 422 proves the route is served).
LML_ROUTES: tuple[tuple[str, dict[str, object]], ...] = (
    ("/api/v1/identity/bulk-resolve-libraries", {"inputs": [], "include_tracks": False}),
    ("/api/v1/identity/resolve", {}),
    ("/api/v1/cache/refresh-for-identities", {"identity_ids": []}),
)


@main.command("grants")
@click.argument("role")
@click.option("--database", "database_name", metavar="NAME",
              help="The station database (default: the one in DATABASE_URL, else postgres).")
@click.option("--take-over", is_flag=True,
              help="Also hand the project's schemas and every object in them to ROLE: for "
                   "a database migrated as another role (a superuser, say). Run the output "
                   "as a superuser or as their owner.")
@pass_settings
def grants_command(settings: Settings, role: str, database_name: str | None,
                   take_over: bool) -> None:
    """Print the SQL a DBA runs so that ROLE can run every command against an existing
    station database: the project's own schemas, owned by ROLE, and the narrowest table-
    and column-level privileges on wxyc_schema. Connects to nothing."""
    from library_identity.db import database_params
    from library_identity.privileges import grants_sql, takeover_sql

    if database_name is None:
        params = database_params(settings.database_url) if settings.database_url else {}
        database_name = params.get("dbname") or "postgres"
    script = takeover_sql if take_over else grants_sql
    click.echo(script(role, database_name), nl=False)


def lml_checks(settings: Settings) -> list[Check]:
    """LML reachable and healthy, and each route served with our key accepted."""
    from library_identity.cli.app import lml_client
    from library_identity.lml.gate import check_health, require_route
    from library_identity.preflight import Check

    if not settings.lml_url:
        return [Check("LML", "LML_URL set", False, "not set",
                      "set LML_URL and LML_API_KEY (or --lml-url, --lml-api-key)")]
    checks: list[Check] = []
    with lml_client(settings, timeout_s=10.0, max_attempts=1) as client:
        try:
            check_health(client)
            checks.append(Check("LML", "LML reachable and healthy", True,
                                secrets.mask_url(client.base_url)))
        except LMLUnavailable as exc:
            return [Check("LML", "LML reachable and healthy", False, str(exc))]
        for path, invalid_body in LML_ROUTES:
            name = f"route {path} served, key accepted"
            try:
                status = require_route(client, path, invalid_body)
                checks.append(Check("LML", name, True, f"probe answered HTTP {status}"))
            except LMLAuthError as exc:
                checks.append(Check("LML", name, False, str(exc), "check LML_API_KEY"))
            except LMLUnavailable as exc:
                checks.append(Check("LML", name, False, str(exc)))
    return checks


def print_checklist(checks: list[Check]) -> None:
    from library_identity.preflight import describe_check

    section = None
    for check in checks:
        if check.section != section:
            section = check.section
            click.echo(section)
        click.echo(secrets.scrub(describe_check(check)))


def doctor_exit_code(failed: list[Check]) -> int:
    """The database first: a job would refuse to start on any of those (exit 6)."""
    if any(c.section != "LML" for c in failed):
        return EXIT_DB
    if any(c.name == "LML_URL set" for c in failed):
        return EXIT_USAGE
    return EXIT_LML


@main.command("doctor")
@click.option("--skip-lml", is_flag=True, help="Check the database only.")
@pass_settings
def doctor_command(settings: Settings, skip_lml: bool) -> None:
    """Check, as the configured role, that everything the project needs is in place, and
    print a checklist: the server version (14 or later); every station table and column
    the project reads or writes, with a usable type; each privilege, with the exact
    statement for one that is missing; the migrations; LML reachable, the routes served
    and the key accepted. Writes nothing. Exit 0 when all pass; 6 when the database
    cannot be reached or anything in it is missing; otherwise 3 when LML failed a check,
    2 when LML_URL is not set."""
    from library_identity.cli.app import job_failed
    from library_identity.db import resolve_database
    from library_identity.preflight import database_checks

    try:
        # A URL is checked here, not by settings.database(): a role without CONNECT is one
        # of the things doctor reports (with its grant), not a bare connection failure.
        db = resolve_database(settings.database_url) if settings.database_url \
            else settings.database()
        checks = database_checks(db)
    except Exception as exc:
        job_failed(exc)
    click.echo(f"library-identity doctor: {db.describe()}")
    if not skip_lml:
        checks += lml_checks(settings)
    print_checklist(checks)
    failed = [c for c in checks if c.blocking]
    warned = sum(not c.ok and not c.blocking for c in checks)
    warnings = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
    if failed:
        click.echo(f"{len(failed)} of {len(checks)} checks failed{warnings}")
        sys.exit(doctor_exit_code(failed))
    click.echo(f"all {len(checks) - warned} needed checks passed{warnings}" if warned
               else f"all {len(checks)} checks passed")
    sys.exit(EXIT_OK)
