"""Which stored images and code packages gc deletes: those no run record uses.

The layouts are environments/layout.py (``images/<hex>.json``, ``images/tags/...``)
and environments/code_package.py (``code/<project>/<commit>.json``). An image or
package is deleted when no run record names it (see :mod:`aeromancy.store.gc_records`)
and it is older than the grace period; a tag record goes with the image it names.
Whatever is kept keeps its blobs (config, layers, files).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aeromancy.errors import StoreDamaged
from aeromancy.store.backend import Backend, ObjectInfo
from aeromancy.store.gc_records import RecordRefs

IMAGES_PREFIX = "images/"
TAGS_PREFIX = "images/tags/"
CODE_PREFIX = "code/"
_IMAGE_KEY = re.compile(r"images/([0-9a-f]{64})\.json")
_CODE_KEY = re.compile(r"code/([^/]+)/([0-9a-f]{40,64})\.json")


@dataclass
class Environments:
    """The image records, tag records and code packages to delete, and the blobs kept ones need."""

    doomed_images: list[str] = field(default_factory=list)
    doomed_tags: list[str] = field(default_factory=list)
    doomed_code: list[str] = field(default_factory=list)
    kept_digests: set[str] = field(default_factory=set)

    @property
    def keys(self) -> list[str]:
        return [*self.doomed_tags, *self.doomed_images, *self.doomed_code]


def sort_environments(
    backend: Backend, refs: RecordRefs, cutoff: float, deletable: bool
) -> Environments:
    """Split the stored images and code packages into used and unused.

    Only objects last written before ``cutoff`` (Unix time) can be unused, and none
    when ``deletable`` is False. Raises StoreDamaged for one that is not JSON.
    """
    found = Environments()
    for info in backend.list_objects(IMAGES_PREFIX):
        match = _IMAGE_KEY.fullmatch(info.key)
        if match is None:
            continue  # a tag record, sorted below
        document = _read(backend, info.key)
        if deletable and _old(info, cutoff) and match.group(1) not in refs.images:
            found.doomed_images.append(info.key)
        else:
            found.kept_digests |= set(_sha256_values(document))
    gone = {key[len(IMAGES_PREFIX) : -len(".json")] for key in found.doomed_images}
    for key in backend.list_prefix(TAGS_PREFIX):
        named = _read(backend, key).get("id") if key.endswith(".json") else None
        if isinstance(named, str) and named.removeprefix("sha256:") in gone:
            found.doomed_tags.append(key)
    for info in backend.list_objects(CODE_PREFIX):
        code = _CODE_KEY.fullmatch(info.key)
        if code is None:
            continue
        document = _read(backend, info.key)
        used = document.get("digest") in refs.code_packages or code.groups() in refs.commits
        if deletable and _old(info, cutoff) and not used:
            found.doomed_code.append(info.key)
        else:
            found.kept_digests |= set(_sha256_values(document))
    return found


def _old(info: ObjectInfo, cutoff: float) -> bool:
    return info.modified <= cutoff


def _read(backend: Backend, key: str) -> dict[str, Any]:
    data = backend.read_bytes(key)
    if data is None:
        return {}
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise StoreDamaged(
            f"the store is damaged: {key} is not JSON; gc cannot tell what it needs",
            "repair or delete it, then run gc again",
        ) from exc
    return document if isinstance(document, dict) else {}


def _sha256_values(document: Any) -> list[str]:
    """Return every string under a ``sha256`` key anywhere in a JSON document."""
    found, stack = [], [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "sha256" and isinstance(value, str):
                    found.append(value)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found
