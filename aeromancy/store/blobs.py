"""Content-addressed blobs: each file hashed as it is read, stored only when missing."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from aeromancy.store.backend import Backend, ProgressCallback
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
        """Store ``files``, skipping blobs already present; return their entries, in order.

        Largest files start first: their long hash passes and transfers then overlap
        the small ones, instead of one big file running alone at the end.
        """
        present = self._listed_blobs() if len(files) >= LIST_INSTEAD_OF_PROBING else None
        largest_first = sorted(files, key=lambda source: source.size, reverse=True)
        with ThreadPoolExecutor(self._pool_size(len(files))) as pool:
            stored = pool.map(
                lambda source: self._put_one(source, progress, present), largest_first
            )
            entries = {entry.path: entry for entry in stored}
        return [entries[source.path] for source in files]

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
        def destination(sha256_hex: str) -> str | None:
            key = blob_key(sha256_hex)
            # A blob that arrived after the listing is stored again: harmless, same bytes.
            stored = (key in present) if present is not None else self.backend.exists(key)
            return None if stored else key

        stored = self.backend.store_file(source.local, destination, progress)
        return FileEntry(source.path, stored.size, stored.sha256)
