"""A job's settings are declared once (loader.config): the command line and the options'
validate() refuse the same values with the same message, and the defaults agree."""

from __future__ import annotations

from dataclasses import fields

import pytest
from click.testing import CliRunner

from loader.cli import main
from loader.config import setting_of
from loader.resolve.run import ResolveOptions

DECLARED = [f.name for f in fields(ResolveOptions) if "setting" in f.metadata]


@pytest.mark.parametrize("name", DECLARED)
def test_out_of_range_is_refused_alike_by_the_cli_and_the_options(name: str) -> None:
    _, declared, _ = setting_of(ResolveOptions, name)
    assert declared.min is not None
    bad = int(declared.min) - 1
    with pytest.raises(ValueError) as refused:
        ResolveOptions(**{name: bad}).validate()
    flag = f"--{name.replace('_', '-')}"
    result = CliRunner().invoke(main, ["resolve", flag, str(bad)])
    assert result.exit_code == 2
    assert str(refused.value).removeprefix(flag[2:] + " ") in result.output
    if declared.max is not None:
        too_big = int(declared.max) + 1
        result = CliRunner().invoke(main, ["resolve", flag, str(too_big)])
        assert result.exit_code == 2 and f"got {too_big}" in result.output


@pytest.mark.parametrize("name", DECLARED)
def test_the_cli_default_is_the_options_default(name: str) -> None:
    option = next(p for p in main.commands["resolve"].params if p.name == name)
    assert option.default == setting_of(ResolveOptions, name)[0].default
    ResolveOptions().validate()  # every default is within its range
