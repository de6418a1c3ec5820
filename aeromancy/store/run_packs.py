"""Run packs: the slim copy of many run records in one store object, for table readers.

A cold reader of 10,000 run records (``aeromancy results`` on a new machine) would
need one GET per record. A pack holds many records' slim copies (the record without
its environment capture, code file list, traceback and Dockerfile), so that reader
lists the keys (1,000 a page), fetches the few packs and reads only the records no
pack holds. Packs are derived data: every record they hold is also stored on its
own, so a pack can be lost or deleted at no cost but speed.

``<namespace root>runs/<project>/packs/<sha256>.json.gz`` is gzip of one JSON
document: ``{"format": 1, "runs": {run_id: {"size", "sha256", "record"}}}``, where
``size`` and ``sha256`` describe the stored bytes of the record and ``record`` is its
slim copy. A reader trusts a pack only when its bytes hash to its name, and an entry
only when the listing shows that run's record with that size.
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
from aeromancy.store.layout import runs_prefix
from aeromancy.store.manifest import Namespace

PACK_FORMAT = 1
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


def packs_prefix(namespace: Namespace, project: str) -> str:
    """Return the folder holding the run packs of ``project``."""
    return f"{runs_prefix(namespace, project)}{PACKS}"


def is_pack_key(key: str, namespace: Namespace, project: str) -> bool:
    """Return True when ``key`` names a run pack of ``project``."""
    prefix = packs_prefix(namespace, project)
    name = key[len(prefix) : -len(SUFFIX)]
    return key.startswith(prefix) and key.endswith(SUFFIX) and _NAME.fullmatch(name) is not None


def encode_pack(entries: Mapping[str, PackEntry]) -> bytes:
    """Return the stored bytes of a pack of ``entries`` (by run id); the same entries
    always give the same bytes."""
    runs = {
        run_id: {"size": e.size, "sha256": e.sha256, "record": e.record}
        for run_id, e in sorted(entries.items())
    }
    document = json.dumps({"format": PACK_FORMAT, "runs": runs}, sort_keys=True)
    return gzip.compress(document.encode(), compresslevel=6, mtime=0)


def write_pack(
    backend: Backend, namespace: Namespace, project: str, entries: Mapping[str, PackEntry]
) -> str:
    """Store a pack of ``entries``; return its key. Writing the same pack twice is one pack."""
    data = encode_pack(entries)
    key = f"{packs_prefix(namespace, project)}{hashlib.sha256(data).hexdigest()}{SUFFIX}"
    backend.create(key, data)
    return key


def read_pack(backend: Backend, key: str) -> dict[str, PackEntry] | None:
    """Return the entries of the pack at ``key``; None when it is gone, {} when it is of
    a format this version does not read.

    Raises StoreDamaged when its bytes do not hash to its name or do not decode.
    """
    data = backend.read_bytes(key)
    if data is None:
        return None
    name = key.rsplit("/", 1)[-1][: -len(SUFFIX)]
    if hashlib.sha256(data).hexdigest() != name:
        raise StoreDamaged(f"its bytes do not hash to its name ({len(data)} bytes)")
    try:
        document = json.loads(gzip.decompress(data))
        if document["format"] != PACK_FORMAT:
            return {}  # written by another version of Aeromancy: not ours to read
        return {
            str(run_id): PackEntry(int(e["size"]), str(e["sha256"]), dict(e["record"]))
            for run_id, e in document["runs"].items()
        }
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreDamaged(f"not a run pack: {exc}") from exc


class RunPacker:
    """Collects the records one invocation stores; :meth:`close` stores them as one pack.

    Thread-safe (tasks finish in several threads). A pack is written only for two
    records or more, and a store that refuses it costs only a later reader's time.
    """

    def __init__(self, backend: Backend, namespace: Namespace, project: str) -> None:
        self.backend, self.namespace, self.project = backend, namespace, project
        self._entries: dict[str, PackEntry] = {}
        self._lock = threading.Lock()

    def add(self, run_id: str, data: bytes, record: Mapping[str, Any]) -> None:
        """Add the record stored as ``data``."""
        entry = PackEntry.of(data, record)
        with self._lock:
            self._entries[run_id] = entry

    def close(self) -> None:
        """Store the collected records as one pack (nothing for fewer than two)."""
        with self._lock:
            entries, self._entries = self._entries, {}
        if len(entries) < 2:
            return
        try:
            write_pack(self.backend, self.namespace, self.project, entries)
        except (AeromancyError, OSError) as exc:  # e.g. read-only: only speed is lost
            logger.debug("could not store a run pack: %s", exc)
