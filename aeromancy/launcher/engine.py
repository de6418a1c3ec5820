"""The connection to the Docker engine, with docker SDK errors translated at the boundary."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import docker
import docker.errors

from aeromancy.errors import InfrastructureError

LAUNCHER_CACHE_ENV = "AEROMANCY_LAUNCHER_CACHE"


@functools.cache
def docker_client() -> docker.DockerClient:
    """Return a client of the Docker engine; raise InfrastructureError when none answers."""
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        raise InfrastructureError(
            f"no Docker engine answers ({_first_line(exc)})",
            "start Docker (or set DOCKER_HOST), or use --dev to run on the host",
        ) from exc
    return client


def launcher_cache_dir() -> Path:
    """Return the launcher's cache (wheelhouse, .deb files, built wheels, base image facts).

    It is kept apart from the store's read cache, which is mounted into containers.
    ``AEROMANCY_LAUNCHER_CACHE`` overrides ``$XDG_CACHE_HOME/aeromancy-launcher``.
    """
    if os.environ.get(LAUNCHER_CACHE_ENV):
        path = Path(os.environ[LAUNCHER_CACHE_ENV])
    else:
        cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(cache_home) / "aeromancy-launcher"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
