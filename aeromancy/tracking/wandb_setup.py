"""Where W&B runs are written and whether they go online, from W&B's standard variables.

- ``WANDB_MODE=offline`` (or ``dryrun``), or no API key at all: runs are written
  offline for a later ``aeromancy sync`` (which calls ``wandb sync``).
- ``WANDB_MODE=disabled``: W&B is not used at all.
- otherwise, with ``WANDB_API_KEY`` or a ``wandb login`` entry in ~/.netrc: online.

Offline runs are written under ``<W&B dir>/wandb/offline-run-*``. The W&B dir is
``WANDB_DIR`` when set, else the project root. Aeromancy writes a ``.gitignore``
holding ``*`` into ``<W&B dir>/wandb`` so that these files never dirty the git tree
(a tracked run refuses to start from a dirty tree).
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from aeromancy.settings import find_project_root

Mode = Literal["online", "offline", "disabled"]
DEFAULT_BASE_URL = "https://api.wandb.ai"
RUNS_DIRNAME = "wandb"


def resolve_mode(environ: Mapping[str, str] | None = None) -> Mode:
    """Return how W&B runs are written: online only when credentials are available."""
    env = os.environ if environ is None else environ
    asked = env.get("WANDB_MODE", "").strip().lower()
    if asked == "disabled":
        return "disabled"
    if asked in ("offline", "dryrun"):
        return "offline"
    return "online" if has_credentials(env) else "offline"


def has_credentials(environ: Mapping[str, str] | None = None) -> bool:
    """Return True when a W&B API key is in the environment or in the netrc file."""
    env = os.environ if environ is None else environ
    if env.get("WANDB_API_KEY"):
        return True
    host = urlsplit(env.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).hostname or ""
    path = Path(env.get("NETRC") or Path.home() / ".netrc")
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def wandb_dir(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Return the directory W&B writes ``wandb/`` into: WANDB_DIR, else the project root."""
    env = os.environ if environ is None else environ
    if env.get("WANDB_DIR"):
        return Path(env["WANDB_DIR"]).resolve()
    here = (start or Path.cwd()).resolve()
    return find_project_root(here) or here


def runs_dir(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Return where W&B run directories are written: ``<W&B dir>/wandb``."""
    return wandb_dir(start, environ) / RUNS_DIRNAME


def prepare_runs_dir(directory: Path) -> None:
    """Create ``directory`` with a ``.gitignore`` of ``*`` so its files never dirty git."""
    directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by aeromancy: W&B run files never belong in git\n*\n")


CONTAINER_WANDB_DIR = "/aeromancy-wandb"


@dataclass(frozen=True)
class WandbMount:
    """How a tracked run's container writes W&B runs into the host's runs directory.

    The launcher bind-mounts ``host`` at ``container`` and adds ``environ`` to the
    container's environment; without it, offline runs written inside the container
    would vanish with it.
    """

    host: Path
    container: str
    environ: dict[str, str]


def container_wandb_mount(root: Path, environ: Mapping[str, str] | None = None) -> WandbMount:
    """Return the mount for a project at ``root``, creating the host runs directory."""
    host = runs_dir(root, environ)
    prepare_runs_dir(host)
    return WandbMount(
        host, f"{CONTAINER_WANDB_DIR}/{RUNS_DIRNAME}", {"WANDB_DIR": CONTAINER_WANDB_DIR}
    )
