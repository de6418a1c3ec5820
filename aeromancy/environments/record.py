"""The JSON of one stored image: its id, config blob, layer blobs and tags.

```json
{"format": 1, "id": "sha256:<hex>", "config": {"sha256": "<hex>", "size": 1696},
 "layers": [{"sha256": "<diff id hex>", "size": 248081920}, ...],
 "tags": ["aeromancy/demo:deps-..."], "created": "2026-12-01T20:00:00+00:00",
 "aeromancy_version": "0.1.0"}
```

Layers are in the order of the config's ``rootfs.diff_ids`` (a repeated layer is
listed again). A record is checked against its key before use: the config's digest
must be the image id, every digest 64 hex digits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aeromancy import __version__
from aeromancy.environments.layout import image_hex
from aeromancy.errors import InfrastructureError, InvalidName
from aeromancy.store.layout import blob_key

FORMAT = 1


@dataclass(frozen=True)
class Blob:
    """One blob of an image: its sha256 hex digest and its size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class StoredImage:
    """An environment image as the store holds it."""

    id: str
    config: Blob
    layers: tuple[Blob, ...]
    tags: tuple[str, ...]
    created: str = ""
    aeromancy_version: str = __version__

    @property
    def size(self) -> int:
        """Return the bytes of the config and of each distinct layer."""
        return self.config.size + sum(layer.size for layer in self.distinct_layers())

    def distinct_layers(self) -> list[Blob]:
        """Return each layer once, in order of first appearance."""
        seen: dict[str, Blob] = {}
        for layer in self.layers:
            seen.setdefault(layer.sha256, layer)
        return list(seen.values())

    def digests(self) -> list[str]:
        """Return the digest of every blob the image needs (config first)."""
        return [self.config.sha256, *(layer.sha256 for layer in self.distinct_layers())]

    def to_json(self) -> bytes:
        """Return the record as stored."""
        document = {
            "format": FORMAT,
            "id": self.id,
            "config": _blob_json(self.config),
            "layers": [_blob_json(layer) for layer in self.layers],
            "tags": list(self.tags),
            "created": self.created or datetime.now(UTC).isoformat(timespec="seconds"),
            "aeromancy_version": self.aeromancy_version,
        }
        return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"


def parse_stored_image(data: bytes, image_id: str, where: str) -> StoredImage:
    """Return the record in ``data`` stored for ``image_id``; raise when it does not fit.

    ``where`` names the object in the error (the store and key).
    """
    try:
        document = json.loads(data)
        image = StoredImage(
            id=str(document["id"]),
            config=_blob(document["config"]),
            layers=tuple(_blob(layer) for layer in document["layers"]),
            tags=tuple(str(tag) for tag in document.get("tags", [])),
            created=str(document.get("created", "")),
            aeromancy_version=str(document.get("aeromancy_version", "")),
        )
        consistent = image_hex(image.id) == image_hex(image_id) == image.config.sha256
    except (ValueError, KeyError, TypeError, InvalidName) as exc:
        raise _corrupt(where, str(exc)) from exc
    if not consistent:
        raise _corrupt(where, f"it describes {image.id}, not {image_id}")
    return image


def _blob(value: Any) -> Blob:
    blob = Blob(str(value["sha256"]), int(value["size"]))
    blob_key(blob.sha256)  # raises InvalidName for anything but a digest
    if blob.size < 0:
        raise ValueError(f"negative size {blob.size}")
    return blob


def _blob_json(blob: Blob) -> dict[str, Any]:
    return {"sha256": blob.sha256, "size": blob.size}


def _corrupt(where: str, why: str) -> InfrastructureError:
    return InfrastructureError(
        f"the stored image record {where} is unreadable: {why}",
        "remove it (the next tracked run saves the image again)",
    )
