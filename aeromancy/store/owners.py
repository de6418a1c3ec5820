"""Which project a project name belongs to in a store, so two projects never mix silently.

Artifacts and runs are filed under the project's name only. Two different projects
that happen to share a name (two clones of `aeromancy init`'s default, say) would
read each other's versions and records without a word. So the store remembers who
first used a name, in ``projects/<project>.json``:

```json
{"project": "demo", "remote": "github.com/acme/demo", "root": "/home/ana/demo",
 "host": "ana-laptop", "claimed": "2026-12-01T20:00:00+00:00"}
```

``remote`` is the git remote (first remote, normalised: no scheme, user or ``.git``,
so ``git@github.com:acme/demo.git`` and ``https://github.com/acme/demo`` are one);
``root`` and ``host`` say where the project lives. Two origins are the same project
when both have a remote and the remotes are equal, otherwise when root and host are
equal. Clones of one repository on every machine of a team are therefore one
project; two folders without a remote are two.

A command that writes for a project (``push``, ``run``) reads the owner first and
warns in one line when it is another project; it writes the owner once it has
written something itself (a refused command leaves nothing behind).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from aeromancy.errors import UsageError
from aeromancy.names import check_name
from aeromancy.store.backend import Backend

OWNERS_PREFIX = "projects/"
_SCP = re.compile(r"(?:[^@/:]+@)?([^:/]{2,}):(?!//)(.+)")  # user@host:path, not C:\


@dataclass(frozen=True)
class Origin:
    """Where a project comes from: its normalised git remote ('' if none), root and host."""

    remote: str
    root: str
    host: str

    def same_project(self, other: Origin) -> bool:
        """Return True when ``other`` is this project (see the module's rule)."""
        if self.remote and other.remote:
            return self.remote == other.remote
        return (self.root, self.host) == (other.root, other.host)

    def describe(self) -> str:
        """Return the origin as a message names it."""
        where = f"{self.root} on {self.host}"
        return f"git remote {self.remote} ({where})" if self.remote else f"{where}, no git remote"


def normalise_remote(url: str) -> str:
    """Return a git remote URL without scheme, user info, port-less noise or ``.git``."""
    url = url.strip()
    if not url:
        return ""
    if "://" in url:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = f":{parts.port}" if parts.port and parts.scheme in ("http", "https") else ""
        shown = f"{host}{port}{parts.path}" if host else parts.path
    elif (scp := _SCP.fullmatch(url)) is not None:
        shown = f"{scp.group(1).lower()}/{scp.group(2).lstrip('/')}"
    else:
        shown = url  # a path to a repository on disk
    return shown.rstrip("/").removesuffix(".git").rstrip("/")


def git_remote(root: Path) -> str:
    """Return the first git remote's URL of the repository holding ``root`` ('' if none)."""
    try:
        done = subprocess.run(
            ["git", "config", "--get-regexp", r"^remote\..*\.url$"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return ""
    lines = done.stdout.splitlines() if done.returncode == 0 else []
    return lines[0].partition(" ")[2] if lines else ""


def origin_of(root: Path, remote: str | None = None) -> Origin:
    """Return the origin of the project at ``root`` (``remote``: its git remote, if known)."""
    found = git_remote(root) if remote is None else remote
    return Origin(normalise_remote(found), str(root.resolve()), socket.gethostname())


def owner_key(project: str) -> str | None:
    """Return ``projects/<project>.json``, or None for a name the store refuses anyway."""
    try:
        return f"{OWNERS_PREFIX}{check_name(project, 'project')}.json"
    except UsageError:
        return None


def read_owner(backend: Backend, project: str) -> Origin | None:
    """Return the origin that first used ``project`` in the store (None: nobody yet)."""
    key = owner_key(project)
    data = backend.read_bytes(key) if key else None
    if data is None:
        return None
    try:
        document = json.loads(data)
        return Origin(str(document["remote"]), str(document["root"]), str(document["host"]))
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: treated as unclaimed, and not overwritten


def claim(backend: Backend, project: str, origin: Origin) -> None:
    """Record ``origin`` as the owner of ``project`` unless someone already is."""
    key = owner_key(project)
    if key is None or backend.exists(key):
        return
    document = {
        "project": project,
        **asdict(origin),
        "claimed": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    backend.create(key, json.dumps(document, indent=1, sort_keys=True).encode() + b"\n")


def mixing_warning(project: str, owner: Origin, here: Origin) -> str:
    """Return the one-line warning for a project name already owned by another project."""
    return (
        f"project name {project!r} in this store belongs to another project "
        f"({owner.describe()}); this is {here.describe()}: their artifacts and runs mix. "
        f"Give this project its own [tool.aeromancy] project name, or, if it is the same "
        f"project, delete {owner_key(project)} from the store"
    )
