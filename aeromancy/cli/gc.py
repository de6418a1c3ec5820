"""``aeromancy gc``: delete the blobs no manifest, image or code package references."""

from __future__ import annotations

import click

from aeromancy.cli.output import human_size, stdout_console
from aeromancy.cli.state import CliState


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option(
    "--keep-last",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Also delete all but the newest N versions of each artifact.",
)
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=None,
    metavar="DAYS",
    help="Delete only versions created more than DAYS ago (keeps the newest of each).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="MINUTES",
    help="Keep blobs younger than this (a push in progress uploads them first).",
)
@click.pass_context
def gc(
    ctx: click.Context,
    dry_run: bool,
    keep_last: int | None,
    older_than: float | None,
    grace: float,
) -> None:
    """Delete the blobs that no manifest, image or code package references."""
    from aeromancy.store.gc import GcOptions, collect

    state = ctx.find_object(CliState) or CliState()
    options = GcOptions(dry_run, keep_last, older_than, grace * 60)
    report = collect(state.store.backend, options)
    verb = "would delete" if dry_run else "deleted"
    freed = "would free" if dry_run else "freed"
    stdout_console().print(
        f"gc {verb} {len(report.versions)} version(s) and {report.blobs} blob(s); "
        f"{freed} {human_size(report.blob_bytes)} in {state.store.describe()}"
        + (
            f" ({report.kept_young} unreferenced blob(s) younger than the grace period kept)"
            if report.kept_young
            else ""
        ),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for ref in report.versions:
        stdout_console().print(f"  {ref}", markup=False, highlight=False)
    if report.code_packages:
        stdout_console().print(
            f"gc {verb} {len(report.code_packages)} code package(s) no run record uses",
            markup=False,
            highlight=False,
        )
