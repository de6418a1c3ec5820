"""Project settings: ``[tool.aeromancy]`` in pyproject.toml, the environment, defaults.

Precedence for the store: ``--store`` > ``AEROMANCY_STORE`` > ``[tool.aeromancy] store``
> the default local store, ``$XDG_DATA_HOME/aeromancy/store`` (``~/.local/share/...``),
which lives outside any git tree so artifacts never dirty it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aeromancy.errors import UsageError
from aeromancy.names import check_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_TASKS = "pipeline.py"
STORE_ENV = "AEROMANCY_STORE"
CACHE_ENV = "AEROMANCY_CACHE"


def default_store() -> str:
    """Return the default local store directory (outside any project tree)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data_home) / "aeromancy" / "store")


def default_cache_dir() -> Path:
    """Return the local read cache directory (``AEROMANCY_CACHE`` overrides)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "aeromancy"


def default_base_image() -> str:
    """Return the official slim Python image matching this interpreter."""
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one project. ``root`` is where pyproject.toml lives."""

    root: Path
    project: str
    tasks: str = DEFAULT_TASKS
    store: str = field(default_factory=default_store)
    base_image: str = field(default_factory=default_base_image)
    debian_packages: tuple[str, ...] = ()
    docker_run_args: tuple[str, ...] = ()
    env_passthrough: tuple[str, ...] = ()
    tracker: str | None = None  # the project's default tracker; None = the built-in default
    image_repository: str = ""  # the Docker repository of the images; '' = aeromancy/<project>
    cluster: str = ""  # the Dask scheduler tracked runs submit to; '' = run locally


def find_project_root(start: Path) -> Path | None:
    """Return the nearest directory at or above ``start`` holding pyproject.toml, or None."""
    for candidate in (start, *start.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return None


def read_pyproject(root: Path) -> dict[str, Any]:
    """Return the parsed pyproject.toml of ``root`` ({} when there is none)."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return dict(tomllib.loads(path.read_text(encoding="utf-8")))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"cannot parse {path}: {exc}", "fix the TOML syntax") from exc


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise UsageError(
        f"[tool.aeromancy] {key} must be a list of strings", f'e.g. {key} = ["a", "b"]'
    )


def _tracker(value: Any) -> str | None:
    """Return ``[tool.aeromancy] tracker`` checked against the known trackers (None if unset)."""
    from aeromancy.tracking import TRACKERS

    if value is None:
        return None
    if value not in TRACKERS:
        raise UsageError(
            f"[tool.aeromancy] tracker = {value!r} is not a tracker",
            f"use one of: {', '.join(TRACKERS)}",
        )
    return str(value)


def resolve_store(store: str, root: Path) -> str:
    """Return ``store`` with a relative local path made absolute against the project root.

    So ``--store``, ``AEROMANCY_STORE`` and ``[tool.aeromancy] store`` name one directory
    wherever in the project a command runs (URLs such as ``s3://`` are left alone).
    """
    if "://" in store:
        return store
    path = Path(store).expanduser()
    return str(path if path.is_absolute() else root / path)


def load_settings(start: Path | None = None, store: str | None = None) -> Settings:
    """Return the settings of the project containing ``start`` (default: the cwd).

    Without a pyproject.toml the directory itself is the project, named after it.
    """
    here = (start or Path.cwd()).resolve()
    root = find_project_root(here) or here
    pyproject = read_pyproject(root)
    tool = pyproject.get("tool", {}).get("aeromancy", {})
    project = tool.get("project") or pyproject.get("project", {}).get("name") or root.name
    return Settings(
        root=root,
        project=check_name(str(project), "project"),
        tasks=str(tool.get("tasks", DEFAULT_TASKS)),
        store=resolve_store(
            store or os.environ.get(STORE_ENV) or tool.get("store") or default_store(), root
        ),
        base_image=str(tool.get("base_image") or default_base_image()),
        debian_packages=_str_list(tool.get("debian_packages", []), "debian_packages"),
        docker_run_args=_str_list(tool.get("docker_run_args", []), "docker_run_args"),
        env_passthrough=_str_list(tool.get("env_passthrough", []), "env_passthrough"),
        tracker=_tracker(tool.get("tracker")),
        image_repository=str(tool.get("image_repository") or ""),
        cluster=str(tool.get("cluster") or ""),
    )
