"""The project's local Docker images that no run record uses, for ``aeromancy gc``.

Only images the launcher built for the project's repository are candidates (they
carry the ``aeromancy.repository`` label naming it). An image is kept when a run
record of the store names it (as its image, environment image or base image), when
it is younger than the grace period (a launch may be about to use it), or when a
container uses it (Docker refuses to remove it; gc does not force). A stored copy in
the store is untouched here: the store's own gc decides about that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import docker.errors
from docker.models.images import Image

from aeromancy.errors import InfrastructureError
from aeromancy.launcher.engine import docker_client
from aeromancy.launcher.image import IMAGE_LABEL


@dataclass
class LocalImages:
    """What gc did (or, dry, would do) to the repository's local images."""

    repository: str
    removed: list[str] = field(default_factory=list)  # "tag (id12)"
    in_use: list[str] = field(default_factory=list)  # a container uses it


def collect_local_images(
    repository: str, used: set[str], cutoff: float, dry_run: bool
) -> LocalImages | None:
    """Remove ``repository``'s local images that no record names and are older than ``cutoff``.

    ``used`` holds image ids as 64 hex digits. Returns None when no Docker engine answers.
    """
    try:
        images = docker_client().images.list(filters={"label": f"{IMAGE_LABEL}={repository}"})
    except (InfrastructureError, docker.errors.DockerException):
        return None
    result = LocalImages(repository)
    for image in images:
        if str(image.id).removeprefix("sha256:") in used or _created(image) > cutoff:
            continue
        name = f"{', '.join(image.tags) or '<untagged>'} ({image.short_id.removeprefix('sha256:')})"
        if _has_containers(image) or not (dry_run or _remove(image)):
            result.in_use.append(name)
        else:
            result.removed.append(name)
    return result


def _created(image: Image) -> float:
    stamp = str(image.attrs.get("Created") or "")
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return float("inf")  # unknown age: treated as young, kept


def _has_containers(image: Image) -> bool:
    found = docker_client().containers.list(all=True, filters={"ancestor": str(image.id)})
    return bool(found)


def _remove(image: Image) -> bool:
    """Remove every tag of ``image`` and the image; False when a container still uses it."""
    client = docker_client()
    try:
        for tag in image.tags or [str(image.id)]:
            client.images.remove(tag, noprune=False)
    except docker.errors.APIError:
        return False
    return True
