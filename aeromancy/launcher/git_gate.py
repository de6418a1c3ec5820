"""The git gate: a tracked run starts only from a clean, committed tree.

A tree is clean when ``git status`` reports no modified, staged or untracked
non-ignored file. The gate returns what the image is built from: the commit and
the tree object of the project directory at HEAD.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aeromancy.errors import DirtyTree, UsageError

MAX_LISTED_PATHS = 20

_STATUS_WORDS = {
    "M": "modified",
    "T": "type changed",
    "A": "added",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "U": "unmerged",
}


@dataclass(frozen=True)
class CommittedTree:
    """The committed state a tracked run is built from.

    ``subdir`` is the project directory relative to the repository root ('' at the root);
    ``tree`` is the git object id of that directory at ``commit``.
    """

    repo_root: Path
    subdir: str
    commit: str
    tree: str
    branch: str  # '' on a detached HEAD (only allowed for reruns)

    @property
    def treeish(self) -> str:
        """Return the git tree-ish of the project directory (``<commit>:<subdir>``)."""
        return f"{self.commit}:{self.subdir}" if self.subdir else self.commit


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Return the finished ``git -C repo args`` (its exit code is not checked)."""
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )


def check_committed_tree(project_root: Path, allow_detached: bool = False) -> CommittedTree:
    """Return the committed tree of ``project_root``, or refuse a dirty or unusable repo.

    Raises UsageError when git is missing, there is no repository, no commit or a detached
    HEAD (unless ``allow_detached``), and DirtyTree listing every uncommitted path.
    """
    if shutil.which("git") is None:
        raise UsageError("git is not installed", "install git, or use --dev to run on the host")
    found = git(project_root, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise UsageError(
            f"{project_root} is not inside a git repository; tracked runs record the commit",
            "run `git init` and commit the project, or use --dev",
        )
    repo_root = Path(found.stdout.strip())
    head = git(repo_root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head.returncode != 0:
        raise UsageError(
            "the git repository has no commits yet, so there is nothing to build",
            "commit the project first (`git add -A && git commit`), or use --dev",
        )
    branch = git(repo_root, "symbolic-ref", "--quiet", "--short", "HEAD").stdout.strip()
    if not branch and not allow_detached:
        raise UsageError(
            "HEAD is detached; tracked runs record the branch they ran on",
            "check out a branch (`git switch -c NAME`), or use --dev",
        )
    _refuse_uncommitted(repo_root)
    subdir = project_root.resolve().relative_to(repo_root.resolve()).as_posix()
    subdir = "" if subdir == "." else subdir
    commit = head.stdout.strip()
    treeish = f"{commit}:{subdir}" if subdir else f"{commit}^{{tree}}"
    tree = git(repo_root, "rev-parse", treeish).stdout.strip()
    return CommittedTree(repo_root, subdir, commit, tree, branch)


def uncommitted_paths(repo_root: Path) -> list[str]:
    """Return '<what>: <path>' for each modified, staged or untracked non-ignored file."""
    status = git(repo_root, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    if status.returncode != 0:
        raise UsageError(f"git status failed: {status.stderr.strip()}", "check the repository")
    entries = status.stdout.split("\0")
    found: list[str] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            index += 1  # a rename is followed by its source path
        found.append(f"{_describe(code)}: {path}")
    return found


def _describe(code: str) -> str:
    if code == "??":
        return "untracked"
    staged, unstaged = code[0], code[1]
    if staged not in " ?" and unstaged == " ":
        return "staged " + _STATUS_WORDS.get(staged, "change")
    if staged == " ":
        return _STATUS_WORDS.get(unstaged, "changed")
    return "staged and " + _STATUS_WORDS.get(unstaged, "changed")


LOCKFILE_NAME = "pdm.lock"


def _refuse_uncommitted(repo_root: Path) -> None:
    paths = uncommitted_paths(repo_root)
    if not paths:
        return
    listed = paths[:MAX_LISTED_PATHS]
    more = len(paths) - len(listed)
    listing = ", ".join(listed) + (f" and {more} more" if more else "")
    them = f"these {len(paths)} files" if len(paths) != 1 else "this file"
    # pdm.lock must be committed (the image is built from it): never advise ignoring it.
    ignore = "" if any(path.endswith(LOCKFILE_NAME) for path in paths) else ", add to .gitignore"
    raise DirtyTree(
        f"the git tree has uncommitted changes: {listing}",
        f"commit or stash {them}{ignore}, or use --dev",
    )
