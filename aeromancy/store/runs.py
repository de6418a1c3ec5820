"""Run records: one JSON document per task run, written once."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aeromancy.errors import NotFound, StoreDamaged, UsageError
from aeromancy.names import check_name
from aeromancy.store.backend import Backend
from aeromancy.store.damage import skip
from aeromancy.store.layout import run_record_key, runs_prefix
from aeromancy.store.manifest import Namespace
from aeromancy.store.run_packs import is_pack_key


def put_run_record(
    backend: Backend, namespace: Namespace, project: str, run_id: str, record: dict[str, Any]
) -> bytes:
    """Write a run record; return the bytes stored. Raise UsageError if one with this id
    already exists."""
    check_name(run_id, "run id")
    # Standard JSON: NaN and infinities (a metric, a --set value) become strings.
    data = json.dumps(finite(record), indent=2, sort_keys=True, allow_nan=False).encode()
    if not backend.create(run_record_key(namespace, project, run_id), data):
        raise UsageError(
            f"run record {project}/{run_id} already exists", "run records are written once"
        )
    return data


def get_run_record(
    backend: Backend, namespace: Namespace, project: str, run_id: str
) -> dict[str, Any]:
    """Return one run record; raise NotFound when there is none with this id."""
    check_name(run_id, "run id")
    key = run_record_key(namespace, project, run_id)
    data = backend.read_bytes(key)
    if data is None:
        raise NotFound(
            f"no run {run_id} in project {project}", "`aeromancy runs` lists the recorded runs"
        )
    return _decode(data, key)


def list_run_records(
    backend: Backend, namespace: Namespace, project: str, workers: int
) -> list[dict[str, Any]]:
    """Return every readable run record of ``project``, ordered by run id ([] when none).

    A corrupt record is left out with one warning line naming it.
    """
    keys = [
        run_record_key(namespace, project, run_id)
        for run_id in list_run_ids(backend, namespace, project)
    ]

    def load(key: str) -> dict[str, Any] | None:
        data = backend.read_bytes(key)
        if data is None:
            return None
        try:
            return _decode(data, key)
        except StoreDamaged as exc:
            skip(f"run record {key} in {backend.describe()}", exc.message)
            return None

    with ThreadPoolExecutor(max(1, min(workers, len(keys)))) as pool:
        return [record for record in pool.map(load, keys) if record is not None]


def list_run_ids(backend: Backend, namespace: Namespace, project: str) -> list[str]:
    """Return the ids of every run record of ``project``, sorted ([] when none)."""
    prefix = runs_prefix(namespace, project)
    return sorted(filter(None, (_run_id(key, prefix) for key in backend.list_prefix(prefix))))


def _run_id(key: str, prefix: str) -> str | None:
    rest = key[len(prefix) :]
    # Only direct children of the prefix: runs/<project>/<run-id>.json.
    if rest.endswith(".json") and "/" not in rest:
        return rest[: -len(".json")]
    return None


@dataclass(frozen=True)
class RunListing:
    """What one listing of a project's runs folder shows: each record's run id and
    size (None when the listing did not ask for sizes), and the run packs' keys."""

    sizes: dict[str, int | None]
    packs: list[str]

    @property
    def ids(self) -> list[str]:
        """Return the run ids, sorted."""
        return sorted(self.sizes)


def list_runs(backend: Backend, namespace: Namespace, project: str, sizes: bool) -> RunListing:
    """Return the run records and packs of ``project``; with ``sizes``, the record sizes.

    On S3 sizes come with the listing; on a directory they cost one stat per record.
    """
    prefix = runs_prefix(namespace, project)
    objects: list[tuple[str, int | None]]
    if sizes:
        objects = [(info.key, info.size) for info in backend.list_objects(prefix)]
    else:
        objects = [(key, None) for key in backend.list_prefix(prefix)]
    found: dict[str, int | None] = {}
    packs = []
    for key, size in objects:
        run_id = _run_id(key, prefix)
        if run_id is not None:
            found[run_id] = size
        elif is_pack_key(key, namespace, project):
            packs.append(key)
    return RunListing(found, sorted(packs))


def _decode(data: bytes, key: str) -> dict[str, Any]:
    """Return the record ``data`` holds, its entry lists cleaned; raise StoreDamaged if none."""
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise StoreDamaged(f"run record {key} is not valid JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise StoreDamaged(f"run record {key} is not a JSON object")
    for field in ("inputs", "outputs"):
        if field in record:
            record[field] = _entries(record[field])
    return record


def _entries(value: object) -> list[dict[str, Any]]:
    """Return the well-formed artifact entries of an inputs/outputs list (null gives [])."""
    if not isinstance(value, list):
        return []
    return [
        entry
        for entry in value
        if isinstance(entry, dict)
        and all(isinstance(entry.get(key), str) for key in ("project", "name", "label"))
    ]


def finite(value: Any) -> Any:
    """Return ``value`` with every NaN or infinite float replaced by its name as a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value
