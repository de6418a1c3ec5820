"""The executor: runs a checked plan, skipping up-to-date tasks, ``-j N`` at a time.

For each task, in dependency order: resolve its inputs to exact versions, compute its
fingerprint, reuse an earlier successful run with the same fingerprint whose outputs are
still stored, or else run it. A run publishes its outputs only after the task function
returned and saved every declared output; then its run record is written. A task whose
upstream failed is not run. A tracker failure is reported and never costs an output or
a record.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.cache_files import cache_path
from aeromancy.errors import InfrastructureError
from aeromancy.execution.backend import Backend, LocalBackend
from aeromancy.execution.interpreter import project_python
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome, TaskResult
from aeromancy.execution.output import OutputSink, terminal_sink
from aeromancy.execution.process import ChildProcesses
from aeromancy.execution.task_run import RunServices, TaskRequest
from aeromancy.file_deps import FileDigests
from aeromancy.fingerprint import CodeIdentity, CodeScanner, fingerprint, task_module_search_path
from aeromancy.planning import Plan
from aeromancy.records import RecordIndex, remember_summaries, summary_of_written
from aeromancy.staleness import FORCED, Current, why_stale
from aeromancy.store.manifest import ArtifactVersion
from aeromancy.store.run_packs import RunPacker
from aeromancy.tasks import TaskSpec
from aeromancy.tracker_guard import TrackerGuard
from aeromancy.tracking.base import Tracker

if TYPE_CHECKING:
    from aeromancy.store import Store

Listener = Callable[[str, TaskResult | None], None]
# Makes the backend of one executor run: (services, task processes, jobs) -> Backend.
BackendFactory = Callable[[RunServices, ChildProcesses, int], Backend]


def _quiet(task: str, result: TaskResult | None) -> None:
    pass


class Executor:
    """Runs one plan. ``listener(task, None)`` is called when a task starts running and
    ``listener(task, result)`` when it is settled (ran, skipped, failed or not run).

    Each task that runs is handed to a :class:`Backend` made by ``backend`` (default: one
    child process per task run, of the project's interpreter; a Dask cluster with
    ``--cluster``); ``output`` shows what tasks print. ``children`` are task processes
    shared with other executors (a sweep's variants); by default the run has its own.
    """

    def __init__(
        self,
        plan: Plan,
        store: Store,
        invocation: Invocation,
        tracker: Tracker,
        *,
        listener: Listener = _quiet,
        warn: Callable[[str], None] | None = None,
        output: OutputSink = terminal_sink,
        children: ChildProcesses | None = None,
        backend: BackendFactory = LocalBackend,
        packer: RunPacker | None = None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.inv = invocation
        self.tracker = TrackerGuard(tracker, warn)
        self.listener = listener
        self.output = output
        self.children = children
        self.backend = backend
        self.results: dict[str, TaskResult] = {}
        self._lock = threading.Lock()
        self._environment: dict[str, Any] | None = None
        self._index = RecordIndex()
        self._written: dict[str, dict[str, Any]] = {}
        self.code: dict[str, CodeIdentity] = {}
        # The written records, stored as one run pack when the invocation ends: by the
        # caller when it shares the packer between executors (a sweep), else by run().
        self._own_packer = packer is None
        self.packer = packer or RunPacker(store.backend, invocation.namespace, invocation.project)

    def services(self) -> RunServices:
        """Return what the task runs of this invocation share."""
        return RunServices(
            invocation=self.inv,
            store=self.store,
            tracker=self.tracker,
            environment=self.environment,
            remember=self.remember,
            output=self.output,
            prefix=self.inv.jobs > 1,
        )

    def run(self) -> dict[str, TaskResult]:
        """Run the plan; return each task's result in plan order.

        A KeyboardInterrupt stops every running task (nothing of theirs is published)
        and is raised again.
        """
        python = project_python(self.inv.root)
        self._index = RecordIndex.load(self.store, self.inv.project, self.inv.namespace)
        self.code = code_identities(self.plan, self.inv.root, self.inv.tasks)
        children = self.children or ChildProcesses(python)
        backend = self.backend(self.services(), children, self.inv.jobs)
        try:
            self._schedule(backend)
        finally:
            backend.close()
            if self.children is None:
                children.close()
        if self._own_packer:
            self.packer.close()
        remember_summaries(self.store, self.inv.project, self.inv.namespace, self._written)
        return {name: self.results[name] for name in self.plan.order}

    def _schedule(self, backend: Backend) -> None:
        jobs = max(1, self.inv.jobs)
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="settle") as pool:
            try:
                self._submit_in_order(pool, backend, jobs)
            except KeyboardInterrupt:
                backend.stop()  # before the pool waits for the running tasks
                raise

    def _submit_in_order(self, pool: ThreadPoolExecutor, backend: Backend, jobs: int) -> None:
        sorter = self.plan.graph.sorter(set(self.plan.order))
        sorter.prepare()
        pending: dict[Future[TaskResult], str] = {}
        ready: deque[str] = deque()
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
                pending[pool.submit(self._run_task, name, backend)] = name
            if not pending:
                continue
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                name = pending.pop(future)
                self._settle(future.result())
                sorter.done(name)

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

    def _run_task(self, name: str, backend: Backend) -> TaskResult:
        """Reuse an up-to-date run of ``name``, else run it on ``backend`` and wait."""
        spec = self.plan.graph.specs[name]
        config = self.plan.configs[name]
        inputs = self.input_versions(spec)
        digests = {ref: version.digest for ref, version in inputs.items()}
        key = fingerprint(name, self.code[name].digest, config, digests, self.inv.environment_key)
        reason = FORCED
        if not self.inv.force:
            files = FileDigests(self.inv.root)
            changed: list[str] = []

            def unchanged(record: Mapping[str, Any]) -> bool:
                found = files.changed(record.get("files") or {}, spec.files)
                changed.extend([found] if found else [])
                return found is None

            found = self._index.reusable(self.store, key, unchanged)
            if found is not None:
                record, outputs = found
                return TaskResult(name, Outcome.SKIPPED, str(record["run_id"]), outputs)
            labels = {ref: version.label for ref, version in inputs.items()}
            now = Current(self.code[name], config, digests, labels, [self.inv.environment_key])
            reason = why_stale(self._index.by_task.get(name, []), now, next(iter(changed), None))
        self.listener(name, None)
        # Before the run id is minted: readers list the records after the marker's stamp.
        self.packer.open(workers=self.backend is not LocalBackend)
        sources = self.plan.config_sources.get(name, {})
        request = TaskRequest(
            spec, config, inputs, key, self.code[name], sources, self.plan.variant
        )
        result = backend.submit(request).result()
        if result.run_id is None and self.backend is not LocalBackend:
            self.packer.hold()  # lost on the cluster: its worker may still write a record
        result.reason = reason
        return result

    def environment(self) -> dict[str, Any]:
        """Return the environment capture, taken once per invocation on first need."""
        with self._lock:
            if self._environment is None:
                from aeromancy.tracking.environment import capture_environment

                self._environment = capture_environment(self.inv.identity)
            return self._environment

    def remember(
        self, record: Mapping[str, Any], outputs: Sequence[ArtifactVersion], stored: bytes | None
    ) -> None:
        """Add a freshly written record to the up-to-date index, the summary cache and the
        invocation's run pack (``stored``: its bytes in the store; None when a worker
        stored it or the store refused it: the pack reads it back)."""
        self.packer.add(str(record["run_id"]), stored, record)
        with self._lock:
            self._index.add(record)
            self._written[str(record["run_id"])] = summary_of_written(record, outputs)


def code_identities(plan: Plan, root: Path, tasks: str) -> dict[str, CodeIdentity]:
    """Return the code identity of each planned task (computed once per module)."""
    scanner = CodeScanner(root, task_module_search_path(root, tasks), cache_path())
    specs = plan.graph.specs
    return {
        name: scanner.identity_of_module(specs[name].module_name, specs[name].module_file)
        for name in plan.order
    }


def raise_for_results(results: Mapping[str, TaskResult]) -> None:
    """Raise InfrastructureError (exit 3) if the store failed us, else return."""
    for result in results.values():
        if result.infrastructure is not None:
            raise InfrastructureError(str(result.infrastructure)) from result.infrastructure
