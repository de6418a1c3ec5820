"""What the launcher calls: load an image by its recipe tag, keep a built one.

``AEROMANCY_STORE_IMAGES=0`` turns both off (the launcher then builds what it lacks
and saves nothing), for stores that should hold artifacts only.
"""

from __future__ import annotations

import os

import docker.errors
from rich.console import Console

from aeromancy.environments.load import (
    load_image,
    local_image_id,
    read_stored_image,
    tagged_image,
)
from aeromancy.environments.save import SaveReport, save_image
from aeromancy.errors import InfrastructureError
from aeromancy.launcher.engine import docker_client
from aeromancy.store import Store

STORE_IMAGES_ENV = "AEROMANCY_STORE_IMAGES"


class ImageShelf:
    """The environment images of one store, seen from the launcher."""

    def __init__(self, store: Store | None, console: Console) -> None:
        enabled = os.environ.get(STORE_IMAGES_ENV, "1").strip().lower() not in ("0", "false")
        self.store = store if enabled else None
        self.console = console

    def load(self, *tags: str) -> str:
        """Make each of ``tags`` local, loading from the store as needed, in order.

        Returns the id of the last tag's image, or '' when the store lacks it (the
        tags before it may have been loaded all the same).
        """
        image_id = ""
        for tag in tags:
            image_id = local_image_id(tag) or self._load_tag(tag)
        return image_id

    def load_ids(self, *image_ids: str) -> bool:
        """Make each image local by id, loading it from the store; False if one is in neither."""
        for image_id in image_ids:
            if local_image_id(image_id):
                continue
            if self.store is None or read_stored_image(self.store, image_id) is None:
                return False
            load_image(self.store, image_id, self.console)
        return True

    def keep(self, tag: str, image_id: str) -> SaveReport | None:
        """Save ``image_id`` (tagged ``tag``) into the store unless it is there already."""
        if self.store is None or not image_id:
            return None
        return save_image(self.store, image_id, (tag,), self.console)

    def _load_tag(self, tag: str) -> str:
        if self.store is None:
            return ""
        image_id = tagged_image(self.store, tag)
        if image_id is None:
            return ""
        if local_image_id(image_id):
            _tag(image_id, tag)  # the engine has it under another name
            return image_id
        return load_image(self.store, image_id, self.console, tags=(tag,))


def _tag(image_id: str, tag: str) -> None:
    repository, _, name = tag.rpartition(":")
    try:
        docker_client().api.tag(image_id, repository, name)
    except docker.errors.APIError as exc:
        raise InfrastructureError(f"Docker could not tag {image_id} as {tag}: {exc}") from exc
