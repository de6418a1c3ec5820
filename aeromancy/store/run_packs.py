"""Run packs: the slim copy of many run records in one store object, for table readers.

A cold reader of 10,000 run records (``aeromancy results`` on a new machine) would
need one GET per record, and a listing of every record key (1,000 a page). A pack
holds many records' slim copies (the record without its environment capture, code
file list, traceback and Dockerfile). Each invocation stores one pack of the records
it wrote when it ends, then removes its start marker (:mod:`aeromancy.store.run_markers`);
readers (:mod:`aeromancy.store.run_scan`) read the packs and list only the records
after the oldest open marker. Every record a pack holds is also stored on its own.

``<namespace root>runs/<project>/packs/<sha256>.json.gz`` is gzip of one JSON
document: ``{"format": 2, "sealed": S, "runs": {run_id: {"size", "sha256", "record"}}}``,
where ``size`` and ``sha256`` describe the stored bytes of the record and ``record`` is
its slim copy. ``sealed`` is null in an invocation's pack; a reader that knew every
record of the project when it wrote a pack sets it to a run-id stamp ``S``: every
record whose id sorts before ``S`` and whose writer left no start marker (records of
Aeromancy before start markers) is in that pack. A reader trusts a pack only when its
bytes hash to its name. Format 1 packs (no ``sealed``) were written by Aeromancy
before start markers; their presence tells a reader such a writer may be about.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aeromancy.errors import AeromancyError, StoreDamaged
from aeromancy.store.backend import Backend
from aeromancy.store.layout import run_record_key, runs_prefix
from aeromancy.store.manifest import Namespace
from aeromancy.store.run_markers import Marker, create_marker

PACK_FORMAT = 2
#: Formats this version reads: 1 (before start markers) and 2.
READABLE = (1, 2)
PACKS = "packs/"
SUFFIX = ".json.gz"
#: Large parts of a record that no results column shows.
LEFT_OUT = ("environment", "code", "error", "dockerfile")
_NAME = re.compile(r"[0-9a-f]{64}")

logger = logging.getLogger(__name__)


def slim(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``record`` without its large parts; ``has_error`` says whether it had an error."""
    kept = {key: value for key, value in record.items() if key not in LEFT_OUT}
    kept["has_error"] = bool(record.get("error"))
    return kept


@dataclass(frozen=True)
class PackEntry:
    """One record in a pack: its stored bytes' size and sha256 hex, and its slim copy."""

    size: int
    sha256: str
    record: dict[str, Any]

    @classmethod
    def of(cls, data: bytes, record: Mapping[str, Any]) -> PackEntry:
        """Return the entry of a record stored as ``data``."""
        return cls(len(data), hashlib.sha256(data).hexdigest(), slim(record))


@dataclass(frozen=True)
class Pack:
    """What one pack holds: its entries by run id, its seal (None: an invocation's pack)
    and its format (1: written before start markers)."""

    entries: dict[str, PackEntry]
    sealed: str | None = None
    format: int = PACK_FORMAT


def packs_prefix(namespace: Namespace, project: str) -> str:
    """Return the folder holding the run packs of ``project``."""
    return f"{runs_prefix(namespace, project)}{PACKS}"


def is_pack_key(key: str, namespace: Namespace, project: str) -> bool:
    """Return True when ``key`` names a run pack of ``project``."""
    prefix = packs_prefix(namespace, project)
    name = key[len(prefix) : -len(SUFFIX)]
    return key.startswith(prefix) and key.endswith(SUFFIX) and _NAME.fullmatch(name) is not None


def encode_pack(entries: Mapping[str, PackEntry], sealed: str | None = None) -> bytes:
    """Return the stored bytes of a pack of ``entries`` (by run id); the same entries
    and seal always give the same bytes."""
    runs = {
        run_id: {"size": e.size, "sha256": e.sha256, "record": e.record}
        for run_id, e in sorted(entries.items())
    }
    document = json.dumps({"format": PACK_FORMAT, "sealed": sealed, "runs": runs}, sort_keys=True)
    return gzip.compress(document.encode(), compresslevel=6, mtime=0)


def write_pack(
    backend: Backend,
    namespace: Namespace,
    project: str,
    entries: Mapping[str, PackEntry],
    sealed: str | None = None,
) -> str:
    """Store a pack of ``entries``; return its key. Writing the same pack twice is one pack."""
    data = encode_pack(entries, sealed)
    key = f"{packs_prefix(namespace, project)}{hashlib.sha256(data).hexdigest()}{SUFFIX}"
    backend.create(key, data)
    return key


def read_pack(backend: Backend, key: str) -> Pack | None:
    """Return the pack at ``key``; None when it is gone.

    Raises StoreDamaged when its bytes do not hash to its name or do not decode, or
    when it is of a format this version does not read (a newer Aeromancy's: a reader
    cannot know what it claims).
    """
    data = backend.read_bytes(key)
    if data is None:
        return None
    name = key.rsplit("/", 1)[-1][: -len(SUFFIX)]
    if hashlib.sha256(data).hexdigest() != name:
        raise StoreDamaged(f"its bytes do not hash to its name ({len(data)} bytes)")
    try:
        document = json.loads(gzip.decompress(data))
        form = document["format"]
        sealed = document.get("sealed")
        entries = {
            str(run_id): PackEntry(int(e["size"]), str(e["sha256"]), dict(e["record"]))
            for run_id, e in document["runs"].items()
        }
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreDamaged(f"not a run pack: {exc}") from exc
    if form not in READABLE:
        raise StoreDamaged(f"a run pack of format {form}, which this version does not read")
    return Pack(entries, str(sealed) if sealed is not None else None, int(form))


class RunPacker:
    """Brackets the records one invocation writes: :meth:`open` stores its start marker
    (before any run id is minted), :meth:`add` collects each record written, and
    :meth:`close` stores them as one pack and then removes the marker.

    Thread-safe (tasks finish in several threads). The marker stays when the
    invocation did not complete (an exception, a record written elsewhere that is not
    in the store yet, a pack the store refused): readers then list the records after
    its stamp, which costs them time and never a record.
    """

    def __init__(self, backend: Backend, namespace: Namespace, project: str) -> None:
        self.backend, self.namespace, self.project = backend, namespace, project
        self._entries: dict[str, PackEntry] = {}
        self._elsewhere: set[str] = set()
        self._marker: Marker | None = None
        self._held = False
        self._lock = threading.Lock()

    def open(self, workers: bool = False) -> None:
        """Store the start marker (once); ``workers``: other processes write records.

        Store errors raise: records written without a marker could be missed by readers.
        """
        with self._lock:
            if self._marker is None:
                self._marker = create_marker(self.backend, self.namespace, self.project, workers)
                self._seal_if_first(self._marker)

    def _seal_if_first(self, marker: Marker) -> None:
        """Store an empty sealed pack when this is the project's first writer: readers
        then never need to list every record to find records older than start markers."""
        if self.backend.list_prefix(packs_prefix(self.namespace, self.project), limit=1):
            return
        if self.backend.list_prefix(runs_prefix(self.namespace, self.project), limit=2) == [
            marker.key
        ]:
            write_pack(self.backend, self.namespace, self.project, {}, sealed=marker.stamp)

    def hold(self) -> None:
        """Keep the marker when closing: a record may still be written that this
        invocation cannot name (a task lost on the cluster, whose worker may have
        written it or may still write it)."""
        with self._lock:
            self._held = True

    def add(self, run_id: str, data: bytes | None, record: Mapping[str, Any]) -> None:
        """Add the record stored as ``data``; None: another process stored it (a cluster
        worker), or tried to: :meth:`close` reads it from the store."""
        entry = None if data is None else PackEntry.of(data, record)
        with self._lock:
            if entry is None:
                self._elsewhere.add(run_id)
            else:
                self._entries[run_id] = entry

    def close(self, complete: bool = True) -> None:
        """Store the collected records as one pack; with ``complete`` (no record of the
        invocation can still be written) and every record found, remove the marker."""
        with self._lock:
            entries, self._entries = self._entries, {}
            elsewhere, self._elsewhere = sorted(self._elsewhere), set()
            marker, self._marker = self._marker, None
            complete = complete and not self._held
        found = self._read_elsewhere(elsewhere)
        entries.update(found)
        try:
            if entries:
                write_pack(self.backend, self.namespace, self.project, entries)
            if marker is not None and complete and len(found) == len(elsewhere):
                self.backend.delete(marker.key)
        except (AeromancyError, OSError) as exc:  # the marker stays: only speed is lost
            logger.debug("could not store a run pack: %s", exc)

    def _read_elsewhere(self, run_ids: list[str]) -> dict[str, PackEntry]:
        found = {}
        for run_id in run_ids:
            try:
                data = self.backend.read_bytes(run_record_key(self.namespace, self.project, run_id))
                record = json.loads(data) if data is not None else None
            except (AeromancyError, OSError, ValueError):
                record = None
            if isinstance(record, dict) and data is not None:
                found[run_id] = PackEntry.of(data, record)
        return found
