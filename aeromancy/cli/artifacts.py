"""Commands that work on the artifact store directly: push, pull, show, artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from aeromancy.cli.output import (
    column,
    human_size,
    print_fields,
    print_table,
    print_warning,
    stderr_console,
    stdout_console,
    table,
    timestamp,
)
from aeromancy.cli.owner import check_project
from aeromancy.cli.state import CliState
from aeromancy.errors import UsageError
from aeromancy.store import ArtifactVersion, parse_ref
from aeromancy.tracking import TRACKERS, make_tracker
from aeromancy.tracking.base import Tracker


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


def _view_for(ref: str) -> str:
    """Return the namespace to resolve ``ref`` in: dev only when it names a devN version."""
    return "dev" if parse_ref(ref).namespace == "dev" else "tracked"


@click.command()
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--type", "type_", default="artifact", show_default=True, help="Artifact type.")
@click.option("--metadata", metavar="JSON", default=None, help="A JSON object stored as-is.")
@click.option(
    "--tracker",
    type=click.Choice(TRACKERS),
    default=None,
    help="Also log the version from a `push` run: [tool.aeromancy] tracker, else none.",
)
@click.pass_context
def push(
    ctx: click.Context,
    *,
    name: str,
    path: Path,
    type_: str,
    metadata: str | None,
    tracker: str | None,
) -> None:
    """Publish the file or directory PATH as the next version of artifact NAME."""
    state = _state(ctx)
    fields = parse_metadata(metadata)
    tracker_name = tracker or state.settings.tracker or "none"
    # Opened before publishing: a tracker that cannot be used refuses the push (exit 2).
    opened = make_tracker(tracker_name)
    claim_name = check_project(state)
    version = state.store.publish(state.settings.project, name, path, type=type_, metadata=fields)
    claim_name()
    console = stdout_console()
    console.print(
        f"pushed [bold]{version.ref}[/bold]: {len(version.files)} file(s), "
        f"{human_size(version.size)}, {version.digest}",
        highlight=False,
        soft_wrap=True,
    )
    if tracker_name != "none":
        _track_push(state, opened, version, tracker_name)


def _track_push(state: CliState, tracker: Tracker, version: ArtifactVersion, name: str) -> None:
    from aeromancy.identity import identity_from_git
    from aeromancy.tracking.push import track_push

    uris = {f.sha256: state.store.blob_uri(f.sha256) for f in version.files}
    err = stderr_console()
    identity = identity_from_git(state.settings.root)
    path = track_push(tracker, version, uris, identity, lambda line: print_warning(err, line))
    if path is not None:
        stdout_console().print(f"tracked in {name}: {path}", markup=False, highlight=False)


@click.command()
@click.argument("ref", metavar="NAME[:vN]")
@click.argument("dest", type=click.Path(path_type=Path))
@click.pass_context
def pull(ctx: click.Context, ref: str, dest: Path) -> None:
    """Write the files of artifact version NAME[:vN] under DEST (read-only)."""
    state = _state(ctx)
    version = state.store.resolve(ref, state.settings.project, _view_for(ref))
    state.store.materialize(version, dest)
    stdout_console().print(
        f"pulled [bold]{version.ref}[/bold] into {escape(str(dest))}: "
        f"{len(version.files)} file(s), {human_size(version.size)}",
        highlight=False,
        soft_wrap=True,
    )


@click.command()
@click.argument("ref", metavar="NAME[:vN]")
@click.pass_context
def show(ctx: click.Context, ref: str) -> None:
    """Show a version's files (path, size, sha256), metadata, type and producing run.

    A bare NAME is its newest version, dev or tracked (as for lineage).
    """
    state = _state(ctx)
    version = state.store.resolve(ref, state.settings.project, namespace="dev")
    console = stdout_console()
    print_fields(console, _summary_rows(version))
    console.print()
    files = table(column("path", "text"), column("size", "number"), "sha256")
    for entry in version.files:
        files.add_row(escape(entry.path), human_size(entry.size), entry.sha256)
    print_table(console, files)


def _summary_rows(version: ArtifactVersion) -> list[tuple[str, str]]:
    return [
        ("artifact", version.ref),
        ("type", version.type),
        ("created", f"{timestamp(version.created)} UTC"),
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
    console = stdout_console()
    if not newest:
        console.print(
            f"project {project} has no artifacts in {state.store.describe()}",
            markup=False,
            highlight=False,
        )
        return
    rows = table(
        "artifact",
        "newest",
        "type",
        column("files", "number"),
        column("size", "number"),
        "created (UTC)",
        "run",
    )
    for version in newest:
        rows.add_row(
            escape(version.name),
            version.label,
            escape(version.type),
            str(len(version.files)),
            human_size(version.size),
            timestamp(version.created),
            escape(version.run_id or "-"),
        )
    print_table(console, rows)


COMMANDS: list[click.Command] = [push, pull, show, artifacts]
