"""Content-addressed blobs: each file hashed as it is read, stored only when missing."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from aeromancy.store.backend import Backend, FilePath, ProgressCallback
from aeromancy.store.layout import blob_key
from aeromancy.store.manifest import FileEntry
from aeromancy.store.paths import SourceFile
from aeromancy.store.statcache import FileStat, StatCache
from aeromancy.store.threads import map_in_threads

BLOBS_PREFIX = "blobs/sha256/"
#: From this many files on, one listing of the blobs beats a request per file ...
LIST_INSTEAD_OF_PROBING = 16
#: ... as long as the store holds fewer blobs than this (10 listing pages on S3) or
#: than this many times the files pushed (a page of 1,000 keys costs far less than
#: 1,000 probes, so listing a store a few times larger than the push still wins).
MAX_LISTED_BLOBS = 10_000
LISTED_BLOBS_PER_FILE = 4
#: Into a local store, files smaller than this are stored on the calling thread. Their
#: work is mostly Python holding the GIL (hashlib lets it go only from 2 KiB, and
#: the system calls are short), so threads only take turns at it: 20,000 files of
#: 1 KiB took 3.7 s on 8 threads against 1.5 s on one (2 idle cores).
SMALL_FILE = 256 * 1024


class BlobStore:
    """The ``blobs/sha256/`` part of a store, moved in parallel by ``workers`` threads."""

    def __init__(self, backend: Backend, workers: int, stat_cache: StatCache | None = None) -> None:
        self.backend = backend
        self.workers = max(1, workers)
        self.stat_cache = stat_cache

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

        A file the stat cache knows, unchanged, whose blob the store holds is not read
        at all; where checking that costs no round trip, it is checked here, and only
        the files left go to the threads. Largest files start first: their long hash
        passes and transfers then overlap the small ones, instead of one big file
        running alone at the end.
        """
        states = self._states(files)
        known = self._known_digests(states)
        listing = self._worth_listing(len(files), len(known))
        present = self._listed_blobs(len(files)) if listing else None
        push = _Push(self, progress, present, known, states)
        entries: dict[str, FileEntry] = {}
        left = files
        if present is not None or not self.backend.remote:
            left = []
            for source in files:
                reused = push.reused(source)
                if reused is None:
                    left.append(source)
                else:
                    entries[reused.path] = reused
        largest_first = sorted(left, key=lambda source: source.size, reverse=True)
        threaded, inline = self._split(largest_first)
        work = push.put if left is files else push.store  # else: none left is reusable
        stored = map_in_threads(work, threaded, self._pool_size(len(threaded)), inline)
        entries.update((entry.path, entry) for entry in stored)
        if self.stat_cache is not None:
            self.stat_cache.record(push.hashed)
        return [entries[source.path] for source in files]

    def _states(self, files: list[SourceFile]) -> dict[FilePath, FileStat]:
        """Return each file's state before anything is read.

        A file listed by :func:`.paths.collect_files` has it already: the stat taken
        then came before any byte was read.
        """
        states: dict[FilePath, FileStat] = {}
        for source in files:
            if source.info is not None:
                states[source.local] = FileStat.of_info(source.info)
                continue
            try:
                states[source.local] = FileStat.of(source.local)
            except OSError:
                continue  # the backend reports it when it reads the file
        return states

    def _known_digests(
        self, states: dict[FilePath, FileStat]
    ) -> dict[FilePath, tuple[FileStat, str]]:
        """Return each file's state and the digest the stat cache holds for that state."""
        if self.stat_cache is None or not states:
            return {}
        known = self.stat_cache.lookup(states.items())
        return {path: (states[path], digest) for path, digest in known.items()}

    def _worth_listing(self, files: int, known: int) -> bool:
        """Return True when one listing of the blobs beats a probe per file.

        Locally a probe is a stat, so the files the stat cache knows (a probe each)
        do not count: an unchanged re-push probes, a first push lists.
        """
        probed = files if self.backend.remote else files - known
        return probed >= LIST_INSTEAD_OF_PROBING

    def _listed_blobs(self, files: int) -> frozenset[str] | None:
        """Return every blob key when a store holds few enough to list for a push of
        ``files`` files; None otherwise.

        For a push of many files one listing replaces a request per file. A listing
        cut short proves nothing about the rest, so then each file is probed.
        """
        limit = max(MAX_LISTED_BLOBS, LISTED_BLOBS_PER_FILE * files)
        keys = self.backend.list_prefix(BLOBS_PREFIX, limit=limit)
        return frozenset(keys) if len(keys) < limit else None

    def _split(self, files: list[SourceFile]) -> tuple[list[SourceFile], list[SourceFile]]:
        """Return the files worth a thread and those stored on the calling thread."""
        if self.backend.remote:
            return files, []  # each is a round trip: threads overlap them
        return [f for f in files if f.size >= SMALL_FILE], [f for f in files if f.size < SMALL_FILE]

    def _pool_size(self, jobs: int) -> int:
        return max(1, min(self.workers, jobs))

    def stored(self, sha256_hex: str, present: frozenset[str] | None) -> bool:
        """Return True when the blob is in the store, by the listing when there is one."""
        return self.key_stored(blob_key(sha256_hex), present)

    def key_stored(self, key: str, present: frozenset[str] | None) -> bool:
        """Return True when the blob at ``key`` is in the store, by the listing when there
        is one. A blob that arrived after the listing is stored again: harmless, same bytes.
        """
        return (key in present) if present is not None else self.backend.exists(key)


class _Push:
    """One ``put_files`` call: the files its threads store and the digests they took."""

    def __init__(
        self,
        blobs: BlobStore,
        progress: ProgressCallback,
        present: frozenset[str] | None,
        known: dict[FilePath, tuple[FileStat, str]],
        states: dict[FilePath, FileStat],
    ) -> None:
        self.blobs = blobs
        self.progress = progress
        self.present = present
        self.known = known
        #: Each file's state before any was read: "before hashing".
        self.states = states
        #: (file, its state before and after hashing, digest): for the stat cache.
        self.hashed: list[tuple[FilePath, FileStat, str]] = []
        self._lock = threading.Lock()

    def put(self, source: SourceFile) -> FileEntry:
        """Return the entry of a file the stat cache knows, else store the file."""
        return self.reused(source) or self.store(source)

    def reused(self, source: SourceFile) -> FileEntry | None:
        """Return the entry of a file the stat cache knows, unchanged and stored; else None."""
        known = self.known.get(source.local)
        if known is not None and self._unchanged(source.local, known[0]):
            state, sha256_hex = known
            if self.blobs.stored(sha256_hex, self.present):
                self.progress(state.size)
                return FileEntry(source.path, state.size, sha256_hex)
        return None

    def store(self, source: SourceFile) -> FileEntry:
        """Read, hash and (when its blob is missing) store the file; return its entry."""
        before = self.states.get(source.local)
        stored = self.blobs.backend.store_file(
            source.local, self._destination, self.progress, before
        )
        if stored.state is not None and self.blobs.stat_cache is not None:
            with self._lock:
                self.hashed.append((source.local, stored.state, stored.sha256))
        return FileEntry(source.path, stored.size, stored.sha256)

    def _destination(self, sha256_hex: str) -> str | None:
        """Return the key to store a blob at, or None when the store holds it."""
        key = blob_key(sha256_hex)
        return None if self.blobs.key_stored(key, self.present) else key

    @staticmethod
    def _unchanged(path: FilePath, state: FileStat) -> bool:
        """Return True when ``path`` is still in ``state`` (looked up before the pool ran)."""
        return _state_or_none(path) == state


def _state_or_none(path: FilePath) -> FileStat | None:
    try:
        return FileStat.of(path)
    except OSError:
        return None
