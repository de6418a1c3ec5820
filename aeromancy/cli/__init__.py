"""The ``aeromancy`` command line: a click group whose commands live one concept a module.

Every command raises :class:`aeromancy.errors.AeromancyError` for anything the user
can fix or that failed around them; this module turns it into one line on stderr and
the exit code from DESIGN.md. ``--debug`` shows the full traceback as well.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from aeromancy import __version__
from aeromancy.cli import artifacts, init, inspect, rerun, run, sync
from aeromancy.cli.output import print_error, stderr_console
from aeromancy.cli.state import CliState
from aeromancy.errors import AeromancyError


class AeromancyGroup(click.Group):
    """A click group that reports AeromancyError as one line with its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AeromancyError as err:
            state = ctx.find_object(CliState)
            if state is not None and state.debug:
                logging.getLogger("aeromancy").exception("error")
            print_error(stderr_console(), str(err))
            ctx.exit(err.exit_code)


@click.group(cls=AeromancyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    metavar="URL",
    default=None,
    help="Artifact store: a directory or s3://bucket/prefix (overrides AEROMANCY_STORE).",
)
@click.option("--debug", is_flag=True, help="Show debug logs and full tracebacks.")
@click.version_option(__version__, prog_name="aeromancy")
@click.pass_context
def main(ctx: click.Context, store: str | None, debug: bool) -> None:
    """Aeromancy: reproducible, tracked ML pipelines."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    ctx.obj = CliState(store_override=store, debug=debug)


for _module in (artifacts, run, inspect, init, rerun, sync):
    for _command in _module.COMMANDS:
        main.add_command(_command)
