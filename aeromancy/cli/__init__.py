"""The ``aeromancy`` command line: a click group whose commands live one concept a module.

Every command raises :class:`aeromancy.errors.AeromancyError` for anything the user
can fix or that failed around them; this module turns it into one line on stderr and
the exit code from DESIGN.md. ``--debug`` shows the full traceback as well.

Commands are imported when used, not at start-up: ``aeromancy --version`` and
``aeromancy --help`` import click and nothing else heavy. A new command is one line
in :data:`COMMANDS` (tests/cli/test_lazy_commands.py checks each line against the
command it names).
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import click

from aeromancy import __version__
from aeromancy.cli.state import CliState
from aeromancy.errors import AeromancyError


class Entry(NamedTuple):
    """Where a command lives (``module:attribute`` under aeromancy.cli) and its ``--help`` line."""

    target: str
    short_help: str


#: Every command, by name. ``short_help`` is the first sentence of the command's docstring.
COMMANDS: dict[str, Entry] = {
    "artifacts": Entry(
        "artifacts:artifacts",
        "List every artifact of the project with its newest version.",
    ),
    "base-image": Entry(
        "base_image:base_image",
        "Build a Debian base image locally, for machines that reach no image registry.",
    ),
    "cluster": Entry(
        "cluster:cluster",
        "Start or stop a Dask scheduler and workers of the project's image on this machine.",
    ),
    "diff": Entry(
        "diff:diff",
        "List every difference between two runs: config, inputs, code, environment, metrics,"
        " outputs.",
    ),
    "gc": Entry(
        "gc:gc",
        "Delete the blobs, images and code packages that no manifest or run record references.",
    ),
    "graph": Entry("inspect:graph", "Draw the task graph (text, dot, mermaid or png)."),
    "images": Entry(
        "images:images",
        "List the project's environment images, local and stored, with the runs using them.",
    ),
    "init": Entry("init:init", "Create a new project in DIR (default: here) that runs at once."),
    "lineage": Entry("inspect:lineage", "Show the lineage tree of an artifact version."),
    "list": Entry("inspect:list_tasks", "List the tasks and whether each is up to date."),
    "pull": Entry(
        "artifacts:pull",
        "Write the files of artifact version NAME[:vN] under DEST (read-only).",
    ),
    "push": Entry(
        "artifacts:push",
        "Publish the file or directory PATH as the next version of artifact NAME.",
    ),
    "rerun": Entry(
        "rerun:rerun",
        "Run the recorded run RUN_ID again: its commit, image, config and input versions.",
    ),
    "results": Entry(
        "results:results",
        "Show one row per task run: config, metrics, outputs, time and resources.",
    ),
    "run": Entry("run:run", "Run the task graph, skipping what is up to date."),
    "runs": Entry("inspect:runs", "List run records, newest first (dev and tracked)."),
    "show": Entry(
        "artifacts:show",
        "Show a version's files (path, size, sha256), metadata, type and producing run.",
    ),
    "sync": Entry(
        "sync:sync",
        "Upload offline W&B runs, then declare each run's inputs in W&B.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import and return the command registered as ``name``."""
    module_name, _, attribute = COMMANDS[name].target.partition(":")
    command = getattr(importlib.import_module(f"{__name__}.{module_name}"), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name].target} is not a click command")
    return command


class AeromancyGroup(click.Group):
    """A click group of lazily imported commands that reports AeromancyError as one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        command = load_command(cmd_name)
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List every command with its registered one-line help, importing none of them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            # A stand-in command shortens the registered line exactly as click would.
            shown = self.commands.get(name) or click.Command(name, help=COMMANDS[name].short_help)
            rows.append((name, shown.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise  # the help text, as click prints it
        except click.UsageError as err:
            _refuse(ctx, _usage_line(err), 2)
            raise  # not reached: _refuse exits

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AeromancyError as err:
            _refuse(ctx, str(err), err.exit_code)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as err:  # click's own: a bad option, argument or PATH
            _refuse(ctx, _usage_line(err), 2)
        except PermissionError as err:  # a file of the user's no check above caught
            where = err.filename or "a file"
            _refuse(
                ctx,
                f"permission denied: {where} (make it readable for you, or give another path)",
                2,
            )


def _usage_line(err: click.UsageError) -> str:
    """Return click's usage error as one line: its message and where the help is."""
    message = err.format_message().rstrip()
    if err.ctx is None:
        return message
    return f"{message} (see `{err.ctx.command_path} --help`)"


def _refuse(ctx: click.Context, line: str, exit_code: int) -> None:
    """Print ``error: line`` on stderr (the traceback too with --debug) and exit."""
    import logging

    from aeromancy.cli.output import print_error, stderr_console

    state = ctx.find_object(CliState)
    if state is not None and state.debug:
        logging.getLogger("aeromancy").exception("error")
    print_error(stderr_console(), line)
    ctx.exit(exit_code)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"aeromancy, version {__version__}")
    ctx.exit()


@click.group(cls=AeromancyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    metavar="URL",
    default=None,
    help="Artifact store: a directory or s3://bucket/prefix (overrides AEROMANCY_STORE).",
)
@click.option("--debug", is_flag=True, help="Show debug logs and full tracebacks.")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.pass_context
def main(ctx: click.Context, store: str | None, debug: bool) -> None:
    """Aeromancy: reproducible, tracked ML pipelines."""
    import logging  # here, not at start-up: ``--version`` and ``--help`` log nothing

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    ctx.obj = CliState(store_override=store, debug=debug)
