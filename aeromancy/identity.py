"""The identity of a run: which code, image and environment produced it.

On the host it is read from git; inside the container the launcher passes it in
through ``AEROMANCY_*`` environment variables, since the image holds no .git.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from dataclasses import asdict, dataclass, fields
from pathlib import Path

ENV_PREFIX = "AEROMANCY_RUN_"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunIdentity:
    """Code and environment identity recorded with every task run. Empty string = unknown."""

    git_commit: str = ""
    git_branch: str = ""
    git_remote: str = ""
    git_message: str = ""
    git_dirty: bool = False
    image_id: str = ""
    environment_image_id: str = ""  # the image minus the project's code (its dependency image)
    # The content identity of what went into the dependency image (see environment_key).
    environment_recipe: str = ""
    base_image_id: str = ""
    lockfile_hash: str = ""
    dockerfile: str = ""
    # sha256:<hex> of the code package the task ran from (see environments/code_package.py)
    code_package: str = ""

    def to_environ(self) -> dict[str, str]:
        """Return the variables that carry this identity into a container."""
        return {
            ENV_PREFIX + name.upper(): ("1" if value is True else "" if value is False else value)
            for name, value in asdict(self).items()
        }

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> RunIdentity:
        """Return the identity passed in by the launcher (empty fields when absent)."""
        env = os.environ if environ is None else environ
        values: dict[str, str | bool] = {}
        for spec in fields(cls):
            raw = env.get(ENV_PREFIX + spec.name.upper(), "")
            values[spec.name] = raw == "1" if spec.type in (bool, "bool") else raw
        return cls(**values)  # type: ignore[arg-type]

    def environment_key(self) -> str:
        """Return what identifies the environment in a fingerprint.

        That is the recipe of the dependency image: the hash of what went in (base image
        id, the Dockerfile up to the code, so the Debian packages, the lockfile hash and
        Aeromancy's identity), the same on every machine and every rebuild of the same
        recipe, whereas a rebuild gets a new image id. Not the run image's: it also holds
        the code, which every commit changes, while the code already enters each
        fingerprint per task. Falls back to the dependency image id, then the run image
        id (identities from before the recipe was passed), or '' outside a tracked run.
        """
        return self.environment_recipe or self.environment_image_id or self.image_id


def lockfile_hash(root: Path) -> str:
    """Return ``sha256:<hex>`` of root/pdm.lock, or '' when there is none."""
    path = root / "pdm.lock"
    if not path.is_file():
        return ""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def dev_environment_key(root: Path) -> str:
    """Return the dev-run environment identity: lockfile hash plus the version of the
    Python the tasks run in (the project's interpreter, not Aeromancy's)."""
    from aeromancy.execution.interpreter import project_python, python_version

    python = python_version(project_python(root))
    return f"{lockfile_hash(root) or 'no-lockfile'};python={python}"


def identity_from_git(root: Path) -> RunIdentity:
    """Return the git identity of the repository holding ``root`` (empty outside git).

    Read with three calls of the git command rather than GitPython, whose import alone
    costs more than the rest of a no-op ``aeromancy run --dev``.
    """
    from aeromancy.tracking.secrets import redact_url

    status = _git(root, "--no-optional-locks", "status", "--porcelain=v2", "--branch", "-z")
    if status is None:
        return RunIdentity(lockfile_hash=lockfile_hash(root))
    entries = [entry for entry in status.split("\0") if entry]
    headers = dict(e[2:].partition(" ")[::2] for e in entries if e.startswith("# "))
    commit = headers.get("branch.oid", "")
    if not commit or commit == "(initial)":
        return RunIdentity(lockfile_hash=lockfile_hash(root))
    head = headers.get("branch.head", "")
    message = (_git(root, "log", "-1", "--format=%B", commit) or "").strip()
    urls = _git(root, "config", "--get-regexp", r"^remote\..*\.url$") or ""
    remote = urls.splitlines()[0].partition(" ")[2] if urls.strip() else ""
    return RunIdentity(
        git_commit=commit,
        git_branch="" if head == "(detached)" else head,
        # CI checkouts often embed a token in the remote URL (https://ci-token:...@host).
        git_remote=redact_url(remote),
        git_message=message.splitlines()[0] if message else "",
        git_dirty=any(not entry.startswith("# ") for entry in entries),
        lockfile_hash=lockfile_hash(root),
    )


def _git(root: Path, *args: str) -> str | None:
    """Return the output of ``git args`` run in ``root``, None when git fails or is missing."""
    log.debug("git %s (in %s)", " ".join(args), root)
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None
