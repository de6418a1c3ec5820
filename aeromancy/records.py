"""Run records: what one task run did, and the lineage queries they answer.

A run record is a JSON document stored with ``store.put_run_record``; see docs/tasks.md
for its fields. Records are written once and never changed, so every query here is a
read of the records as they are.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.cache_files import cache_path
from aeromancy.errors import NotFound, StoreDamaged
from aeromancy.gcpause import gc_paused
from aeromancy.store.damage import skip
from aeromancy.store.manifest import ArtifactVersion, Namespace
from aeromancy.summary_cache import read_summaries, write_summaries

if TYPE_CHECKING:
    from aeromancy.store import Store

RECORD_FORMAT = 1
SUCCEEDED = "succeeded"
FAILED = "failed"
NAMESPACES: tuple[Namespace, ...] = ("tracked", "dev")


def now_iso() -> str:
    """Return the current UTC time as an ISO 8601 string with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def new_run_id() -> str:
    """Return a new run id: UTC time to the second (ids sort by start) and 32 random bits."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(4)}"


def input_entry(ref: str, version: ArtifactVersion) -> dict[str, Any]:
    """Return how a record lists one input: the task's reference and the exact version."""
    return {
        "ref": ref,
        "project": version.project,
        "name": version.name,
        "label": version.label,
        "digest": version.digest,
    }


def output_entry(version: ArtifactVersion) -> dict[str, Any]:
    """Return how a record lists one published output."""
    return {
        "project": version.project,
        "name": version.name,
        "label": version.label,
        "digest": version.digest,
        "type": version.type,
    }


def namespace_of_label(label: str) -> Namespace:
    """Return the namespace a version label lives in: ``dev3`` -> dev, ``v3`` -> tracked."""
    return "dev" if label.startswith("dev") else "tracked"


def version_of_entry(store: Store, entry: Mapping[str, Any]) -> ArtifactVersion:
    """Return the version an input or output entry names. Raises NotFound when it is gone."""
    label = str(entry["label"])
    ref = f"{entry['project']}/{entry['name']}:{label}"
    return store.resolve(ref, str(entry["project"]), namespace=namespace_of_label(label))


SUMMARY_FIELDS = (
    "run_id",
    "task",
    "status",
    "fingerprint",
    "inputs",
    "outputs",
    "config",
    "code",
    "files",
    "environment_key",
    "started",
    "ended",
    "git_commit",
    "git_dirty",
    "namespace",
    "group",
)


def summarise(store: Store, record: Mapping[str, Any]) -> dict[str, Any]:
    """Return the part of a record that status, lineage and listings read.

    ``output_blobs`` lists the sha256 of every file of the record's outputs (read from
    their manifests once), so a status check can verify them without reading manifests.
    It is None when a manifest is gone, which makes the run unusable for reuse.
    """
    summary = {key: record.get(key) for key in SUMMARY_FIELDS}
    blobs: list[str] = []
    for entry in record.get("outputs") or ():
        try:
            version = version_of_entry(store, entry)
        except (NotFound, StoreDamaged):
            summary["output_blobs"] = None
            return summary
        blobs.extend(f.sha256 for f in version.files)
    summary["output_blobs"] = blobs
    return summary


def _run_ids(store: Store, project: str, namespace: Namespace) -> list[str]:
    """Return the ids of every run record of ``project`` in ``namespace``, sorted."""
    return store.list_run_ids(project, namespace)


def _summary_cache(store: Store, project: str, namespace: Namespace) -> Path:
    where = hashlib.sha256(store.describe().encode()).hexdigest()[:16]
    return cache_path("records", where, namespace, f"{project}.json")


def record_summaries(store: Store, project: str, namespace: Namespace) -> list[dict[str, Any]]:
    """Return the summaries of every run record of ``project`` in ``namespace`` ([] if none).

    Records are written once and never change, so summaries are kept in the local cache
    and only records not seen before are read: a planning pass lists the run ids and
    reads one small file instead of every record.
    """
    ids = _run_ids(store, project, namespace)
    path = _summary_cache(store, project, namespace)
    cached = read_summaries(path)
    missing = [run_id for run_id in ids if run_id not in cached]
    if missing:

        def fetch(run_id: str) -> dict[str, Any] | None:
            try:
                record = store.get_run_record(project, run_id, namespace=namespace)
            except StoreDamaged as exc:  # not cached: a repaired record is read next time
                skip(f"run record {project}/{run_id} in {store.describe()}", exc.message)
                return None
            return summarise(store, record)

        # Remote reads are round trips that threads overlap; local ones are mostly JSON
        # parsing, which holds the GIL, so threads there only add contention.
        workers = min(16, len(missing)) if store.backend.remote else 1
        with ThreadPoolExecutor(workers) as pool:
            fetched = zip(missing, pool.map(fetch, missing), strict=True)
            cached.update((run_id, summary) for run_id, summary in fetched if summary is not None)
    readable = [run_id for run_id in ids if run_id in cached]
    if missing or len(cached) != len(readable):
        cached = {run_id: cached[run_id] for run_id in readable}
        write_summaries(path, cached)
    return [cached[run_id] for run_id in readable]


def remember_summaries(
    store: Store, project: str, namespace: Namespace, summaries: Mapping[str, dict[str, Any]]
) -> None:
    """Add the summaries of records this process just wrote to the local cache.

    The next planning pass then finds them there instead of reading each record back
    from the store. A summary whose record never reached the store is dropped by
    :func:`record_summaries`, which keeps only the ids the store lists.
    """
    if not summaries:
        return
    path = _summary_cache(store, project, namespace)
    cached = read_summaries(path)
    cached.update(summaries)
    write_summaries(path, cached)


def summary_of_written(
    record: Mapping[str, Any], outputs: Sequence[ArtifactVersion]
) -> dict[str, Any]:
    """Return what :func:`summarise` would, for a record written with ``outputs`` in hand."""
    summary = {key: record.get(key) for key in SUMMARY_FIELDS}
    summary["output_blobs"] = [f.sha256 for version in outputs for f in version.files]
    return summary


Accept = Callable[[Mapping[str, Any]], bool]


def _any_record(record: Mapping[str, Any]) -> bool:
    return True


@dataclass
class RecordIndex:
    """The successful runs of one project and namespace, newest first per fingerprint.

    ``environments`` lists, per task, the environment keys its successful runs had
    (newest first): on the host the image id of a tracked run is unknown, so a status
    check there asks whether any of them would match.
    """

    by_fingerprint: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    environments: dict[str, list[str]] = field(default_factory=dict)
    latest: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    by_task: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)

    @classmethod
    def build(cls, records: Iterable[Mapping[str, Any]]) -> RecordIndex:
        """Return the index of ``records`` (failed runs are left out)."""
        index = cls()
        ordered = sorted(records, key=lambda r: str(r.get("ended", "")), reverse=True)
        for record in ordered:
            index._append(record)
        return index

    def _append(self, record: Mapping[str, Any]) -> None:
        if record.get("status") != SUCCEEDED or not record.get("fingerprint"):
            return
        task = str(record.get("task"))
        self.by_fingerprint.setdefault(str(record["fingerprint"]), []).append(record)
        self.latest.setdefault(task, record)
        self.by_task.setdefault(task, []).append(record)
        keys = self.environments.setdefault(task, [])
        key = str(record.get("environment_key", ""))
        if key not in keys:
            keys.append(key)

    @classmethod
    def load(cls, store: Store, project: str, namespace: Namespace) -> RecordIndex:
        """Return the index of every run record of ``project`` in ``namespace``."""
        with gc_paused():
            return cls.build(record_summaries(store, project, namespace))

    def candidate(self, fingerprint: str, accept: Accept = _any_record) -> Mapping[str, Any] | None:
        """Return the newest successful run with this fingerprint that ``accept`` takes."""
        for record in self.by_fingerprint.get(fingerprint, ()):
            if accept(record):
                return record
        return None

    def reusable(
        self, store: Store, fingerprint: str, accept: Accept = _any_record
    ) -> tuple[Mapping[str, Any], list[ArtifactVersion]] | None:
        """Return the newest matching run whose outputs are all still stored, and them.

        ``accept`` may refuse a run (e.g. a file it read has changed). Returns None when
        no successful run has this fingerprint, is accepted and kept its outputs.
        """
        for record in self.by_fingerprint.get(fingerprint, ()):
            if not accept(record):
                continue
            outputs = _stored_outputs(store, record)
            if outputs is not None:
                return record, outputs
        return None

    def add(self, record: Mapping[str, Any]) -> None:
        """Remember a record just written, so later look-ups in this process see it first."""
        if record.get("status") == SUCCEEDED:
            self.by_fingerprint.setdefault(str(record["fingerprint"]), []).insert(0, record)
            self.latest[str(record.get("task"))] = record
            self.by_task.setdefault(str(record.get("task")), []).insert(0, record)
            keys = self.environments.setdefault(str(record.get("task")), [])
            key = str(record.get("environment_key", ""))
            if key not in keys:
                keys.insert(0, key)


def _stored_outputs(store: Store, record: Mapping[str, Any]) -> list[ArtifactVersion] | None:
    versions = []
    for entry in record.get("outputs") or ():
        try:
            version = version_of_entry(store, entry)
        except (NotFound, StoreDamaged):
            return None
        if version.digest != entry.get("digest") or not store.has_content(version):
            return None
        versions.append(version)
    return versions


def all_records(store: Store, project: str) -> list[Mapping[str, Any]]:
    """Return the run record summaries of ``project`` in both namespaces, newest first."""
    records: list[Mapping[str, Any]] = []
    for namespace in NAMESPACES:
        records.extend(record_summaries(store, project, namespace))
    return sorted(
        records, key=lambda r: (str(r.get("started", "")), str(r.get("run_id", ""))), reverse=True
    )


@dataclass
class LineageNode:
    """One artifact version in a lineage tree and the run that links it to its neighbours.

    ``run`` is always the run that produced ``ref``. Upstream, ``children`` are that run's
    inputs; downstream, they are the outputs of the runs that consumed ``ref``.
    ``seen`` marks a version already shown elsewhere in the tree (not expanded again);
    ``missing`` one whose manifest is no longer in the store.
    """

    ref: str
    digest: str
    run: Mapping[str, Any] | None = None
    children: list[LineageNode] = field(default_factory=list)
    seen: bool = False
    missing: bool = False


def _entry_ref(entry: Mapping[str, Any]) -> str:
    return f"{entry['project']}/{entry['name']}:{entry['label']}"


def _find_record(store: Store, version: ArtifactVersion) -> Mapping[str, Any] | None:
    if not version.run_id:
        return None
    try:
        return store.get_run_record(version.project, version.run_id, namespace=version.namespace)
    except NotFound:
        return None
    except StoreDamaged as exc:
        skip(f"run record {version.project}/{version.run_id} in {store.describe()}", exc.message)
        return None


def upstream(store: Store, version: ArtifactVersion) -> LineageNode:
    """Return the tree of ``version``, its producing run, that run's inputs, and so on.

    Walks with an explicit stack, so a chain of any length fits (no recursion).
    """
    seen: set[str] = set()
    root = LineageNode(version.ref, version.digest)
    stack: list[tuple[LineageNode, ArtifactVersion]] = [(root, version)]
    while stack:
        node, current = stack.pop()
        if current.ref in seen:
            node.seen = True
            continue
        seen.add(current.ref)
        node.run = _find_record(store, current)
        parents: list[tuple[LineageNode, ArtifactVersion]] = []
        for entry in (node.run or {}).get("inputs") or ():
            try:
                parent = version_of_entry(store, entry)
            except (NotFound, StoreDamaged):
                missing = LineageNode(_entry_ref(entry), str(entry.get("digest")), missing=True)
                node.children.append(missing)
                continue
            child = LineageNode(parent.ref, parent.digest)
            node.children.append(child)
            parents.append((child, parent))
        stack.extend(reversed(parents))  # the first input is expanded first, as shown
    return root


def consumers_index(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Return the runs that read each version, keyed by ``project/name:label``."""
    index: dict[str, list[Mapping[str, Any]]] = {}
    for record in sorted(records, key=lambda r: str(r.get("started", ""))):
        for entry in record.get("inputs") or ():
            index.setdefault(_entry_ref(entry), []).append(record)
    return index


def downstream(node: LineageNode, index: Mapping[str, Sequence[Mapping[str, Any]]]) -> LineageNode:
    """Return ``node`` with the outputs of the runs that consumed it attached, and so on.

    Walks with an explicit stack, so a chain of any length fits (no recursion).
    """
    seen: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.ref in seen:
            current.seen = True
            continue
        seen.add(current.ref)
        for record in index.get(current.ref, ()):
            for entry in record.get("outputs") or ():
                child = LineageNode(_entry_ref(entry), str(entry.get("digest")), run=record)
                current.children.append(child)
        stack.extend(reversed(current.children))  # the first is expanded first, as shown
    return node


def downstream_of(store: Store, version: ArtifactVersion) -> LineageNode:
    """Return the tree of every version made, directly or not, from ``version``."""
    root = LineageNode(version.ref, version.digest, run=_find_record(store, version))
    return downstream(root, consumers_index(all_records(store, version.project)))
