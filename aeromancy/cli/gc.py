"""``aeromancy gc``: delete the blobs, images and code packages nothing references."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from aeromancy.cli.output import human_size, print_warning, stderr_console, stdout_console
from aeromancy.cli.state import CliState

if TYPE_CHECKING:
    from aeromancy.store.gc import GcReport


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option(
    "--keep-last",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Also delete all but the newest N versions of each artifact (not run inputs).",
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
    """Delete the blobs, images and code packages that no manifest or run record references.

    \b
    Kept: every version's files, and the output logs, environment images and code
    packages run records name. --keep-last and --older-than also delete old
    versions, except those a run record read as an input.
    """
    from aeromancy.store.gc import GcOptions, collect

    state = ctx.find_object(CliState) or CliState()
    options = GcOptions(dry_run, keep_last, older_than, grace * 60)
    report = collect(state.store.backend, options)
    console = stdout_console()
    console.print(
        summary(report, state.store.describe()), markup=False, highlight=False, soft_wrap=True
    )
    for ref in report.versions:
        console.print(f"  {ref}", markup=False, highlight=False)
    if report.environments_kept:
        print_warning(
            stderr_console(),
            f"no image or code package deleted: {report.environments_kept}; run gc again later",
        )


def summary(report: GcReport, where: str) -> str:
    """Return the one-line summary of what gc deleted (or, dry, would delete) and freed."""
    verb = "would delete" if report.dry_run else "deleted"
    freed = "would free" if report.dry_run else "freed"
    line = (
        f"gc {verb} {len(report.versions)} version(s), {len(report.images)} image(s), "
        f"{len(report.code_packages)} code package(s) and {report.blobs} blob(s); "
        f"{freed} {human_size(report.blob_bytes)} in {where}"
    )
    kept = []
    if report.kept_inputs:
        kept.append(f"{report.kept_inputs} old version(s) kept: run records read them")
    if report.kept_young:
        kept.append(f"{report.kept_young} unreferenced blob(s) younger than the grace period kept")
    return line + (f" ({'; '.join(kept)})" if kept else "")
