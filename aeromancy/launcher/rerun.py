"""``aeromancy rerun RUN_ID [--verify]``: one recorded task run, again, as it was.

The recorded commit is checked out into a temporary git worktree (the user's own
tree is neither used nor touched), every input is pinned to its recorded version,
the task gets its recorded config, and the recorded image runs it (the local one,
else the one saved in the store) with the recorded code package mounted (else the
commit's tree packed from git, which is said in one line). Only where the image is in
neither place is it rebuilt from that commit, which is said in one line too.
``--verify`` then compares every output file's sha256 with the original's (and, after
a rebuild, names the environment facts that differ). W&B runs go where the project's
own do (``$WANDB_DIR``, else the project's ``wandb/``), never into the temporary
worktree.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from aeromancy.environments.code_package import CodePackage
from aeromancy.errors import NotFound, UsageError
from aeromancy.experiments.compare import (
    Difference,
    compare_environments,
    compare_outputs,
    short,
)
from aeromancy.launcher.container import new_invocation_id
from aeromancy.launcher.git_gate import check_committed_tree, git
from aeromancy.launcher.lockfile import check_lockfile
from aeromancy.run_options import RunOptions
from aeromancy.settings import Settings, load_settings
from aeromancy.store import Store
from aeromancy.tracking.wandb_setup import wandb_dir


def rerun(
    settings: Settings,
    store: Store,
    run_id: str,
    options: RunOptions,
    console: Console,
    *,
    verify: bool,
) -> int:
    """Run the recorded run ``run_id`` again; return its exit code, or with ``verify``
    0 when every output file is identical and 1 when not (the differences are printed).
    """
    from aeromancy.launcher import run_committed

    record = store.get_run_record(settings.project, run_id)
    commit = str(record.get("git_commit") or "")
    if not commit:
        raise UsageError(f"run {run_id} recorded no git commit", "only tracked runs can be rerun")
    repo_root, subdir = _repository_of(settings.root, commit)
    invocation = new_invocation_id()
    images = recorded_images(store, record, console)
    package = recorded_code(store, settings.project, record, console)
    if images is None:
        console.print(
            f"environment rebuilt: image {short(str(record.get('image_id') or 'unknown'))} "
            f"of run {run_id} is neither on this Docker engine nor in the store "
            f"{store.describe()}; using the image commit {commit[:12]} builds",
            markup=False,
        )
    with _worktree(repo_root, commit) as worktree, _project_wandb_dir(settings.root):
        project_root = worktree / subdir
        committed = check_committed_tree(project_root, allow_detached=True)
        check_lockfile(project_root, committed)
        pinned = replace(
            options,
            tasks=str(record.get("tasks_module") or settings.tasks),
            only=(str(record["task"]),),
            overrides=config_overrides(str(record["task"]), record.get("config") or {}),
            artifact_overrides=input_pins(record),
            force=True,
            tags=(*options.tags, "rerun"),
        )
        rerun_settings = replace(load_settings(project_root), store=settings.store)
        overrides = {"git_branch": str(record.get("git_branch") or "")}
        code = run_committed(
            rerun_settings,
            pinned,
            committed,
            console,
            identity_overrides=overrides,
            invocation=invocation,
            images=images,
            code=package,
        )
    if code != 0 or not verify:
        return code
    again = _record_of_invocation(store, settings.project, invocation, str(record["task"]))
    differences = compare_outputs(store, record, again)
    if not differences:
        console.print(f"reproduced: run {again['run_id']} matches {run_id} file for file")
    else:
        console.print(f"[red]not reproduced[/]: run {again['run_id']} differs from {run_id}")
        _print_differences(console, differences)
    facts = compare_environments(record, again)
    if images is None:
        console.print("environment rebuilt" + ("" if facts else ": no recorded fact differs"))
        _print_differences(console, facts)
    elif differences:
        _print_differences(console, facts)
    return 1 if differences else 0


def recorded_images(
    store: Store, record: Mapping[str, Any], console: Console
) -> tuple[str, str] | None:
    """Return the recorded (run image, environment image) ids once both are local.

    Each is loaded from the store when this engine lacks it; None when either is in
    neither place (or the record names none), so the image must be rebuilt.
    """
    from aeromancy.environments.shelf import ImageShelf

    image_id = str(record.get("image_id") or "")
    environment_id = str(record.get("environment_image_id") or "")
    if not image_id:
        return None
    wanted = (environment_id, image_id) if environment_id else (image_id,)
    if not ImageShelf(store, console).load_ids(*wanted):
        return None
    return image_id, environment_id


def recorded_code(
    store: Store, project: str, record: Mapping[str, Any], console: Console
) -> CodePackage | None:
    """Return the recorded code package, or None (saying so) when the rerun must take
    the commit's tree from git: the record names none, or the store lacks it."""
    from aeromancy.environments.code_package import find

    digest = str(record.get("code_package") or "")
    commit = str(record.get("git_commit") or "")
    found = find(store, project, commit) if digest else None
    if found is not None and found.digest == digest:
        return found
    what = f"code package {digest[7:19]}" if digest else "no code package"
    where = "is not in the store" if digest else "is recorded"
    console.print(
        f"code from git: {what} of run {record.get('run_id')} {where}; "
        f"packing commit {commit[:12]} from the repository",
        markup=False,
        highlight=False,
    )
    return None


def _print_differences(console: Console, differences: list[Difference]) -> None:
    for difference in differences:
        console.print(
            f"  {difference.what}: {difference.original} -> {difference.rerun}", markup=False
        )


def config_overrides(task: str, config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Return ``--set`` pairs restoring ``config``: strings raw, everything else as JSON."""
    return tuple(
        (f"{task}.{name}", value if isinstance(value, str) else json.dumps(value))
        for name, value in sorted(config.items())
    )


def input_pins(record: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Return ``--artifact-override`` pairs pinning each recorded input to its version."""
    return tuple((str(entry["ref"]), str(entry["label"])) for entry in record.get("inputs", []))


def _repository_of(project_root: Path, commit: str) -> tuple[Path, str]:
    found = git(project_root, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise UsageError(f"{project_root} is not inside a git repository", "rerun from the project")
    repo_root = Path(found.stdout.strip())
    if git(repo_root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise UsageError(
            f"commit {commit[:12]} of this run is not in the repository",
            "fetch it (`git fetch --all`) and try again",
        )
    subdir = project_root.resolve().relative_to(repo_root.resolve())
    return repo_root, subdir.as_posix()


@contextmanager
def _project_wandb_dir(project_root: Path) -> Iterator[None]:
    """Point W&B at the project's own directory while the rerun runs from a worktree.

    W&B writes ``<WANDB_DIR>/wandb``; unset, that would be the temporary worktree,
    deleted afterwards with the rerun's offline W&B run in it.
    """
    if os.environ.get("WANDB_DIR"):
        yield
        return
    os.environ["WANDB_DIR"] = str(wandb_dir(project_root))
    try:
        yield
    finally:
        os.environ.pop("WANDB_DIR", None)


@contextmanager
def _worktree(repo_root: Path, commit: str) -> Iterator[Path]:
    """Yield a temporary detached worktree of ``commit``; remove it afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="aeromancy-rerun-"))
    path = folder / "tree"
    added = git(repo_root, "worktree", "add", "--detach", "--quiet", str(path), commit)
    if added.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise UsageError(f"git worktree add failed: {added.stderr.strip()}", "check the repository")
    try:
        yield path
    finally:
        git(repo_root, "worktree", "remove", "--force", str(path))
        shutil.rmtree(folder, ignore_errors=True)
        git(repo_root, "worktree", "prune")


def _record_of_invocation(
    store: Store, project: str, invocation: str, task: str
) -> Mapping[str, Any]:
    for record in store.list_run_records(project):
        if record.get("group") == invocation and record.get("task") == task:
            return record
    raise NotFound(f"the rerun of {task} wrote no run record", "see the output above")
