"""The command registry: every command is listed, with its own help, and imported when used."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click
from click.testing import CliRunner

import aeromancy.cli
from aeromancy.cli import COMMANDS, load_command, main

LOADED_BY = """
import sys
from aeromancy.cli import main
try:
    main([{arg!r}])
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)))
"""


def modules_loaded_by(arg: str) -> set[str]:
    """Return the modules a fresh interpreter holds after ``aeromancy <arg>``."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED_BY.format(arg=arg)],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(result.stdout.split())


def test_each_entry_names_its_command_and_its_first_sentence() -> None:
    for name, entry in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert entry.short_help == command.get_short_help_str(10**6)


def test_every_command_a_module_defines_is_registered() -> None:
    defined: set[str] = set()
    subcommands: set[int] = set()  # those of a group (``cluster up``) are the group's
    for info in pkgutil.iter_modules(aeromancy.cli.__path__):
        module = importlib.import_module(f"aeromancy.cli.{info.name}")
        commands = [value for value in vars(module).values() if isinstance(value, click.Command)]
        for value in commands:
            if isinstance(value, click.Group) and value is not main:
                subcommands.update(id(sub) for sub in value.commands.values())
        for value in commands:
            if value.name and value is not main and id(value) not in subcommands:
                defined.add(value.name)
    assert defined <= set(COMMANDS)


def test_help_lists_every_command_with_its_help() -> None:
    result = CliRunner().invoke(main, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = result.output.split("Commands:\n", 1)[1]
    for name, entry in COMMANDS.items():
        assert f"  {name} " in listed
        assert entry.short_help in listed


def test_help_and_version_import_no_command() -> None:
    commands = {f"aeromancy.cli.{entry.target.partition(':')[0]}" for entry in COMMANDS.values()}
    for arg in ("--help", "--version"):
        loaded = modules_loaded_by(arg)
        assert not loaded & commands, arg
        assert "rich" not in loaded, arg
        assert "aeromancy.store" not in loaded, arg


def test_version_is_printed() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"aeromancy, version {aeromancy.__version__}\n"


def test_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output
