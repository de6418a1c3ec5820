"""Whether each task of a plan is up to date, decided without running anything.

Used by ``aeromancy list`` and the planning benchmark. The executor makes the same
decision task by task while it runs (a stale upstream task may still produce
byte-identical outputs, and then its consumers stay up to date).

A pass first trusts the run summaries (which list each output's blobs), then checks
every blob of every reused output in one bulk query. Only when something is gone
does it check again task by task, reading manifests, to say exactly which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.file_deps import FileDigests
from aeromancy.fingerprint import CodeIdentity, fingerprint
from aeromancy.gcpause import gc_paused
from aeromancy.planning import Plan
from aeromancy.records import RecordIndex
from aeromancy.staleness import Current, why_stale
from aeromancy.store.blobs import BLOBS_PREFIX
from aeromancy.store.layout import blob_key

if TYPE_CHECKING:
    from aeromancy.store import Store

EnvironmentKeys = Callable[[str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """One task's status: up to date (with the run it would reuse) or why it would run.

    ``outputs`` maps each output name to the digest of the version it would reuse;
    ``blobs`` lists that version's file digests (empty when the task would run).
    """

    task: str
    up_to_date: bool
    reason: str
    run_id: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    blobs: tuple[str, ...] = ()


def plan_status(
    plan: Plan,
    store: Store,
    index: RecordIndex,
    code: Mapping[str, CodeIdentity],
    environment_keys: EnvironmentKeys,
    *,
    root: Path | None = None,
) -> dict[str, TaskStatus]:
    """Return the status of each planned task, in plan order.

    ``environment_keys(task)`` gives the environment keys a matching run may have had:
    the current one when known, else those of the task's earlier runs. With ``root``,
    a run whose recorded project files changed is not reused.
    """
    files = None if root is None else FileDigests(root)
    with gc_paused():
        quick = _StatusPass(plan, store, index, code, environment_keys, files, False).run()
        if blobs_present(store, (sha for status in quick.values() for sha in status.blobs)):
            return quick
        return _StatusPass(plan, store, index, code, environment_keys, files, True).run()


#: From this many blobs, the store's blob folders are listed instead of probing each.
LIST_FROM = 2000
#: ...unless the store holds more than this many times the blobs asked about.
LIST_AT_MOST = 4


def blobs_present(store: Store, digests: Iterable[str], list_from: int = LIST_FROM) -> bool:
    """Return True when every blob is in the store (True for none), asked in one bulk call.

    Many blobs are checked against one listing of the store's blobs: for 50,000 blobs
    that is 256 folders read (or 50 requests) instead of 50,000 probes. A store holding
    far more blobs than asked about is probed blob by blob instead.
    """
    unique = set(digests)
    if len(unique) < list_from:
        return store.has_blobs(unique)
    limit = LIST_AT_MOST * len(unique)
    listed = store.backend.list_prefix(BLOBS_PREFIX, limit)
    if len(listed) >= limit:
        return store.has_blobs(unique)
    keys = set(listed)
    return all(blob_key(digest) in keys for digest in unique)


@dataclass
class _StatusPass:
    plan: Plan
    store: Store
    index: RecordIndex
    code: Mapping[str, CodeIdentity]
    environment_keys: EnvironmentKeys
    files: FileDigests | None
    verify: bool
    statuses: dict[str, TaskStatus] = field(default_factory=dict)
    # Per task, the first changed file of a run that matched all but its files.
    changed_files: dict[str, str] = field(default_factory=dict)

    def run(self) -> dict[str, TaskStatus]:
        for name in self.plan.order:
            self.statuses[name] = self.status(name)
        return self.statuses

    def _input_digests(self, name: str) -> dict[str, str]:
        graph = self.plan.graph
        producers = graph.input_producers  # every input of the graph's tasks
        digests = {}
        for ref in graph.specs[name].inputs:
            producer = producers[ref] if ref in producers else graph.producer_of(ref)
            status = None if producer is None else self.statuses.get(producer)
            if status is not None:
                digests[ref] = status.outputs[str(graph.local_name(ref))]
            else:
                digests[ref] = self.plan.store_inputs[ref].digest
        return digests

    def _files_unchanged(self, name: str) -> Callable[[Mapping[str, Any]], bool]:
        declared = self.plan.graph.specs[name].files

        def unchanged(record: Mapping[str, Any]) -> bool:
            recorded = record.get("files") or {}
            if self.files is None or not (recorded or declared):
                return True  # nothing to check: most tasks read no project file
            changed = self.files.changed(recorded, declared)
            if changed is not None:
                self.changed_files.setdefault(name, changed)
            return changed is None

        return unchanged

    def _reusable(self, name: str, key: str) -> TaskStatus | None:
        accept = self._files_unchanged(name)
        if self.verify:
            found = self.index.reusable(self.store, key, accept)
            if found is None:
                return None
            record, versions = found
            outputs = {v.name: v.digest for v in versions}
            blobs = tuple(f.sha256 for v in versions for f in v.files)
            return TaskStatus(name, True, "up to date", str(record["run_id"]), outputs, blobs)
        summary = self.index.candidate(key, accept)
        if summary is None or summary.get("output_blobs") is None:
            return None
        outputs = {str(o["name"]): str(o["digest"]) for o in summary.get("outputs", ())}
        blobs = tuple(summary["output_blobs"])
        return TaskStatus(name, True, "up to date", str(summary["run_id"]), outputs, blobs)

    def status(self, name: str) -> TaskStatus:
        ups = self.plan.graph.upstream[name]
        stale = [up for up in ups if up in self.statuses and not self.statuses[up].up_to_date]
        if stale:
            return TaskStatus(name, False, f"upstream {', '.join(stale)} will run")
        digests = self._input_digests(name)
        config = self.plan.configs[name]
        code = self.code[name]
        environments = self.environment_keys(name)
        for environment in environments:
            key = fingerprint(name, code.digest, config, digests, environment)
            found = self._reusable(name, key)
            if found is not None:
                return found
        labels = {ref: v.label for ref, v in self.plan.store_inputs.items()}
        now = Current(code, config, digests, labels, environments)
        runs = self.index.by_task.get(name, [])
        return TaskStatus(name, False, why_stale(runs, now, self.changed_files.get(name)))
