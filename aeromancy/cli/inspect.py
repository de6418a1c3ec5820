"""Read-only commands: ``list``, ``graph``, ``lineage`` and ``runs``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from aeromancy.cli.output import (
    column,
    duration_between,
    print_plain_table,
    print_table,
    status_markup,
    stdout_console,
    table,
    timestamp,
)
from aeromancy.cli.state import CliState
from aeromancy.errors import UsageError
from aeromancy.execution.executor import code_identities
from aeromancy.experiments.params import load_layers
from aeromancy.gcpause import gc_paused
from aeromancy.graph_formats import FORMATS, render, write_png
from aeromancy.identity import dev_environment_key
from aeromancy.planning import build_plan, load_graph
from aeromancy.records import (
    LineageNode,
    RecordIndex,
    all_records,
    downstream_of,
    upstream,
)
from aeromancy.status import TaskStatus, plan_status
from aeromancy.store.manifest import Namespace
from aeromancy.tasks import TaskSpec


def _state(ctx: click.Context) -> CliState:
    return ctx.find_object(CliState) or CliState()


#: Above this many tasks ``list`` sums up instead of printing a table (see --all).
FULL_TABLE_LIMIT = 1000
#: Above this many tasks the table is plain aligned lines: rich takes about 2 ms a row
#: to measure and wrap one (2 s for 1,000 tasks).
RICH_ROWS = 200
LIST_HEADERS = ("task", "inputs", "outputs", "status")


@click.command("list")
@click.argument("tasks", required=False)
@click.option("--dev", is_flag=True, help="Status against dev runs (default: tracked runs).")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help=f"Every task, even in a graph of more than {FULL_TABLE_LIMIT} tasks.",
)
@click.pass_context
def list_tasks(ctx: click.Context, tasks: str | None, dev: bool, show_all: bool) -> None:
    """List the tasks and whether each is up to date.

    A table of more than RICH_ROWS tasks is printed as plain aligned lines. A graph of
    more than FULL_TABLE_LIMIT tasks is summed up instead: how many are up to date, and
    each task that would run; ``--all`` prints every task as plain lines.
    """
    with gc_paused(freeze=True):  # everything built lives until the command ends
        _list(_state(ctx), tasks, dev, show_all)


def _list(state: CliState, tasks: str | None, dev: bool, show_all: bool) -> None:
    settings = state.settings
    tasks = tasks or settings.tasks
    namespace: Namespace = "dev" if dev else "tracked"
    graph = load_graph(tasks, settings.root, settings.project)
    layers = load_layers(settings.root)
    plan = build_plan(graph, state.store, namespace=namespace, layers=layers)
    index = RecordIndex.load(state.store, settings.project, namespace)
    code = code_identities(plan, settings.root, tasks)
    dev_key = dev_environment_key(settings.root)

    def environments(task: str) -> Sequence[str]:
        # On the host the image id of a future tracked run is unknown: any earlier one counts.
        return [dev_key] if dev else index.environments.get(task, [])

    statuses = plan_status(plan, state.store, index, code, environments, root=settings.root)
    console = stdout_console()
    if len(plan.order) <= RICH_ROWS:
        print_table(console, _status_table(graph.specs, plan.order, statuses))
    elif len(plan.order) <= FULL_TABLE_LIMIT or show_all:
        print_plain_table(console, LIST_HEADERS, _status_rows(graph.specs, plan.order, statuses))
    else:
        _print_status_summary(console, plan.order, statuses)


def _status_rows(
    specs: Mapping[str, TaskSpec], order: Sequence[str], statuses: Mapping[str, TaskStatus]
) -> Iterator[tuple[str, str, str, str]]:
    """Yield each task's row, as plain text: name, inputs, outputs (with types), status."""
    for name in order:
        spec = specs[name]
        status = statuses[name]
        outputs = ", ".join(f"{out} ({kind})" for out, kind in spec.outputs.items())
        shown = "up to date" if status.up_to_date else status.reason
        yield name, ", ".join(spec.inputs) or "-", outputs, shown


def _status_table(
    specs: Mapping[str, TaskSpec], order: Sequence[str], statuses: Mapping[str, TaskStatus]
) -> Table:
    rows = table("task", column("inputs", "text"), column("outputs", "text"), "status")
    for name, inputs, outputs, shown in _status_rows(specs, order, statuses):
        colour = "green" if statuses[name].up_to_date else "yellow"
        rows.add_row(name, escape(inputs), escape(outputs), f"[{colour}]{escape(shown)}[/]")
    return rows


def _print_status_summary(
    console: Console, order: Sequence[str], statuses: Mapping[str, TaskStatus]
) -> None:
    """Print how many tasks are up to date, then one plain line per task that would run."""
    stale = [name for name in order if not statuses[name].up_to_date]
    console.print(
        f"{len(order)} tasks: {len(order) - len(stale)} up to date, {len(stale)} would run "
        "(--all lists every task)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if stale:
        reasons = ((name, statuses[name].reason) for name in stale)
        print_plain_table(console, ("task", "why it would run"), reasons)


@click.command("graph")
@click.argument("tasks", required=False)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE instead of standard output (required for png).",
)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.pass_context
def graph(
    ctx: click.Context, tasks: str | None, fmt: str, output: Path | None, force: bool
) -> None:
    """Draw the task graph (text, dot, mermaid or png)."""
    settings = _state(ctx).settings
    if output is not None and os.path.lexists(output) and not force:
        raise UsageError(f"{output} already exists", "choose another file, or pass --force")
    task_graph = load_graph(tasks or settings.tasks, settings.root, settings.project)
    if fmt == "png":
        if output is None:
            raise UsageError("--format png needs -o FILE", "e.g. -o graph.png")
        write_png(task_graph, output)
        return
    text = render(task_graph, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def _run_label(run: Mapping[str, Any] | None) -> str:
    if run is None:
        return "[dim](pushed, no producing run)[/]"
    return (
        f"made by [bold]{escape(str(run.get('task')))}[/] in run {escape(str(run.get('run_id')))} "
        f"({status_markup(str(run.get('status', '?')))}, "
        f"{timestamp(str(run.get('started', '')))} UTC)"
    )


def _node_label(node: LineageNode) -> str:
    head = f"[cyan]{escape(node.ref)}[/] [dim]{escape(node.digest[:19])}[/]"
    if node.missing:
        return f"{head} [red](manifest missing from the store)[/]"
    if node.seen:
        return f"{head} [dim](shown above)[/]"
    return f"{head}  {_run_label(node.run)}"


def _add_children(tree: Tree, node: LineageNode) -> None:
    """Add ``node``'s descendants under ``tree`` (a stack, not recursion: chains are long)."""
    stack = [(tree, node)]
    while stack:
        branch, current = stack.pop()
        for child in current.children:
            stack.append((branch.add(_node_label(child)), child))


@click.command("lineage")
@click.argument("ref", metavar="NAME[:vN]")
@click.option("--down", is_flag=True, help="Show what was made from it instead.")
@click.pass_context
def lineage(ctx: click.Context, ref: str, down: bool) -> None:
    """Show the lineage tree of an artifact version."""
    state = _state(ctx)
    # The dev namespace resolves to the newest of dev and tracked versions.
    version = state.store.resolve(ref, state.settings.project, namespace="dev")
    node = downstream_of(state.store, version) if down else upstream(state.store, version)
    tree = Tree(_node_label(node))
    _add_children(tree, node)
    stdout_console().print(tree)


@click.command("runs")
@click.option("--task", "task_name", default=None, metavar="NAME", help="Only runs of this task.")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most N runs (the newest).",
    metavar="N",
)
@click.pass_context
def runs(ctx: click.Context, task_name: str | None, limit: int) -> None:
    """List run records, newest first (dev and tracked)."""
    state = _state(ctx)
    records = all_records(state.store, state.settings.project)
    if task_name is not None:
        records = [r for r in records if r.get("task") == task_name]
    console = stdout_console()
    if not records:
        console.print("no runs yet" + (f" of task {task_name}" if task_name else ""), markup=False)
        return
    rows = table(
        "run",
        "task",
        "status",
        "started (UTC)",
        column("took", "number"),
        column("outputs", "text"),
        "commit",
    )
    for record in records[:limit]:
        outputs = ", ".join(f"{o['name']}:{o['label']}" for o in record.get("outputs") or ())
        commit = str(record.get("git_commit", ""))[:7] + ("*" if record.get("git_dirty") else "")
        rows.add_row(
            escape(str(record.get("run_id"))),
            escape(str(record.get("task"))),
            status_markup(str(record.get("status", "?"))),
            timestamp(str(record.get("started", ""))),
            duration_between(str(record.get("started", "")), str(record.get("ended", ""))),
            escape(outputs) or "-",
            escape(commit) or "-",
        )
    print_table(console, rows)


COMMANDS: list[click.Command] = [list_tasks, graph, lineage, runs]
