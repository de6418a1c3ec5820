"""Saving an image into the store: its layers and config as blobs, then its record.

``docker save`` is read as a stream; each layer is spooled to a temporary file while
it is hashed, uploaded through the store's blob primitives when the store lacks it,
and removed, so at most one layer is ever on local disk. The record
(``images/<hex>.json``) is written last, with create-if-absent: a reader that finds
it finds every blob, and two machines saving the same image write it once.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
from rich.console import Console

from aeromancy.environments.archive import CountingReader, read_saved_archive
from aeromancy.environments.docker_io import saved_archive
from aeromancy.environments.layout import image_hex, image_key, tag_key
from aeromancy.environments.progress import image_progress, megabytes
from aeromancy.environments.record import Blob, StoredImage
from aeromancy.errors import InfrastructureError
from aeromancy.launcher.engine import docker_client
from aeromancy.store import Store
from aeromancy.store.paths import SourceFile


@dataclass(frozen=True)
class SaveReport:
    """What one save did: bytes read from ``docker save`` and bytes sent to the store."""

    image_id: str
    saved: bool  # False when the store held the image already (nothing was read)
    layers: int = 0
    new_layers: int = 0
    read_bytes: int = 0
    uploaded_bytes: int = 0


def save_image(store: Store, image_id: str, tags: Sequence[str], console: Console) -> SaveReport:
    """Save the local image ``image_id`` into ``store`` unless it is there; tag it ``tags``."""
    key = image_key(image_id)
    if store.backend.exists(key):
        record_tags(store, image_id, tags)
        return SaveReport(image_id, saved=False)
    facts = _inspect(image_id)
    diff_ids = [image_hex(layer) for layer in facts["RootFS"]["Layers"]]
    missing = missing_blobs(store, [image_hex(image_id), *diff_ids])
    sizes: dict[str, int] = {}
    uploaded = 0

    def keep_layer(digest: str, spooled: Path, size: int) -> None:
        nonlocal uploaded
        sizes[digest] = size
        if digest in missing:
            _put_blob(store, digest, spooled, size)
            uploaded += size

    description = f"saving environment image {image_hex(image_id)[:12]} into {store.describe()}"
    with (
        image_progress(console, description, int(facts.get("Size") or 0)) as transfer,
        tempfile.TemporaryDirectory(prefix="aeromancy-image-") as spool,
        saved_archive(image_id) as stream,
    ):
        counted = CountingReader(stream, transfer.advance)
        config = read_saved_archive(counted, image_id, diff_ids, keep_layer, Path(spool))
        if image_hex(image_id) in missing:
            config_file = Path(spool) / "config.json"
            config_file.write_bytes(config)
            _put_blob(store, image_hex(image_id), config_file, len(config))
            uploaded += len(config)
        new = len({digest for digest in diff_ids if digest in missing})
        transfer.note = (
            f", {new} of {len(set(diff_ids))} layers new, {megabytes(uploaded)} uploaded"
        )
    image = StoredImage(
        id=f"sha256:{image_hex(image_id)}",
        config=Blob(image_hex(image_id), len(config)),
        layers=tuple(Blob(digest, sizes[digest]) for digest in diff_ids),
        tags=tuple(tags),
    )
    store.backend.create(key, image.to_json())  # False: a concurrent save won, same image
    record_tags(store, image_id, tags)
    return SaveReport(image.id, True, len(set(diff_ids)), new, transfer.moved, uploaded)


def record_tags(store: Store, image_id: str, tags: Iterable[str]) -> None:
    """Record that each of ``tags`` names ``image_id``, where no tag record exists yet."""
    for tag in tags:
        key = tag_key(tag)
        if not store.backend.exists(key):
            document = {"id": f"sha256:{image_hex(image_id)}", "tag": tag}
            store.backend.create(key, json.dumps(document, sort_keys=True).encode() + b"\n")


def missing_blobs(store: Store, digests: list[str]) -> set[str]:
    """Return the digests among ``digests`` whose blobs the store lacks.

    One bulk check first (the common case on a second save: nearly all are there),
    then, only if something is missing, a probe per digest.
    """
    unique = sorted(set(digests))
    if store.has_blobs(unique):
        return set()
    workers = min(8, len(unique)) if store.backend.remote else 1
    with ThreadPoolExecutor(max(1, workers)) as pool:
        present = list(pool.map(lambda digest: store.has_blobs([digest]), unique))
    return {digest for digest, found in zip(unique, present, strict=True) if not found}


def _put_blob(store: Store, digest: str, path: Path, size: int) -> None:
    """Store the file at ``path`` as the blob ``digest`` with the store's own primitive."""
    (entry,) = store.blobs.put_files([SourceFile(digest, path, size)], lambda _count: None)
    if entry.sha256 != digest:
        raise InfrastructureError(
            f"a layer of the image changed while it was saved ({digest[:12]} became "
            f"{entry.sha256[:12]})",
            "save it again",
        )


def _inspect(image_id: str) -> dict[str, Any]:
    try:
        attrs = docker_client().images.get(image_id).attrs
    except docker.errors.ImageNotFound as exc:
        raise InfrastructureError(
            f"image {image_id} is not on this Docker engine", "build it again with a tracked run"
        ) from exc
    except docker.errors.APIError as exc:
        raise InfrastructureError(f"Docker could not inspect {image_id}: {exc}") from exc
    return dict(attrs)
