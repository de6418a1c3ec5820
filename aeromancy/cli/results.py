"""``aeromancy results [TASK]``: the run records as one table (table, CSV, JSON, markdown)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.markup import escape

from aeromancy.cli.output import (
    column,
    duration,
    human_size,
    print_plain_table,
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

#: Above this many rows the table is laid out as plain aligned text: rich takes one or
#: two milliseconds per row to measure and draw.
RICH_ROWS = 200


def _started(value: Any) -> str:
    text = str(value)
    # The records' own form (UTC, ISO): cut rather than parse 10,000 of them.
    if len(text) >= 19 and text.endswith("+00:00") and text[10] == "T":
        return f"{text[:10]} {text[11:19]}"
    return timestamp(text)


_SHOWN_AS: dict[str, Callable[[Any], str]] = {
    "duration": lambda v: duration(float(v)) if is_number(v) else short_text(v),
    "started": _started,
    "memory": lambda v: human_size(int(v)) if is_number(v) else short_text(v),
}


def _column_text(rows: ResultTable, name: str) -> list[str]:
    """Return the cells of column ``name`` as people read them (plain text, ``-`` for none)."""
    shown = _SHOWN_AS.get(name, short_text)
    return ["-" if v is None else shown(v) for v in rows.column_values(name)]


def _is_numeric(rows: ResultTable, name: str) -> bool:
    return all(v is None or is_number(v) for v in rows.column_values(name))


def print_results(rows: ResultTable) -> None:
    """Print ``rows`` in the shared table style, numbers right-aligned.

    A table of more than RICH_ROWS rows is printed as plain aligned text instead.
    """
    console = stdout_console()
    if not rows.rows:
        console.print("no runs match", markup=False)
        return
    numeric = [name for name in rows.columns if _is_numeric(rows, name)]
    cells = list(zip(*(_column_text(rows, name) for name in rows.columns), strict=True))
    if len(rows) > RICH_ROWS:
        right = [i for i, name in enumerate(rows.columns) if name in numeric]
        print_plain_table(console, rows.columns, cells, right)
        return
    shown = table(*(column(n, "number" if n in numeric else "id") for n in rows.columns))
    for line in cells:
        shown.add_row(*(escape(cell) for cell in line))
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
