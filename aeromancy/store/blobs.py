"""Content-addressed blobs: hash each file as a stream, upload only what is missing."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aeromancy.store.backend import Backend, ProgressCallback, changed_while_pushed
from aeromancy.store.hashing import sha256_file
from aeromancy.store.layout import blob_key
from aeromancy.store.manifest import FileEntry
from aeromancy.store.paths import SourceFile

BLOBS_PREFIX = "blobs/sha256/"
#: From this many files on, one listing of the blobs beats a request per file ...
LIST_INSTEAD_OF_PROBING = 16
#: ... as long as the store holds fewer blobs than this (10 listing pages on S3).
MAX_LISTED_BLOBS = 10_000


class BlobStore:
    """The ``blobs/sha256/`` part of a store, moved in parallel by ``workers`` threads."""

    def __init__(self, backend: Backend, workers: int) -> None:
        self.backend = backend
        self.workers = max(1, workers)

    def has(self, sha256_hex: str) -> bool:
        """Return True when the blob is present in the store."""
        return self.backend.exists(blob_key(sha256_hex))

    def has_all(self, digests: Iterable[str]) -> bool:
        """Return True when every blob is present (an empty set is present)."""
        unique = sorted(set(digests))
        if not self.backend.remote or len(unique) <= 1:
            # A local probe is a stat: cheaper than handing it to a thread, even by the
            # thousand. Serially, the check also stops at the first missing blob.
            return all(self.has(digest) for digest in unique)
        # Remote probes are round trips, which threads overlap (from two on).
        with ThreadPoolExecutor(self._pool_size(len(unique))) as pool:
            return all(pool.map(self.has, unique))

    def put_files(self, files: list[SourceFile], progress: ProgressCallback) -> list[FileEntry]:
        """Hash and upload ``files``, skipping blobs already present; return their entries."""
        present = self._listed_blobs() if len(files) >= LIST_INSTEAD_OF_PROBING else None
        with ThreadPoolExecutor(self._pool_size(len(files))) as pool:
            return list(pool.map(lambda source: self._put_one(source, progress, present), files))

    def _listed_blobs(self) -> frozenset[str] | None:
        """Return every blob key when a store holds few enough to list; None otherwise.

        For a push of many files one listing replaces a request per file. A listing
        cut short proves nothing about the rest, so then each file is probed.
        """
        keys = self.backend.list_prefix(BLOBS_PREFIX, limit=MAX_LISTED_BLOBS)
        return frozenset(keys) if len(keys) < MAX_LISTED_BLOBS else None

    def _pool_size(self, jobs: int) -> int:
        return max(1, min(self.workers, jobs))

    def _put_one(
        self, source: SourceFile, progress: ProgressCallback, present: frozenset[str] | None
    ) -> FileEntry:
        before = _signature(source.local)
        sha256_hex = sha256_file(source.local)
        key = blob_key(sha256_hex)
        _check_unchanged(source, before)
        # A blob that arrived after the listing is uploaded again: harmless, same bytes.
        stored = (key in present) if present is not None else self.backend.exists(key)
        if stored:
            progress(before[0])
        elif not self.backend.upload_file(key, source.local, sha256_hex, progress):
            self._check_unverified_upload(source, before, key)
        return FileEntry(source.path, before[0], sha256_hex)

    def _check_unverified_upload(
        self, source: SourceFile, before: tuple[int, int], key: str
    ) -> None:
        """Delete the blob just stored and refuse if the file changed during its upload.

        Only for uploads whose bytes the backend could not hash (S3 multipart): the
        object may hold bytes other than its key says, and nobody may find it there.
        """
        if _signature(source.local) != before:
            self.backend.delete(key)
            raise changed_while_pushed(source.local)


def _check_unchanged(source: SourceFile, before: tuple[int, int]) -> None:
    """Raise UsageError if the file was rewritten while we hashed it."""
    if _signature(source.local) != before:
        raise changed_while_pushed(source.local)


def _signature(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns
