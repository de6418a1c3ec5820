"""Which environment images exist, where, and which runs use them (``aeromancy images``).

Local images are those of the project's repository on this engine; stored ones are
the store's ``images/`` records tagged in that repository or named by one of the
project's run records (as its run image or its environment image).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from aeromancy.environments.layout import IMAGES_PREFIX, parse_image_key
from aeromancy.environments.load import read_stored_image
from aeromancy.environments.record import StoredImage
from aeromancy.errors import InfrastructureError
from aeromancy.launcher.engine import docker_client
from aeromancy.store import Store


@dataclass
class ImageEntry:
    """One environment image: its tags, where it is, its size and the runs using it."""

    id: str
    tags: set[str] = field(default_factory=set)
    local: bool = False
    stored: bool = False
    size: int = 0
    created: str = ""
    runs: list[str] = field(default_factory=list)  # run ids, newest first


def list_images(
    store: Store, repository: str, records: Iterable[Mapping[str, Any]]
) -> list[ImageEntry]:
    """Return the images of ``repository`` here and in ``store``, newest first."""
    entries: dict[str, ImageEntry] = {}
    users = _runs_by_image(records)
    for facts in _local_images(repository):
        entry = entries.setdefault(str(facts["Id"]), ImageEntry(str(facts["Id"])))
        entry.local = True
        entry.tags.update(t for t in facts.get("RepoTags") or [] if t.startswith(f"{repository}:"))
        entry.size = int(facts.get("Size") or 0)
        entry.created = str(facts.get("Created") or "")
    for stored in _stored_images(store):
        if stored.id not in users and not any(_in(tag, repository) for tag in stored.tags):
            continue
        entry = entries.setdefault(stored.id, ImageEntry(stored.id))
        entry.stored = True
        entry.tags.update(stored.tags)
        entry.size = entry.size or stored.size
        entry.created = entry.created or stored.created
    for image_id, run_ids in users.items():
        if image_id in entries:
            entries[image_id].runs = sorted(run_ids, reverse=True)
    return sorted(entries.values(), key=lambda entry: entry.created, reverse=True)


def _in(tag: str, repository: str) -> bool:
    return tag.startswith(f"{repository}:")


def _runs_by_image(records: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for record in records:
        named = {record.get("image_id"), record.get("environment_image_id")}
        for image_id in named - {None, ""}:
            users.setdefault(str(image_id), []).append(str(record.get("run_id")))
    return users


def _local_images(repository: str) -> list[dict[str, Any]]:
    client = docker_client()
    try:
        return [dict(image.attrs) for image in client.images.list(name=repository)]
    except docker.errors.APIError as exc:
        message = f"Docker could not list the images of {repository}: {exc}"
        raise InfrastructureError(message) from exc


def _stored_images(store: Store) -> list[StoredImage]:
    found = []
    for key in store.backend.list_prefix(IMAGES_PREFIX):
        image_id = parse_image_key(key)
        if image_id is None:
            continue  # the tag records under images/tags/
        stored = read_stored_image(store, image_id)
        if stored is not None:
            found.append(stored)
    return found
