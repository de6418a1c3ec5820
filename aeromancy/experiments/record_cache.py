"""The part of each run record the results table and sweeps read, cached locally.

Records are written once and never change, so the slim copy of each (the record
without its environment capture, code file list and traceback) is kept in the local
cache: a ``results`` call lists the run ids and reads one file, fetching only the
records it has not seen before. The cache is rebuilt whenever it cannot be read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.cache_files import cache_path, write_atomically
from aeromancy.records import NAMESPACES
from aeromancy.store.layout import run_record_key
from aeromancy.store.manifest import Namespace

if TYPE_CHECKING:
    from aeromancy.store import Store

CACHE_FORMAT = 1
# Large parts of a record that no table column shows.
LEFT_OUT = ("environment", "code", "error", "dockerfile")

Warn = Callable[[str], None]


def slim(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``record`` without its large parts; ``failed`` says whether it had an error."""
    kept = {key: value for key, value in record.items() if key not in LEFT_OUT}
    kept["has_error"] = bool(record.get("error"))
    return kept


def _cache_file(store: Store, project: str, namespace: Namespace) -> Path:
    where = hashlib.sha256(store.describe().encode()).hexdigest()[:16]
    return cache_path("results", where, namespace, f"{project}.json")


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") == CACHE_FORMAT:
            return dict(document["runs"])
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        pass
    return {}


def _write(path: Path, runs: Mapping[str, Any]) -> None:
    document = {"format": CACHE_FORMAT, "runs": runs}
    write_atomically(path, json.dumps(document, separators=(",", ":")).encode())


def _fetcher(
    store: Store, project: str, namespace: Namespace, warn: Warn
) -> Callable[[str], dict[str, Any] | None]:
    """Return a reader of one record; an unreadable record is named and skipped.

    The store's own errors (unreachable, refused) still raise: only the bytes of a
    record are judged here.
    """

    def fetch(run_id: str) -> dict[str, Any] | None:
        data = store.backend.read_bytes(run_record_key(namespace, project, run_id))
        if data is None:
            return None  # deleted between listing and reading
        try:
            record = json.loads(data)
        except ValueError as exc:
            warn(f"skipping unreadable run record {run_id}: {exc}")
            return None
        if not isinstance(record, dict):
            warn(f"skipping run record {run_id}: not a JSON object")
            return None
        return slim(record)

    return fetch


def slim_records(
    store: Store, project: str, namespace: Namespace, warn: Warn
) -> list[dict[str, Any]]:
    """Return the slim copy of every run record of ``project`` in ``namespace``, by run id."""
    ids = store.list_run_ids(project, namespace)
    path = _cache_file(store, project, namespace)
    cached = _read(path)
    missing = [run_id for run_id in ids if run_id not in cached]
    if missing:
        fetch = _fetcher(store, project, namespace, warn)
        workers = min(16, len(missing)) if store.backend.remote else 1
        with ThreadPoolExecutor(workers) as pool:
            for run_id, found in zip(missing, pool.map(fetch, missing), strict=True):
                if found is not None:
                    cached[run_id] = found
    if missing or len(cached) != len(ids):
        cached = {run_id: cached[run_id] for run_id in ids if run_id in cached}
        _write(path, cached)
    return [cached[run_id] for run_id in ids if run_id in cached]


def all_slim_records(store: Store, project: str, warn: Warn) -> list[dict[str, Any]]:
    """Return the slim records of both namespaces, oldest first (by start, then run id)."""
    records = [r for space in NAMESPACES for r in slim_records(store, project, space, warn)]
    return sorted(records, key=lambda r: (str(r.get("started") or ""), str(r.get("run_id"))))
