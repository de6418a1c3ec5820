"""What the results table reads of each run record, cached locally and packed in the store.

Records are written once and never change, so the table's part of each record (its
row source: fixed cells, flattened config, metric summary, outputs) is kept in the
local cache: a warm ``results`` lists the run ids and reads one file.

Records the cache lacks come from run packs (``aeromancy.store.run_packs``: an
invocation writes one holding its records) and, for the rest, one read each. A reader
that had to read many records one by one, or many packs, stores what it read as one
new pack and removes the packs it merged, so the next cold reader makes a few requests
instead of one per record. The cache is rebuilt whenever it cannot be read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.cache_files import cache_path, write_atomically
from aeromancy.errors import AeromancyError, StoreDamaged
from aeromancy.experiments.results import row_source
from aeromancy.records import NAMESPACES
from aeromancy.store.backend import Backend
from aeromancy.store.layout import run_record_key
from aeromancy.store.manifest import Namespace
from aeromancy.store.run_packs import PackEntry, read_pack, write_pack
from aeromancy.store.runs import RunListing, list_runs

if TYPE_CHECKING:
    from aeromancy.store import Store

logger = logging.getLogger(__name__)

CACHE_FORMAT = 2  # 2: row sources and the packs read
#: A reader that read at least this many records one by one packs them.
PACK_MIN = 50
#: A reader that read more packs than this merges them into one.
PACK_MERGE = 16
WORKERS = 16

Warn = Callable[[str], None]


@dataclass
class CachedRuns:
    """The local cache of one project's runs in one namespace of one store."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    packs: set[str] = field(default_factory=set)


def _cache_file(store: Store, project: str, namespace: Namespace) -> Path:
    where = hashlib.sha256(store.describe().encode()).hexdigest()[:16]
    return cache_path("results", where, namespace, f"{project}.json")


def _read(path: Path) -> CachedRuns:
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") == CACHE_FORMAT:
            return CachedRuns(dict(document["runs"]), set(document["packs"]))
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        pass
    return CachedRuns()


def _write(path: Path, cached: CachedRuns) -> None:
    document = {"format": CACHE_FORMAT, "packs": sorted(cached.packs), "runs": cached.runs}
    write_atomically(path, json.dumps(document, separators=(",", ":")).encode())


def _map(backend: Backend, function: Callable[[str], Any], keys: list[str]) -> Iterable[Any]:
    """Apply ``function`` to ``keys``: in threads on a remote store (requests overlap),
    in this thread on a directory (reads are mostly JSON parsing, which holds the GIL)."""
    if not backend.remote or len(keys) < 2:
        return map(function, keys)
    with ThreadPoolExecutor(min(WORKERS, len(keys))) as pool:
        return list(pool.map(function, keys))


class _Filler:
    """Fills a cache with the records a listing shows and the cache lacks."""

    def __init__(self, backend: Backend, namespace: Namespace, project: str, warn: Warn) -> None:
        self.backend, self.namespace, self.project, self.warn = backend, namespace, project, warn

    def fill(self, listing: RunListing, cached: CachedRuns, missing: list[str]) -> None:
        unseen = [key for key in listing.packs if key not in cached.packs]
        packed: dict[str, PackEntry] = {}
        read: list[str] = []
        if unseen:
            if any(size is None for size in listing.sizes.values()):
                listing = list_runs(self.backend, self.namespace, self.project, sizes=True)
            for key, entries in zip(unseen, _map(self.backend, self._pack, unseen), strict=True):
                if entries is not None:
                    read.append(key)
                    packed.update(_verified(entries, listing))
        left = [run_id for run_id in missing if run_id not in packed]
        fetched = {
            run_id: entry
            for run_id, entry in zip(left, _map(self.backend, self._record, left), strict=True)
            if entry is not None
        }
        for run_id in missing:
            entry = packed.get(run_id) or fetched.get(run_id)
            if entry is not None:
                cached.runs[run_id] = row_source(entry.record)
        cached.packs.update(read)
        if len(fetched) >= PACK_MIN or len(read) > PACK_MERGE:
            self._repack({**packed, **fetched}, read, cached)

    def _pack(self, key: str) -> dict[str, PackEntry] | None:
        try:
            return read_pack(self.backend, key)
        except StoreDamaged as exc:
            self.warn(
                f"ignoring damaged run pack {key}: {exc.message} "
                "(it only repeats stored run records: deleting it loses nothing)"
            )
            return None

    def _record(self, run_id: str) -> PackEntry | None:
        """Return one record's entry; an unreadable record is named and skipped.

        The store's own errors (unreachable, refused) still raise: only the bytes of a
        record are judged here.
        """
        data = self.backend.read_bytes(run_record_key(self.namespace, self.project, run_id))
        if data is None:
            return None  # deleted between listing and reading
        try:
            record = json.loads(data)
        except ValueError as exc:
            self.warn(f"skipping unreadable run record {run_id}: {exc}")
            return None
        if not isinstance(record, dict):
            self.warn(f"skipping run record {run_id}: not a JSON object")
            return None
        return PackEntry.of(data, record)

    def _repack(self, entries: dict[str, PackEntry], merged: list[str], cached: CachedRuns) -> None:
        """Store ``entries`` as one pack and remove the ``merged`` packs it replaces.

        A store that refuses the write (read-only credentials) only costs the next
        cold reader time.
        """
        try:
            key = write_pack(self.backend, self.namespace, self.project, entries)
            cached.packs.add(key)
            for old in merged:
                if old != key:
                    self.backend.delete(old)
                    cached.packs.discard(old)
        except (AeromancyError, OSError) as exc:  # e.g. read-only: only speed is lost
            logger.debug("could not store a run pack: %s", exc)


def _verified(entries: Mapping[str, PackEntry], listing: RunListing) -> dict[str, PackEntry]:
    """Return the entries whose record the listing shows with the size the pack claims."""
    return {
        run_id: entry
        for run_id, entry in entries.items()
        if listing.sizes.get(run_id, -1) == entry.size
    }


def row_sources(
    store: Store, project: str, namespace: Namespace, warn: Warn
) -> list[dict[str, Any]]:
    """Return the row source of every run record of ``project`` in ``namespace``, by run id."""
    backend = store.backend
    listing = list_runs(backend, namespace, project, sizes=backend.remote)
    ids = listing.ids
    path = _cache_file(store, project, namespace)
    cached = _read(path)
    gone = cached.packs - set(listing.packs)  # merged into another by some reader
    cached.packs -= gone
    missing = [run_id for run_id in ids if run_id not in cached.runs]
    if missing:
        _Filler(backend, namespace, project, warn).fill(listing, cached, missing)
    if missing or gone or len(cached.runs) != len(ids):
        cached.runs = {run_id: cached.runs[run_id] for run_id in ids if run_id in cached.runs}
        _write(path, cached)
    return [cached.runs[run_id] for run_id in ids if run_id in cached.runs]


def all_row_sources(store: Store, project: str, warn: Warn) -> list[dict[str, Any]]:
    """Return the row sources of both namespaces, oldest first (by start, then run id)."""
    sources = [s for space in NAMESPACES for s in row_sources(store, project, space, warn)]
    return sorted(sources, key=lambda s: (str(s["fixed"]["started"] or ""), str(s["fixed"]["run"])))
