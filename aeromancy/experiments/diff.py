"""``aeromancy diff RUN_A RUN_B``: every way two task runs differ, from their records.

Sections: config values, input versions and digests, code (the commits and the files
that differ between them, read from the project's git repository), environment
(Python and Debian packages added, removed or changed; Python; image; lockfile),
metrics (a, b and delta) and output files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.errors import NotFound
from aeromancy.experiments.compare import compare_outputs
from aeromancy.experiments.flatten import flatten
from aeromancy.experiments.metrics import is_number
from aeromancy.experiments.results import metric_summary
from aeromancy.records import NAMESPACES

if TYPE_CHECKING:
    from aeromancy.store import Store

# (label, where in the record) of single environment facts.
ENVIRONMENT_FIELDS = (
    ("Python", ("environment", "python", "version")),
    ("image", ("image_id",)),
    ("environment image", ("environment_image_id",)),
    ("base image", ("base_image_id",)),
    ("lockfile hash", ("lockfile_hash",)),
    ("Aeromancy", ("aeromancy_version",)),
)


@dataclass(frozen=True)
class Change:
    """One key whose value differs: ``a`` and ``b`` are None where a run has no such key."""

    key: str
    a: Any
    b: Any


@dataclass(frozen=True)
class PackageChanges:
    """Packages one run has and the other not, and those at different versions."""

    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class CodeChanges:
    """The two runs' commits and the repository files that differ between them.

    ``note`` says why the files could not be listed (a commit not in the repository).
    """

    a: str
    b: str
    files: list[str] = field(default_factory=list)
    digest_changed: bool = False
    note: str = ""


@dataclass(frozen=True)
class RunDiff:
    """Everything that differs between run ``a`` and run ``b`` (empty lists: the same)."""

    a: str
    b: str
    tasks: Change
    config: list[Change]
    inputs: list[Change]
    code: CodeChanges
    environment: list[Change]
    python_packages: PackageChanges
    debian_packages: PackageChanges
    metrics: list[Change]
    outputs: list[Change]

    def as_json(self) -> dict[str, Any]:
        """Return the diff as plain JSON-ready data."""
        return asdict(self)


def find_record(store: Store, project: str, run_id: str) -> dict[str, Any]:
    """Return the record of ``run_id`` (or of the one run whose id starts so), in any namespace.

    Raises NotFound naming the newest runs that exist.
    """
    ids = {space: store.list_run_ids(project, space) for space in NAMESPACES}
    matches = [(space, i) for space, found in ids.items() for i in found if i.startswith(run_id)]
    exact = [(space, i) for space, i in matches if i == run_id]
    chosen = exact or matches
    if len(chosen) == 1:
        space, found_id = chosen[0]
        return store.get_run_record(project, found_id, namespace=space)
    if chosen:
        names = ", ".join(sorted(i for _, i in chosen)[:5])
        raise NotFound(f"run id {run_id} is ambiguous", f"it starts {names}")
    newest = sorted((i for found in ids.values() for i in found), reverse=True)[:5]
    shown = ", ".join(newest) if newest else "none yet"
    raise NotFound(f"no run {run_id} in project {project}", f"newest runs: {shown}")


def diff_runs(store: Store, a: Mapping[str, Any], b: Mapping[str, Any], root: Path) -> RunDiff:
    """Return every difference between records ``a`` and ``b``; ``root`` is the project."""
    environment_a, environment_b = a.get("environment") or {}, b.get("environment") or {}
    return RunDiff(
        a=str(a.get("run_id")),
        b=str(b.get("run_id")),
        tasks=Change("task", a.get("task"), b.get("task")),
        config=changed(flatten(a.get("config") or {}), flatten(b.get("config") or {})),
        inputs=_input_changes(a, b),
        code=code_changes(a, b, root),
        environment=[
            Change(label, _dig(a, path), _dig(b, path))
            for label, path in ENVIRONMENT_FIELDS
            if _dig(a, path) != _dig(b, path)
        ],
        python_packages=package_changes(
            environment_a.get("python_packages"), environment_b.get("python_packages")
        ),
        debian_packages=package_changes(
            environment_a.get("debian_packages"), environment_b.get("debian_packages")
        ),
        metrics=_metric_changes(a, b),
        outputs=[Change(d.what, d.original, d.rerun) for d in compare_outputs(store, a, b)],
    )


def changed(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Change]:
    """Return the keys whose values differ, sorted (None for a key one side lacks)."""
    return [
        Change(key, a.get(key), b.get(key))
        for key in sorted(a.keys() | b.keys())
        if key not in a or key not in b or not _same(a[key], b[key])
    ]


def _same(x: Any, y: Any) -> bool:
    # 1 and 1.0 are different config values (they fingerprint differently); True is not 1.
    return type(x) is type(y) and bool(x == y)


def _input_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Change]:
    def versions(record: Mapping[str, Any]) -> dict[str, str]:
        return {
            str(entry.get("ref")): f"{entry.get('name')}:{entry.get('label')} {entry.get('digest')}"
            for entry in record.get("inputs") or ()
        }

    return changed(versions(a), versions(b))


def package_changes(a: Any, b: Any) -> PackageChanges:
    """Return what changed from package list ``a`` to ``b`` (name -> version; None: unknown)."""
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return PackageChanges()
    result = PackageChanges()
    for change in changed(dict(a), dict(b)):
        if change.a is None:
            result.added.append(change)
        elif change.b is None:
            result.removed.append(change)
        else:
            result.changed.append(change)
    return result


def _metric_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Change]:
    last_a = {name: s.get("last") for name, s in metric_summary(a).items()}
    last_b = {name: s.get("last") for name, s in metric_summary(b).items()}
    return changed(last_a, last_b)


def delta(change: Change) -> float | None:
    """Return ``b - a`` for two numbers, else None."""
    if is_number(change.a) and is_number(change.b):
        return float(change.b - change.a)
    return None


def _dig(record: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def code_changes(a: Mapping[str, Any], b: Mapping[str, Any], root: Path) -> CodeChanges:
    """Return the runs' commits and the files that differ between them, from git at ``root``."""
    commit_a, commit_b = str(a.get("git_commit") or ""), str(b.get("git_commit") or "")
    digest_changed = (a.get("code") or {}).get("digest") != (b.get("code") or {}).get("digest")
    if not commit_a or not commit_b:
        return CodeChanges(commit_a, commit_b, [], digest_changed, "a run recorded no commit")
    if commit_a == commit_b:
        return CodeChanges(commit_a, commit_b, [], digest_changed)
    try:
        files = changed_files(root, commit_a, commit_b)
    except LookupError as exc:
        return CodeChanges(commit_a, commit_b, [], digest_changed, str(exc))
    return CodeChanges(commit_a, commit_b, files, digest_changed)


def changed_files(root: Path, commit_a: str, commit_b: str) -> list[str]:
    """Return the paths that differ between two commits of the repository holding ``root``.

    Raises LookupError when there is no repository or it lacks either commit.
    """
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
        first, second = repo.commit(commit_a), repo.commit(commit_b)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise LookupError(f"{root} is not in a git repository") from exc
    except (ValueError, git.BadName) as exc:
        raise LookupError("a commit is not in this repository (git fetch?)") from exc
    paths: set[str] = set()
    for item in first.diff(second):
        paths.update(p for p in (item.a_path, item.b_path) if p)
    return sorted(paths)
