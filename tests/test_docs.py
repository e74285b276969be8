"""Documentation that the tests keep true: help for every command, every key in config.toml."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import click
import pytest
from conftest import ROOT, Run

from digest.cli import cli
from digest.core.config import _DERIVED, _TABLES


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append(prefix + (name,))
        if isinstance(command, click.Group):
            out += all_commands(command, prefix + (name,))
    return out


@pytest.mark.parametrize("command", all_commands(cli), ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...], run_cli: Callable[..., Run]) -> None:
    result = run_cli(*command, "--help")
    assert result.code == 0
    assert "Usage: digest " + " ".join(command) in result.out
    summary = result.out.split("\n\n")[1].strip()
    assert len(summary) > 10, f"digest {' '.join(command)} has no help text"


def test_every_config_key_is_in_the_shipped_config_with_a_comment() -> None:
    text = (ROOT / "config.toml").read_text()
    data = tomllib.loads(text)
    lines = text.splitlines()
    for table, cls in _TABLES.items():
        assert table in data, f"config.toml lacks [{table}]"
        for f in fields(cls):
            if f.name in _DERIVED:
                continue
            key = f.name.rstrip("_")
            assert key in data[table], f"config.toml lacks [{table}] {key}"
    table = ""
    for i, line in enumerate(lines):
        if line.startswith("["):
            table = line
        if table != "[topics]" and re.match(r"^[A-Za-z_\"].*=", line):
            assert lines[i - 1].startswith("#"), f"config.toml line {i + 1} ({line.split('=')[0].strip()}) has no comment above it"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make preview" in first_block and "make test" in first_block
    for command in all_commands(cli):
        assert "digest " + " ".join(command) in readme, f"README does not describe digest {' '.join(command)}"


def test_makefile_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^preview:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "pytest" in makefile and "digest preview" in makefile


def test_subscribers_folder_explains_itself() -> None:
    readme = Path(ROOT / "subscribers" / "README.md").read_text()
    assert "back up" in readme.lower()


def test_the_readme_try_out_names_the_address_serve_prints() -> None:
    """A newcomer opens what the README says and what `digest serve` prints: the same address."""
    from digest.cli.serve import serve

    defaults = {p.name: p.default for p in serve.params}
    printed = f"http://{defaults['host']}:{defaults['port']}/subscribe"
    readme = (ROOT / "README.md").read_text()
    assert f"# prints {printed}" in readme and f"Subscribe at the address `digest serve` prints, {printed}" in readme
    assert "http://localhost:8000/subscribe" not in readme
