"""``aeromancy rerun RUN_ID [--verify]``: run a recorded task again at its commit and inputs."""

from __future__ import annotations

import click

from aeromancy.cli.output import stdout_console
from aeromancy.cli.run import docker_args_option, env_var_option
from aeromancy.cli.state import CliState
from aeromancy.errors import NotFound, UsageError
from aeromancy.run_options import RunOptions
from aeromancy.tracking import TRACKERS


def refuse_dev_run(state: CliState, run_id: str) -> None:
    """Raise UsageError when ``run_id`` is a --dev run: only tracked runs can be rerun."""
    store, project = state.store, state.settings.project
    try:
        store.get_run_record(project, run_id)
    except NotFound:
        try:
            store.get_run_record(project, run_id, namespace="dev")
        except NotFound:
            raise
        raise UsageError(
            f"run {run_id} is a --dev run; only tracked runs can be rerun "
            "(they record the commit and the image)",
            "rerun a run of a tracked `aeromancy run`",
        ) from None


@click.command("rerun")
@click.argument("run_id")
@click.option("--verify", is_flag=True, help="Compare every output file with the original run.")
@click.option(
    "--tracker",
    type=click.Choice(TRACKERS),
    default=None,
    help="wandb, mlflow or none. Default: [tool.aeromancy] tracker, else wandb.",
)
@env_var_option
@docker_args_option
@click.pass_context
def rerun(
    ctx: click.Context,
    *,
    run_id: str,
    verify: bool,
    tracker: str | None,
    env_vars: tuple[str, ...],
    docker_args: str,
) -> None:
    """Run the recorded run RUN_ID again: its commit, image, config and input versions.

    With --verify, print "reproduced" when every output file has the original's sha256
    (exit 0), else the files and environment facts that differ (exit 1).
    """
    from aeromancy.launcher.rerun import rerun as rerun_recorded

    state = ctx.find_object(CliState) or CliState()
    refuse_dev_run(state, run_id)
    options = RunOptions(
        tasks=state.settings.tasks,
        tracker=tracker or state.settings.tracker,
        debug=state.debug,
        extra_env_vars=env_vars,
        extra_docker_run_args=docker_args,
    )
    console = stdout_console()
    code = rerun_recorded(state.settings, state.store, run_id, options, console, verify=verify)
    ctx.exit(code)


COMMANDS: list[click.Command] = [rerun]
