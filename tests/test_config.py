"""A job's settings are declared once (library_identity.config): the command line and the options'
validate() refuse the same values with the same message, and the defaults agree."""

from __future__ import annotations

from dataclasses import fields

import click
import pytest
from click.testing import CliRunner

from library_identity.cli import main
from library_identity.cli.app import options_from
from library_identity.config import flag_name, setting_of
from library_identity.resolve.resolve_job import ResolveOptions
from library_identity.rotation.backfill import BackfillOptions
from library_identity.rotation.refresh import RefreshOptions

COMMANDS = {ResolveOptions: ("resolve",), RefreshOptions: ("rotation", "refresh"),
            BackfillOptions: ("rotation", "backfill")}


def _command(options: type) -> object:
    group = main
    for name in COMMANDS[options]:
        group = group.commands[name]  # type: ignore[attr-defined]
    return group


CASES = [(options, name, option.name)
         for options in COMMANDS for name in (f.name for f in fields(options)
                                              if "setting" in f.metadata)
         for option in _command(options).params  # type: ignore[attr-defined]
         if option.name == name]


def test_every_declared_setting_is_an_option() -> None:
    declared = {(o, f.name) for o in COMMANDS for f in fields(o) if "setting" in f.metadata}
    on_cli = {(o, name) for o, name, _ in CASES}
    # The rotation backfill has no --max-consecutive-failures (it keeps the default).
    assert declared - on_cli == {(BackfillOptions, "max_consecutive_failures")}


# Requests per minute and the timeouts have no declared range: validate() says why.
RANGED = [case for case in CASES if setting_of(case[0], case[1])[1].min is not None]


@pytest.mark.parametrize(("options", "name", "param"), RANGED)
def test_out_of_range_is_refused_alike_by_the_cli_and_the_options(
        options: type, name: str, param: str) -> None:
    _, declared, kind = setting_of(options, name)
    assert declared.min is not None
    bad = kind(declared.min) - 1
    with pytest.raises(ValueError) as refused:
        options(**{name: bad}).validate()
    flag = flag_name(name)
    result = CliRunner().invoke(main, [*COMMANDS[options], f"--{flag}", str(bad)])
    assert result.exit_code == 2
    assert str(refused.value).removeprefix(f"{flag} ") in result.output


@pytest.mark.parametrize(("options", "name", "param"), CASES)
def test_the_cli_default_is_the_options_default(options: type, name: str, param: str) -> None:
    option = next(p for p in _command(options).params  # type: ignore[attr-defined]
                  if p.name == name)
    assert option.default == setting_of(options, name)[0].default
    options().validate()  # every default is within its range


def test_a_command_gets_one_options_object_built_from_its_declared_settings() -> None:
    """options_from: the declared settings are the command's options, in the order the class
    declares them, each with its environment variable; the command gets one options object,
    its own options named after a field included (`--stale-handles`, `--dry-run`)."""
    got: list[tuple[BackfillOptions, bool]] = []

    @click.command()
    @options_from(BackfillOptions, without=("max_consecutive_failures",))
    @click.option("--stale-handles", is_flag=True)
    @click.option("--dry-run", is_flag=True)
    @click.option("--json", "as_json", is_flag=True)
    def command(options: BackfillOptions, as_json: bool) -> None:
        got.append((options, as_json))

    declared = [f"--{flag_name(f.name)}" for f in fields(BackfillOptions)
                if "setting" in f.metadata and f.name != "max_consecutive_failures"]
    assert [p.opts[0] for p in command.params] == [*declared, "--stale-handles", "--dry-run",
                                                   "--json"]
    result = CliRunner().invoke(command, ["--limit", "3", "--stale-handles", "--json"],
                                env={"BACKFILL_QUIET_PAUSE_SECONDS": "7",
                                     "LML_OUTAGE_BUDGET_SECONDS": "0"})
    assert result.exit_code == 0, result.output
    assert got == [(BackfillOptions(limit=3, stale_handles=True, quiet_pause_s=7.0,
                                    lml_outage_budget_s=0.0), True)]
