"""``aeromancy diff RUN_A RUN_B``: every difference between two task runs, or as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import click

from aeromancy.cli.state import CliState
from aeromancy.experiments.diff import (
    Change,
    PackageChanges,
    RunDiff,
    delta,
    diff_runs,
    find_record,
)


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _changes(changes: list[Change]) -> Iterator[str]:
    for change in changes:
        yield f"  {change.key}: {_text(change.a)} -> {_text(change.b)}"


def _packages(changes: PackageChanges) -> Iterator[str]:
    yield from (f"  + {c.key} {c.b}" for c in changes.added)
    yield from (f"  - {c.key} {c.a}" for c in changes.removed)
    yield from (f"  ~ {c.key} {c.a} -> {c.b}" for c in changes.changed)


def _metrics(changes: list[Change]) -> Iterator[str]:
    for change in changes:
        step = delta(change)
        shown = f" ({step:+.6g})" if step is not None else ""
        yield f"  {change.key}: {_text(change.a)} -> {_text(change.b)}{shown}"


def _code(diff: RunDiff) -> Iterator[str]:
    code = diff.code
    if code.a != code.b:
        yield f"  commit: {code.a[:12] or '(none)'} -> {code.b[:12] or '(none)'}"
        yield from (f"  file: {path}" for path in code.files)
    if code.note and code.a != code.b:
        yield f"  ({code.note})"
    if code.digest_changed and code.a == code.b:
        yield "  the task's code digest differs (uncommitted changes)"


def diff_lines(diff: RunDiff) -> list[str]:
    """Return the diff as text: a heading per section that has differences, one line each."""
    sections = [
        ("task", list(_changes([diff.tasks])) if diff.tasks.a != diff.tasks.b else []),
        ("config", list(_changes(diff.config))),
        ("inputs", list(_changes(diff.inputs))),
        ("code", list(_code(diff))),
        ("environment", list(_changes(diff.environment))),
        ("Python packages", list(_packages(diff.python_packages))),
        ("Debian packages", list(_packages(diff.debian_packages))),
        ("metrics", list(_metrics(diff.metrics))),
        ("output files", list(_changes(diff.outputs))),
    ]
    lines = [f"run {diff.a} -> run {diff.b}"]
    for title, body in sections:
        if body:
            lines.extend([title, *body])
    if len(lines) == 1:
        lines.append("no differences")
    return lines


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text")
@click.pass_context
def diff(ctx: click.Context, run_a: str, run_b: str, fmt: str) -> None:
    """List every difference between two runs: config, inputs, code, environment, metrics, outputs.

    RUN_A and RUN_B are run ids (or unique prefixes of them), as `aeromancy runs` lists.
    """
    state = ctx.find_object(CliState) or CliState()
    store, settings = state.store, state.settings
    a = find_record(store, settings.project, run_a)
    b = find_record(store, settings.project, run_b)
    found = diff_runs(store, a, b, settings.root)
    if fmt == "json":
        click.echo(json.dumps(found.as_json(), indent=2, sort_keys=True))
    else:
        click.echo("\n".join(diff_lines(found)))


COMMANDS: list[click.Command] = [diff]
