"""Run records: one JSON document per task run, written once."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aeromancy.errors import NotFound, StoreDamaged, UsageError
from aeromancy.names import check_name
from aeromancy.store.backend import Backend
from aeromancy.store.damage import skip
from aeromancy.store.layout import run_record_key, runs_prefix
from aeromancy.store.manifest import Namespace


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
    return sorted(filter(None, (run_id_of(key, prefix) for key in backend.list_prefix(prefix))))


def run_id_of(key: str, prefix: str) -> str | None:
    """Return the run id of the record at ``key`` under ``prefix``, or None if it is none."""
    rest = key[len(prefix) :]
    # Only direct children of the prefix: runs/<project>/<run-id>.json.
    if rest.endswith(".json") and "/" not in rest:
        return rest[: -len(".json")]
    return None


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
