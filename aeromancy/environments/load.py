"""Loading a stored image into the local engine: blobs fetched, archive streamed to docker.

The config and the layers the engine lacks are fetched through the store's read
cache (each verified against its sha256), then written as one archive straight into
``docker load``'s stdin. Layers whose chain the engine already holds (a shared base,
say) are left out. The loaded image must have the recorded id, or the load fails.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker.errors
from rich.console import Console

from aeromancy.environments.archive import write_loadable_archive
from aeromancy.environments.docker_io import loader
from aeromancy.environments.layout import image_hex, image_key, tag_key
from aeromancy.environments.progress import image_progress
from aeromancy.environments.record import Blob, StoredImage, parse_stored_image
from aeromancy.errors import InfrastructureError, NotFound
from aeromancy.launcher.engine import docker_client
from aeromancy.store import Store


def read_stored_image(store: Store, image_id: str) -> StoredImage | None:
    """Return the record of ``image_id`` in ``store``, or None when it has none."""
    key = image_key(image_id)
    data = store.backend.read_bytes(key)
    if data is None:
        return None
    return parse_stored_image(data, image_id, f"{key} in {store.describe()}")


def tagged_image(store: Store, tag: str) -> str | None:
    """Return the id of the image saved under ``tag``, or None when none was."""
    data = store.backend.read_bytes(tag_key(tag))
    if data is None:
        return None
    try:
        return f"sha256:{image_hex(str(json.loads(data)['id']))}"
    except (ValueError, KeyError, TypeError) as exc:
        raise InfrastructureError(
            f"the tag record {tag_key(tag)} in {store.describe()} is unreadable: {exc}",
            "remove it (the next tracked run records the tag again)",
        ) from exc


def local_image_id(image_id_or_tag: str) -> str:
    """Return the id of a local image, or '' when the engine has none by that name."""
    try:
        return str(docker_client().images.get(image_id_or_tag).id)
    except docker.errors.ImageNotFound:
        return ""
    except docker.errors.APIError as exc:
        raise InfrastructureError(f"Docker could not look up {image_id_or_tag}: {exc}") from exc


def load_image(store: Store, image_id: str, console: Console, tags: tuple[str, ...] = ()) -> str:
    """Load the stored image ``image_id`` (tagged as saved, and ``tags``); return its id.

    Raises NotFound when the store has no such image and InfrastructureError when a
    blob is missing or corrupt or the engine ends up with another id.
    """
    image = read_stored_image(store, image_id)
    if image is None:
        raise NotFound(
            f"image {image_id} is not in the store {store.describe()}",
            "run the task's pipeline once on a machine that has it, or rebuild it",
        )
    image = StoredImage(image.id, image.config, image.layers, _union(image.tags, tags))
    held = held_chain_length([layer.sha256 for layer in image.layers])
    needed = [image.config, *_layers_after(image.layers, held)]
    description = f"loading environment image {image_hex(image.id)[:12]} from {store.describe()}"
    with image_progress(console, description, 2 * sum(blob.size for blob in needed)) as transfer:
        files = _fetch(store, needed, transfer.advance)
        with loader() as stdin:
            write_loadable_archive(stdin, image, files, transfer.advance)
        transfer.note = f", {len(needed) - 1} of {len(image.distinct_layers())} layers sent"
    loaded = local_image_id(image.id)
    if loaded != image.id:
        raise InfrastructureError(
            f"docker load of {image.id} produced {loaded or 'no image'}",
            "the stored image is inconsistent; remove it from the store and build again",
        )
    return loaded


def held_chain_length(diff_ids: list[str]) -> int:
    """Return how many leading layers of ``diff_ids`` some local image already has."""
    longest = 0
    for facts in _local_image_facts():
        layers = [image_hex(layer) for layer in facts.get("RootFS", {}).get("Layers") or []]
        common = 0
        for mine, theirs in zip(diff_ids, layers, strict=False):
            if mine != theirs:
                break
            common += 1
        longest = max(longest, common)
    return longest


def _local_image_facts() -> list[dict[str, Any]]:
    client = docker_client()
    try:
        ids = client.api.images(quiet=True)
        return [dict(client.images.get(found).attrs) for found in ids]
    except docker.errors.ImageNotFound:
        return []  # an image removed while we looked; the next look sees the rest
    except docker.errors.APIError as exc:
        raise InfrastructureError(f"Docker could not list its images: {exc}") from exc


def _layers_after(layers: tuple[Blob, ...], held: int) -> list[Blob]:
    """Return, once each, the layers from position ``held`` on (their chains are new)."""
    wanted: dict[str, Blob] = {}
    for layer in layers[held:]:
        wanted.setdefault(layer.sha256, layer)
    return list(wanted.values())


def _fetch(store: Store, blobs: list[Blob], progress: Any) -> dict[str, Path]:
    """Return a verified cached copy of each blob, fetched in parallel."""
    workers = max(1, min(store.workers, len(blobs)))
    with ThreadPoolExecutor(workers) as pool:
        paths = list(pool.map(lambda blob: _fetch_one(store, blob, progress), blobs))
    return {blob.sha256: path for blob, path in zip(blobs, paths, strict=True)}


def _fetch_one(store: Store, blob: Blob, progress: Any) -> Path:
    try:
        return store.cache.fetch(blob.sha256, progress)
    except NotFound as exc:
        raise InfrastructureError(
            f"blob {blob.sha256[:12]} of a stored image is missing from {store.describe()}",
            "remove the image's record under images/ and save the image again",
        ) from exc


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))
