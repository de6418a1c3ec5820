"""``aeromancy gc``: delete the blobs, images and code packages nothing references."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from aeromancy.cli.output import human_size, print_warning, stderr_console, stdout_console
from aeromancy.cli.state import CliState

if TYPE_CHECKING:
    from aeromancy.environments.local_gc import LocalImages
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
    versions, except those a run record read as an input. In a project, the local
    Docker images the launcher built for it that no run record names (older than the
    grace period, used by no container) are removed too.
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
        return
    local = _local_images(state, report, grace * 60)
    if local is not None and (local.removed or local.in_use):
        console.print(local_summary(local, report.dry_run), markup=False, highlight=False)
        for name in local.removed:
            console.print(f"  {name}", markup=False, highlight=False)


def _local_images(state: CliState, report: GcReport, grace_seconds: float) -> LocalImages | None:
    """Collect the project's unused local images; None outside a project or without Docker."""
    from aeromancy.environments.layout import check_repository
    from aeromancy.environments.local_gc import collect_local_images
    from aeromancy.errors import AeromancyError
    from aeromancy.launcher.image import repository_name

    try:
        settings = state.settings
        configured = settings.image_repository
        repository = (
            check_repository(configured) if configured else repository_name(settings.project)
        )
    except AeromancyError:
        return None
    cutoff = time.time() - grace_seconds
    return collect_local_images(repository, report.record_images, cutoff, report.dry_run)


def local_summary(local: LocalImages, dry_run: bool) -> str:
    """Return the line saying which local images of the repository gc removed."""
    verb = "would remove" if dry_run else "removed"
    line = f"gc {verb} {len(local.removed)} local image(s) of {local.repository}"
    if local.in_use:
        line += f" ({len(local.in_use)} kept: a container uses it)"
    return line


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
