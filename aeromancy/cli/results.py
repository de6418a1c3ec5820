"""``aeromancy results [TASK]``: the run records as one table (table, CSV, JSON, markdown)."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from aeromancy.cli.output import (
    column,
    duration,
    human_size,
    print_table,
    print_warning,
    stderr_console,
    stdout_console,
    table,
    timestamp,
)
from aeromancy.cli.state import CliState
from aeromancy.errors import UsageError
from aeromancy.experiments.api import load_results
from aeromancy.experiments.metrics import is_number
from aeromancy.experiments.results import Query
from aeromancy.experiments.table import FORMATS, ResultTable, render, short_text


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "duration" and is_number(value):
        return duration(float(value))
    if name == "started":
        return timestamp(str(value))
    if name == "memory" and is_number(value):
        return human_size(int(value))
    return escape(short_text(value))


def print_results(rows: ResultTable) -> None:
    """Print ``rows`` in the shared table style, numbers right-aligned."""
    console = stdout_console()
    if not rows.rows:
        console.print("no runs match", markup=False)
        return
    numeric = {
        name
        for name in rows.columns
        if all(v is None or is_number(v) for v in rows.column_values(name))
    }
    shown = table(*(column(n, "number" if n in numeric else "id") for n in rows.columns))
    for row in rows.rows:
        shown.add_row(*(_cell(name, row.get(name)) for name in rows.columns))
    print_table(console, shown)


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _check_one_selection(all_runs: bool, since: str | None, group: str | None) -> None:
    given = [
        flag for flag, on in (("--all", all_runs), ("--since", since), ("--group", group)) if on
    ]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} both choose runs", "give one of them")


@click.command("results")
@click.argument("task", required=False)
@click.option("--all", "all_runs", is_flag=True, help="Every run (default: the newest invocation).")
@click.option("--since", metavar="WHEN", help="Runs started since 30m, 2h, 7d, 1w or a date.")
@click.option("--group", metavar="INVOCATION", help="Runs of this invocation.")
@click.option(
    "--where",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keep rows where a column equals VALUE (also !=, <, <=, >, >=; repeatable).",
)
@click.option("--sort", metavar="[-]COLUMN", help="Sort by a column; a leading - sorts descending.")
@click.option(
    "--metrics",
    "statistics",
    multiple=True,
    metavar="last,min,max",
    help="Which value of each metric to show (default: last).",
)
@click.option("--group-by-config", is_flag=True, help="Mean, std and n over runs of one config.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def results(
    ctx: click.Context,
    *,
    task: str | None,
    all_runs: bool,
    since: str | None,
    group: str | None,
    where: tuple[str, ...],
    sort: str | None,
    statistics: tuple[str, ...],
    group_by_config: bool,
    fmt: str,
) -> None:
    """Show one row per task run: config, metrics, outputs, time and resources.

    Reads the run records only (no tracker needed). TASK keeps the runs of one task.
    """
    _check_one_selection(all_runs, since, group)
    state = ctx.find_object(CliState) or CliState()
    query = Query(
        task=task,
        all_runs=all_runs,
        since=since,
        group=group,
        where=where,
        sort=sort,
        metrics=_split(statistics) or ("last",),
        group_by_config=group_by_config,
    )
    err = stderr_console()
    rows = load_results(state.store, state.settings.project, query, lambda m: print_warning(err, m))
    if fmt == "table":
        print_results(rows)
    else:
        click.echo(render(rows, fmt), nl=False)


COMMANDS: list[click.Command] = [results]
