"""Commands that work on the artifact store directly: push, pull, show, artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from aeromancy.cli.state import CliState
from aeromancy.errors import UsageError
from aeromancy.store import ArtifactVersion, parse_ref

#: Width used when stdout is not a terminal, so a sha256 never gets folded or cut.
PIPE_WIDTH = 200


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPE_WIDTH)


def _state(ctx: click.Context) -> CliState:
    state = ctx.find_object(CliState)
    return state if state is not None else CliState()


def parse_metadata(text: str | None) -> dict[str, Any]:
    """Return the ``--metadata`` JSON object ({} when absent); raise UsageError if malformed."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"--metadata is not valid JSON: {exc}", "give a JSON object, e.g. '{\"rows\": 10}'"
        ) from exc
    if not isinstance(value, dict):
        raise UsageError(
            f"--metadata must be a JSON object, not {type(value).__name__}",
            "give a JSON object, e.g. '{\"rows\": 10}'",
        )
    return value


def human_size(size: int) -> str:
    """Return ``size`` bytes as a short human-readable figure (``1.5 MiB``)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _view_for(ref: str) -> str:
    """Return the namespace to resolve ``ref`` in: dev only when it names a devN version."""
    return "dev" if parse_ref(ref).namespace == "dev" else "tracked"


@click.command()
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--type", "type_", default="artifact", show_default=True, help="Artifact type.")
@click.option("--metadata", metavar="JSON", default=None, help="A JSON object stored as-is.")
@click.pass_context
def push(ctx: click.Context, name: str, path: Path, type_: str, metadata: str | None) -> None:
    """Publish the file or directory PATH as the next version of artifact NAME."""
    state = _state(ctx)
    fields = parse_metadata(metadata)
    version = state.store.publish(state.settings.project, name, path, type=type_, metadata=fields)
    _console().print(
        f"pushed [bold]{version.ref}[/bold]: {len(version.files)} file(s), "
        f"{human_size(version.size)}, {version.digest}",
        highlight=False,
    )


@click.command()
@click.argument("ref", metavar="NAME[:vN]")
@click.argument("dest", type=click.Path(path_type=Path))
@click.pass_context
def pull(ctx: click.Context, ref: str, dest: Path) -> None:
    """Write the files of artifact version NAME[:vN] under DEST (read-only)."""
    state = _state(ctx)
    version = state.store.resolve(ref, state.settings.project, _view_for(ref))
    state.store.materialize(version, dest)
    _console().print(
        f"pulled [bold]{version.ref}[/bold] into {dest}: {len(version.files)} file(s), "
        f"{human_size(version.size)}",
        highlight=False,
    )


@click.command()
@click.argument("ref", metavar="NAME[:vN]")
@click.pass_context
def show(ctx: click.Context, ref: str) -> None:
    """Show a version's files (path, size, sha256), metadata, type and producing run."""
    state = _state(ctx)
    version = state.store.resolve(ref, state.settings.project, _view_for(ref))
    console = _console()
    for label, value in _summary_rows(version):
        console.print(f"[bold]{label:<9}[/bold] {value}", highlight=False)
    table = Table("path", "size", "sha256", title=None)
    for entry in version.files:
        table.add_row(entry.path, str(entry.size), entry.sha256)
    console.print(table)


def _summary_rows(version: ArtifactVersion) -> list[tuple[str, str]]:
    return [
        ("artifact", version.ref),
        ("type", version.type),
        ("created", version.created),
        ("run", version.run_id or "- (pushed by hand)"),
        ("digest", version.digest),
        ("size", f"{human_size(version.size)} in {len(version.files)} file(s)"),
        ("metadata", json.dumps(version.metadata, sort_keys=True)),
    ]


@click.command()
@click.option("--dev", is_flag=True, help="Include dev versions (the view of a --dev run).")
@click.pass_context
def artifacts(ctx: click.Context, dev: bool) -> None:
    """List every artifact of the project with its newest version."""
    state = _state(ctx)
    project = state.settings.project
    newest = state.store.list_artifacts(project, "dev" if dev else "tracked")
    console = _console()
    if not newest:
        console.print(
            f"project {project} has no artifacts in {state.store.describe()}", highlight=False
        )
        return
    table = Table("artifact", "newest", "type", "files", "size", "created", "run")
    for version in newest:
        table.add_row(
            version.name,
            version.label,
            version.type,
            str(len(version.files)),
            human_size(version.size),
            version.created,
            version.run_id or "-",
        )
    console.print(table)


COMMANDS: list[click.Command] = [push, pull, show, artifacts]
