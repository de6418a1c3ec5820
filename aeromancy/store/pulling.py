"""Pulling from a local directory store: from the store's blob into DEST, no cache copy.

The read cache (:mod:`.cache`) saves fetching a blob over the network again. A local
store's blob is already a file on this machine, so a copy of it in the cache would
only double the bytes written and the disk used (as a DVC cache beside a local
remote does). A pull from a local store therefore fills a temporary file in DEST
straight from the blob, hashing the bytes that file received in the same pass
(:func:`.copying.copy_verifying`), and names it only when the digest and size are
the manifest's (:func:`.placing.write_files`). The guarantees are the cache's:
every file verified before use, nothing under its name before it is complete, a new
inode for every file. Hard links (``AEROMANCY_LINK=hardlink``) still go through the
cache: a link must never be the store's own blob.
"""

from __future__ import annotations

import os
from functools import partial

from aeromancy.errors import NotFound, StoreDamaged
from aeromancy.store.backend import ProgressCallback
from aeromancy.store.cache import blob_damaged, blob_missing
from aeromancy.store.layout import blob_key
from aeromancy.store.local import LocalBackend
from aeromancy.store.placing import FillFile, Wanted


def blob_fills(
    backend: LocalBackend, ref: str, items: list[Wanted], progress: ProgressCallback
) -> list[tuple[FillFile, str]]:
    """Return, for each of ``items``, a fill that copies its blob into a file and checks
    what the file received, and the item's path."""
    return [(partial(_fill, backend, ref, item, progress), item.path) for item in items]


def _fill(
    backend: LocalBackend, ref: str, item: Wanted, progress: ProgressCallback, fd: int
) -> None:
    try:
        written = backend.copy_blob(blob_key(item.sha256), fd, item.size)
    except NotFound as exc:
        raise blob_missing(item.sha256, backend) from exc
    if written != item.sha256:
        raise blob_damaged(item.sha256, backend)
    actual = os.fstat(fd).st_size
    if actual != item.size:
        raise size_damage(ref, item, actual)
    progress(actual)


def size_damage(ref: str, item: Wanted, actual: int) -> StoreDamaged:
    """Return the error for a verified blob whose size is not the manifest's (exit 3)."""
    return StoreDamaged(
        f"the store is damaged: {ref} gives {item.path} {item.size} bytes, "
        f"but its blob holds {actual}",
        "restore the manifest from a backup, or push the artifact again",
    )
