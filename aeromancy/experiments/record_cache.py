"""What the results table reads of each run record, cached locally and packed in the store.

Records are written once and never change, so the table's part of each record (its
row source: fixed cells, flattened config, metric summary, outputs) is kept in the
local cache: a warm ``results`` scans the store (:mod:`aeromancy.store.run_scan`:
the start markers, then the packs and the records after the oldest open marker, two
listings) and reads one file.

Records the cache lacks come from the run packs the scan reads and, for the rest, one
read each. A reader that knows every record with its entry and had to list
everything, read many packs or read many records one by one, stores them all as one
sealed pack and removes the packs it replaces, so the next cold reader makes a few
requests. A reader that finds the start marker of a launcher that died on this host
packs the records after it and removes it. The cache is rebuilt whenever it cannot
be read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.cache_files import cache_path, write_atomically
from aeromancy.errors import AeromancyError
from aeromancy.experiments.results import row_source
from aeromancy.records import NAMESPACES
from aeromancy.store.backend import Backend
from aeromancy.store.layout import run_record_key
from aeromancy.store.manifest import Namespace
from aeromancy.store.run_markers import is_dead
from aeromancy.store.run_packs import PACK_FORMAT, PackEntry, write_pack
from aeromancy.store.run_scan import PackInfo, RunScan, map_keys, scan_runs

if TYPE_CHECKING:
    from aeromancy.store import Store

logger = logging.getLogger(__name__)

CACHE_FORMAT = 3  # 3: row sources and the packs read, with their seal and format
#: A reader that read at least this many records one by one packs them.
PACK_MIN = 50
#: A reader that read more packs than this merges them into one.
PACK_MERGE = 16

Warn = Callable[[str], None]


@dataclass
class CachedRuns:
    """The local cache of one project's runs in one namespace of one store."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    packs: dict[str, PackInfo] = field(default_factory=dict)


def _cache_file(store: Store, project: str, namespace: Namespace) -> Path:
    where = hashlib.sha256(store.describe().encode()).hexdigest()[:16]
    return cache_path("results", where, namespace, f"{project}.json")


def _read(path: Path) -> CachedRuns:
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") == CACHE_FORMAT:
            packs = {key: PackInfo(i[0], int(i[1])) for key, i in document["packs"].items()}
            return CachedRuns(dict(document["runs"]), packs)
    except (OSError, ValueError, KeyError, AttributeError, TypeError, IndexError):
        pass
    return CachedRuns()


def _write(path: Path, cached: CachedRuns) -> None:
    packs = {key: [info.sealed, info.format] for key, info in sorted(cached.packs.items())}
    document = {"format": CACHE_FORMAT, "packs": packs, "runs": cached.runs}
    write_atomically(path, json.dumps(document, separators=(",", ":")).encode())


class _Filler:
    """Fills a cache with the records a scan shows and the cache lacks, and packs them."""

    def __init__(
        self, backend: Backend, namespace: Namespace, project: str, scan: RunScan, warn: Warn
    ) -> None:
        self.backend, self.namespace, self.project, self.warn = backend, namespace, project, warn
        self.scan = scan
        #: The entry of each record read in this call (from a pack or on its own).
        self.entries: dict[str, PackEntry] = {}
        self.fetched = 0

    def fill(self, cached: CachedRuns, missing: list[str]) -> None:
        """Add the row source of each ``missing`` record to ``cached``."""
        self.entries = {
            run_id: entry
            for run_id, entry in self.scan.entries.items()
            if self.scan.listed.get(run_id, entry.size) == entry.size
        }
        self.fetch([run_id for run_id in missing if run_id not in self.entries])
        for run_id in missing:
            if run_id in self.entries:
                cached.runs[run_id] = row_source(self.entries[run_id].record)

    def fetch(self, run_ids: list[str]) -> None:
        """Read each record of ``run_ids`` on its own into :attr:`entries`."""
        records = map_keys(self.backend, self._record, run_ids)
        for run_id, entry in zip(run_ids, records, strict=True):
            if entry is not None:
                self.entries[run_id] = entry
                self.fetched += 1

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

    def pack_up(self, cached: CachedRuns, ids: list[str]) -> None:
        """Store what this call read as a pack when that saves later readers requests.

        A store that refuses the write (read-only credentials) only costs the next
        cold reader time.
        """
        scan = self.scan
        try:
            if ids and all(run_id in self.entries for run_id in ids):
                if scan.full or len(scan.read) > PACK_MERGE or self.fetched >= PACK_MIN:
                    self._seal(cached, ids)
            elif len(scan.read) > PACK_MERGE:
                self._merge(cached)
            elif self.fetched >= PACK_MIN:
                fetched = {i: e for i, e in self.entries.items() if i not in scan.entries}
                self._store(cached, fetched, None, [])
            self._reap(cached)
        except (AeromancyError, OSError) as exc:  # e.g. read-only: only speed is lost
            logger.debug("could not store a run pack: %s", exc)

    def _seal(self, cached: CachedRuns, ids: list[str]) -> None:
        """Store every record as one pack sealed at the scan's bound; remove the others."""
        seal = max(filter(None, [self.scan.bound, self.scan.seal]))
        replaced = [*self.scan.packs, *self.scan.damaged]
        self._store(cached, {run_id: self.entries[run_id] for run_id in ids}, seal, replaced)

    def _merge(self, cached: CachedRuns) -> None:
        """Store the invocations' packs read in this call as one; remove them."""
        merged = [key for key in self.scan.read if self.scan.packs[key].sealed is None]
        entries = {i: e for i, e in self.scan.entries.items() if i in self.entries}
        self._store(cached, entries, None, merged if len(merged) == len(self.scan.read) else [])

    def _store(
        self,
        cached: CachedRuns,
        entries: dict[str, PackEntry],
        sealed: str | None,
        replaced: list[str],
    ) -> None:
        key = write_pack(self.backend, self.namespace, self.project, entries, sealed)
        cached.packs[key] = PackInfo(sealed, PACK_FORMAT)
        gone = [old for old in replaced if old != key]
        map_keys(self.backend, self.backend.delete, gone)
        for old in gone:
            cached.packs.pop(old, None)

    def _reap(self, cached: CachedRuns) -> None:
        """Pack the records listed after the floor and remove the dead markers."""
        dead = [marker for marker in self.scan.markers if is_dead(self.backend, marker)]
        if not dead:
            return
        listed = sorted(self.scan.listed)
        self.fetch([run_id for run_id in listed if run_id not in self.entries])
        if all(run_id in self.entries for run_id in listed):
            self._store(cached, {run_id: self.entries[run_id] for run_id in listed}, None, [])
            for marker in dead:
                self.backend.delete(marker.key)


def row_sources(
    store: Store, project: str, namespace: Namespace, warn: Warn
) -> list[dict[str, Any]]:
    """Return the row source of every run record of ``project`` in ``namespace``, by run id."""
    backend = store.backend
    path = _cache_file(store, project, namespace)
    cached = _read(path)
    scan = scan_runs(backend, namespace, project, cached.packs, warn)
    ids = scan.ids(cached.runs)
    missing = [run_id for run_id in ids if run_id not in cached.runs]
    changed = bool(missing) or set(cached.packs) != set(scan.packs) or len(cached.runs) != len(ids)
    cached.packs = dict(scan.packs)
    filler = _Filler(backend, namespace, project, scan, warn)
    if missing:
        filler.fill(cached, missing)
    if missing or scan.full or scan.markers:
        packs = dict(cached.packs)
        filler.pack_up(cached, ids)
        changed = changed or packs != cached.packs
    if changed:
        cached.runs = {run_id: cached.runs[run_id] for run_id in ids if run_id in cached.runs}
        _write(path, cached)
    return [cached.runs[run_id] for run_id in ids if run_id in cached.runs]


def all_row_sources(store: Store, project: str, warn: Warn) -> list[dict[str, Any]]:
    """Return the row sources of both namespaces, oldest first (by start, then run id)."""
    sources = [s for space in NAMESPACES for s in row_sources(store, project, space, warn)]
    return sorted(sources, key=lambda s: (str(s["fixed"]["started"] or ""), str(s["fixed"]["run"])))
