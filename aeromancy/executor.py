"""The executor: runs a checked plan, skipping up-to-date tasks, ``-j N`` at a time.

For each task, in dependency order: resolve its inputs to exact versions, compute its
fingerprint, reuse an earlier successful run with the same fingerprint whose outputs are
still stored, or else run it. A run publishes its outputs only after the task function
returned and saved every declared output; then its run record is written. A task whose
upstream failed is not run. A tracker failure is reported and never costs an output or
a record.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.cache_files import cache_path
from aeromancy.errors import InfrastructureError
from aeromancy.fingerprint import CodeIdentity, CodeScanner, fingerprint
from aeromancy.identity import RunIdentity
from aeromancy.outcomes import Outcome, TaskResult
from aeromancy.planning import Plan
from aeromancy.records import (
    RecordIndex,
    new_run_id,
    remember_summaries,
    summary_of_written,
)
from aeromancy.store.manifest import ArtifactVersion, Namespace
from aeromancy.task_run import TaskRun
from aeromancy.tasks import TaskSpec, import_path
from aeromancy.tracker_guard import TrackerGuard
from aeromancy.tracking.base import Tracker

if TYPE_CHECKING:
    from aeromancy.store import Store

INVOCATION_ENV = "AEROMANCY_INVOCATION"


def invocation_id() -> str:
    """Return the id grouping this ``aeromancy run``: the launcher's, else a new one."""
    return os.environ.get(INVOCATION_ENV) or new_run_id()


@dataclass(frozen=True)
class Invocation:
    """What is the same for every task of one ``aeromancy run``."""

    project: str
    root: Path
    tasks: str
    namespace: Namespace
    identity: RunIdentity
    environment_key: str
    group: str
    tags: tuple[str, ...] = ()
    force: bool = False
    jobs: int = 1


Listener = Callable[[str, TaskResult | None], None]


def _quiet(task: str, result: TaskResult | None) -> None:
    pass


class Executor:
    """Runs one plan. ``listener(task, None)`` is called when a task starts running and
    ``listener(task, result)`` when it is settled (ran, skipped, failed or not run)."""

    def __init__(
        self,
        plan: Plan,
        store: Store,
        invocation: Invocation,
        tracker: Tracker,
        *,
        listener: Listener = _quiet,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.inv = invocation
        self.tracker = TrackerGuard(tracker, warn)
        self.listener = listener
        self.results: dict[str, TaskResult] = {}
        self._lock = threading.Lock()
        self._environment: dict[str, Any] | None = None
        self._index = RecordIndex()
        self._written: dict[str, dict[str, Any]] = {}
        self.code: dict[str, CodeIdentity] = {}

    def run(self) -> dict[str, TaskResult]:
        """Run the plan; return each task's result in plan order."""
        self._index = RecordIndex.load(self.store, self.inv.project, self.inv.namespace)
        self.code = code_identities(self.plan, self.inv.root, self.inv.tasks)
        sorter = self.plan.graph.sorter(set(self.plan.order))
        sorter.prepare()
        pending: dict[Future[TaskResult], str] = {}
        ready: deque[str] = deque()
        jobs = max(1, self.inv.jobs)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            while sorter.is_active():
                for name in sorter.get_ready():
                    blocked = self._failed_upstream(name)
                    if blocked:
                        self._settle(TaskResult(name, Outcome.NOT_RUN, blocked_by=blocked))
                        sorter.done(name)
                    else:
                        ready.append(name)
                # Submit no more than ``jobs``: waiting on a few futures stays cheap.
                while ready and len(pending) < jobs:
                    name = ready.popleft()
                    pending[pool.submit(self._run_task, name)] = name
                if not pending:
                    continue
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = pending.pop(future)
                    self._settle(future.result())
                    sorter.done(name)
        remember_summaries(self.store, self.inv.project, self.inv.namespace, self._written)
        return {name: self.results[name] for name in self.plan.order}

    def _settle(self, result: TaskResult) -> None:
        self.results[result.task] = result
        self.listener(result.task, result)

    def _failed_upstream(self, name: str) -> tuple[str, ...]:
        ups = self.plan.graph.upstream[name]
        bad = (Outcome.FAILED, Outcome.NOT_RUN)
        return tuple(up for up in ups if up in self.results and self.results[up].outcome in bad)

    def input_versions(self, spec: TaskSpec) -> dict[str, ArtifactVersion]:
        """Return the exact version of each input: from this run's producer, else the store."""
        versions = {}
        for ref in spec.inputs:
            producer = self.plan.graph.producer_of(ref)
            if producer in self.results:
                name = self.plan.graph.local_name(ref)
                versions[ref] = next(v for v in self.results[producer].outputs if v.name == name)
            else:
                versions[ref] = self.plan.store_inputs[ref]
        return versions

    def _run_task(self, name: str) -> TaskResult:
        spec = self.plan.graph.specs[name]
        config = self.plan.configs[name]
        inputs = self.input_versions(spec)
        digests = {ref: version.digest for ref, version in inputs.items()}
        key = fingerprint(name, self.code[name].digest, config, digests, self.inv.environment_key)
        if not self.inv.force:
            found = self._index.reusable(self.store, key)
            if found is not None:
                record, outputs = found
                return TaskResult(name, Outcome.SKIPPED, str(record["run_id"]), outputs)
        self.listener(name, None)
        return TaskRun(self, spec, config, inputs, key).execute()

    def environment(self) -> dict[str, Any]:
        """Return the environment capture, taken once per invocation on first need."""
        with self._lock:
            if self._environment is None:
                from aeromancy.tracking.environment import capture_environment

                self._environment = capture_environment(self.inv.identity)
            return self._environment

    def remember(self, record: Mapping[str, Any], outputs: Sequence[ArtifactVersion]) -> None:
        """Add a freshly written record to the up-to-date index and the summary cache."""
        with self._lock:
            self._index.add(record)
            self._written[str(record["run_id"])] = summary_of_written(record, outputs)


def code_identities(plan: Plan, root: Path, tasks: str) -> dict[str, CodeIdentity]:
    """Return the code identity of each planned task (computed once per module)."""
    search = [Path(root / tasks).parent, *import_path(root)] if tasks.endswith(".py") else None
    scanner = CodeScanner(root, search or import_path(root), cache_path())
    return {
        name: scanner.identity_of_module(plan.graph.specs[name].module_name) for name in plan.order
    }


def raise_for_results(results: Mapping[str, TaskResult]) -> None:
    """Raise InfrastructureError (exit 3) if the store failed us, else return."""
    for result in results.values():
        if result.infrastructure is not None:
            raise InfrastructureError(str(result.infrastructure)) from result.infrastructure
