"""Pulling through the read cache (S3, or hard links): each file placed once its blob is.

Blobs are fetched into the verified cache by a few threads (round trips overlap);
meanwhile this thread places each file under DEST as soon as its blob is in the cache
and checked, so writing DEST overlaps the network instead of following it (20,000
small files took 10 s to place on a slow disk, after a 47 s fetch). The guarantees
are :func:`.placing.placing`'s: nothing partial under a real name, and on any failure
(a blob damaged or missing, a full disk) the files placed are removed again and the
fetching stops.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from aeromancy.store.backend import ProgressCallback
from aeromancy.store.cache import BlobCache
from aeromancy.store.placing import Wanted, placing
from aeromancy.store.pulling import size_damage
from aeromancy.store.threads import map_in_threads


class _Stopped(Exception):
    """Raised in a fetching thread once placing has failed: fetch nothing more."""


class _Fetching:
    """Blobs fetched into the cache by threads, handed to the placing thread as they come."""

    def __init__(self, cache: BlobCache, sizes: dict[str, int], progress: ProgressCallback):
        self.cache = cache
        self.sizes = sizes
        self.progress = progress
        #: Each fetched blob's digest and cache entry; None once the fetching ended.
        self.fetched: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self.stop = threading.Event()

    def fetch(self, digest: str) -> None:
        """Fetch one blob (in a fetching thread) and hand it over."""
        if self.stop.is_set():
            raise _Stopped
        self.fetched.put((digest, self.cache.fetch(digest, self.progress, self.sizes[digest])))

    def arrivals(self, fetching: Future[list[None]]) -> Iterator[tuple[str, Path]]:
        """Yield each fetched blob as it comes; then raise the error a fetch ended with."""
        fetching.add_done_callback(lambda _done: self.fetched.put(None))
        while (got := self.fetched.get()) is not None:
            yield got
        fetching.result()


def pull_through_cache(
    cache: BlobCache,
    ref: str,
    dest: Path,
    missing: list[Wanted],
    *,
    all_paths: list[str],
    threads: int,
    progress: ProgressCallback,
) -> None:
    """Fetch the blobs of ``missing`` into ``cache`` on ``threads`` threads and place
    each of its files under ``dest`` (``all_paths``: every path of version ``ref``)
    as its blob arrives."""
    waiting: dict[str, list[Wanted]] = {}
    for item in missing:
        waiting.setdefault(item.sha256, []).append(item)
    fetching = _Fetching(cache, {item.sha256: item.size for item in missing}, progress)
    with ThreadPoolExecutor(1, thread_name_prefix="aeromancy-fetch") as runner:
        count = max(1, min(threads, len(waiting)))
        future = runner.submit(map_in_threads, fetching.fetch, sorted(waiting), count)
        try:
            with placing(dest, all_paths) as place:
                for digest, entry in fetching.arrivals(future):
                    for item in waiting[digest]:
                        actual = entry.stat().st_size
                        if actual != item.size:
                            raise size_damage(ref, item, actual)
                        place(entry, item.path)
        finally:
            fetching.stop.set()  # placing failed: the fetching threads take nothing more
