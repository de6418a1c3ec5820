"""``aeromancy sync``: upload offline W&B runs and link their inputs in W&B."""

from __future__ import annotations

import os

import click

from aeromancy.cli.output import stderr_console
from aeromancy.cli.state import CliState
from aeromancy.errors import UsageError
from aeromancy.tracking import sync as wandb_sync
from aeromancy.tracking.mlflow import is_mlflow_path
from aeromancy.tracking.wandb_setup import resolve_mode, runs_dir

NAMESPACES = ("tracked", "dev")


@click.command()
@click.option(
    "--upload/--no-upload",
    default=True,
    show_default=True,
    help="Upload the project's offline W&B runs with `wandb sync` before linking.",
)
@click.pass_context
def sync(ctx: click.Context, upload: bool) -> None:
    """Upload offline W&B runs, then declare each run's inputs in W&B.

    Offline runs cannot call use_artifact; their inputs are recorded in the run
    config and linked here once the runs are on the server. Safe to repeat.
    """
    state = ctx.find_object(CliState) or CliState()
    if resolve_mode() != "online":
        raise UsageError(
            "W&B is offline here (no API key, or WANDB_MODE is offline/disabled)",
            "set WANDB_API_KEY or run `wandb login`, unset WANDB_MODE, then run aeromancy sync",
        )
    settings = state.settings
    console = stderr_console()
    if upload:
        pending = wandb_sync.pending_offline_runs(runs_dir(settings.root))
        console.print(f"uploading {len(pending)} offline W&B run(s)")
        wandb_sync.upload_offline_runs(pending)
    paths = [
        str(record["wandb_run"])
        for namespace in NAMESPACES
        for record in state.store.list_run_records(settings.project, namespace)
        if record.get("wandb_run") and not is_mlflow_path(str(record["wandb_run"]))
    ]
    api = wandb_sync.open_api()
    with console.status(f"linking the inputs of {len(paths)} W&B run(s)"):
        report = wandb_sync.link_inputs(api, paths, wandb_sync.default_entity(api, os.environ))
    _show(report)


def _show(report: wandb_sync.LinkReport) -> None:
    for path, ref in report.linked:
        click.echo(f"linked {ref} -> {path}")
    click.echo(f"{len(report.linked)} input(s) linked, {len(report.already_linked)} already linked")
    if report.missing_runs:
        click.echo(
            f"{len(report.missing_runs)} run(s) not on W&B yet (upload them with wandb sync "
            f"from the machine that ran them): {', '.join(report.missing_runs)}"
        )
    for path, ref in report.missing_artifacts:
        click.echo(f"not linked: {ref} of {path} has no W&B artifact (its producer was untracked)")


COMMANDS = [sync]
