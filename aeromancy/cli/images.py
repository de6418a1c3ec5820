"""``aeromancy images``: the project's environment images, here and in the store."""

from __future__ import annotations

import click
from rich.markup import escape

from aeromancy.cli.output import column, print_table, stdout_console, table, timestamp
from aeromancy.cli.state import CliState

#: Run ids shown per image; the rest are counted.
SHOWN_RUNS = 3


@click.command("images")
@click.pass_context
def images(ctx: click.Context) -> None:
    """List the project's environment images, local and stored, with the runs using them."""
    from aeromancy.environments.catalog import list_images
    from aeromancy.environments.layout import check_repository
    from aeromancy.launcher.image import repository_name

    state = ctx.find_object(CliState) or CliState()
    settings = state.settings
    configured = settings.image_repository
    repository = check_repository(configured) if configured else repository_name(settings.project)
    records = state.store.list_run_records(settings.project)  # dev runs use no image
    entries = list_images(state.store, repository, records)
    console = stdout_console()
    if not entries:
        console.print(f"no environment images of {repository} here or in the store", markup=False)
        return
    rows = table(
        "image",
        column("tags", "text"),
        "local",
        "stored",
        column("size", "number"),
        "created (UTC)",
        column("runs", "text"),
    )
    for entry in entries:
        shown = ", ".join(entry.runs[:SHOWN_RUNS])
        more = len(entry.runs) - SHOWN_RUNS
        rows.add_row(
            entry.id.removeprefix("sha256:")[:12],
            escape(", ".join(sorted(entry.tags))) or "-",
            "yes" if entry.local else "no",
            "yes" if entry.stored else "no",
            f"{entry.size / 1e6:.0f} MB",
            timestamp(entry.created),
            escape(shown + (f" (+{more} more)" if more > 0 else "")) or "-",
        )
    print_table(console, rows)


COMMANDS: list[click.Command] = [images]
