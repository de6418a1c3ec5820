"""The lockfile gate and the export of locked pins, both through pdm itself.

pdm is run as a subprocess (the ``pdm`` on PATH, else the one installed beside the
running interpreter, where ``scripts/setup`` puts it in a checkout's ``.venv``) so its
own notion of "the lock matches pyproject.toml" is the one enforced. The environment keeps pdm from
creating a virtualenv or a ``.pdm-python`` file in the project, which would
dirty the tree the gate has just checked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from aeromancy.errors import LockfileError, UsageError
from aeromancy.launcher.engine import launcher_cache_dir
from aeromancy.launcher.git_gate import CommittedTree, git

LOCKFILE = "pdm.lock"


def pdm_executable() -> str:
    """Return the pdm on PATH, else the one beside this interpreter; raise UsageError if none."""
    found = shutil.which("pdm") or shutil.which("pdm", path=str(Path(sys.executable).parent))
    if found is None:
        raise UsageError(
            "pdm is not on PATH; tracked runs check and install pdm.lock with it",
            "install pdm (https://pdm-project.org), or use --dev",
        )
    return found


def _pdm(project_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        PDM_CHECK_UPDATE="false",
        PDM_USE_VENV="false",
        PDM_PYTHON=env.get("PDM_PYTHON") or shutil.which("python3") or sys.executable,
        PDM_NON_INTERACTIVE="true",
    )
    for name in ("PDM_PROJECT", "PDM_LOCKFILE", "VIRTUAL_ENV"):
        env.pop(name, None)
    return subprocess.run(
        [pdm_executable(), *args, "--project", str(project_root)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def check_lockfile(project_root: Path, committed: CommittedTree | None = None) -> None:
    """Refuse (LockfileError) a missing, uncommitted or stale pdm.lock; return None if fine."""
    if not (project_root / LOCKFILE).is_file():
        raise LockfileError(
            f"{LOCKFILE} is missing; tracked runs install exactly the locked dependencies",
            "run `pdm lock` and commit pdm.lock",
        )
    if committed is not None:
        listed = git(committed.repo_root, "cat-file", "-e", f"{committed.treeish}:{LOCKFILE}")
        if listed.returncode != 0:
            raise LockfileError(
                f"{LOCKFILE} is not committed (is it in .gitignore?)",
                "commit pdm.lock; the image is built from the committed tree",
            )
    # pdm's verdict depends only on these two files, so a pass is remembered by their hash:
    # it saves pdm's start-up (most of a second) on every run of an unchanged project.
    passed = launcher_cache_dir() / "lock-checks" / _pair_digest(project_root)
    if passed.is_file():
        return
    result = _pdm(project_root, "lock", "--check", "--quiet")
    if result.returncode == 0:
        passed.parent.mkdir(parents=True, exist_ok=True)
        passed.touch()
        return
    detail = _last_line(result.stderr) or _last_line(result.stdout)
    if "doesn't satisfy" in detail or "outdated" in detail or not detail:
        raise LockfileError(
            f"{LOCKFILE} does not match pyproject.toml", "run `pdm lock` and commit pdm.lock"
        )
    raise LockfileError(f"pdm could not check {LOCKFILE}: {detail}", "run `pdm lock` and commit")


def _pair_digest(project_root: Path) -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", LOCKFILE):
        path = project_root / name
        digest.update(path.read_bytes() if path.is_file() else b"")
        digest.update(b"\0")
    return digest.hexdigest()


def export_requirements(project_root: Path, groups: tuple[str, ...] = ()) -> str:
    """Return the production pins of ``project_root``/pdm.lock as requirements with hashes.

    ``groups`` adds optional-dependency groups (extras) to the default one.
    """
    selected = [option for group in groups for option in ("--group", group)]
    result = _pdm(
        project_root, "export", "--format", "requirements", "--prod", "--no-extras", *selected
    )
    if result.returncode != 0:
        raise LockfileError(
            f"pdm could not export {LOCKFILE}: {_last_line(result.stderr)}",
            "run `pdm lock` and commit pdm.lock",
        )
    return result.stdout


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
