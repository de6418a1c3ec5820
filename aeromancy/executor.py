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
import shutil
import stat
import tempfile
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy import __version__
from aeromancy.context import Context, SavedOutput
from aeromancy.errors import AeromancyError, InfrastructureError, UsageError
from aeromancy.fingerprint import CodeIdentity, CodeScanner, fingerprint
from aeromancy.identity import RunIdentity
from aeromancy.planning import Plan
from aeromancy.records import (
    FAILED,
    RECORD_FORMAT,
    SUCCEEDED,
    RecordIndex,
    input_entry,
    new_run_id,
    now_iso,
    output_entry,
)
from aeromancy.store.manifest import ArtifactVersion, Namespace
from aeromancy.tasks import TaskSpec, import_path
from aeromancy.tracker_guard import TrackerGuard
from aeromancy.tracking.base import TaskRunInfo, Tracker

if TYPE_CHECKING:
    from aeromancy.store import Store

INVOCATION_ENV = "AEROMANCY_INVOCATION"
MAX_ERROR_CHARS = 20_000


def invocation_id() -> str:
    """Return the id grouping this ``aeromancy run``: the launcher's, else a new one."""
    return os.environ.get(INVOCATION_ENV) or new_run_id()


class Outcome(str, Enum):
    """What happened to one task of the plan."""

    RAN = "ran"
    SKIPPED = "skipped"
    FAILED = "failed"
    NOT_RUN = "not run"


@dataclass
class TaskResult:
    """The outcome of one task; ``outputs`` are the versions it made or reused."""

    task: str
    outcome: Outcome
    run_id: str | None = None
    outputs: list[ArtifactVersion] = field(default_factory=list)
    error: str | None = None
    blocked_by: tuple[str, ...] = ()
    infrastructure: AeromancyError | None = None


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
        self.code: dict[str, CodeIdentity] = {}

    def run(self) -> dict[str, TaskResult]:
        """Run the plan; return each task's result in plan order."""
        self._index = RecordIndex.load(self.store, self.inv.project, self.inv.namespace)
        self.code = code_identities(self.plan, self.inv.root, self.inv.tasks)
        sorter = self.plan.graph.sorter(set(self.plan.order))
        sorter.prepare()
        pending: dict[Future[TaskResult], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.inv.jobs)) as pool:
            while sorter.is_active():
                for name in sorter.get_ready():
                    blocked = self._failed_upstream(name)
                    if blocked:
                        self._settle(TaskResult(name, Outcome.NOT_RUN, blocked_by=blocked))
                        sorter.done(name)
                    else:
                        pending[pool.submit(self._run_task, name)] = name
                if not pending:
                    continue
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = pending.pop(future)
                    self._settle(future.result())
                    sorter.done(name)
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

                self._environment = capture_environment()
            return self._environment

    def remember(self, record: Mapping[str, Any]) -> None:
        """Add a freshly written record to the up-to-date index."""
        with self._lock:
            self._index.add(record)


def code_identities(plan: Plan, root: Path, tasks: str) -> dict[str, CodeIdentity]:
    """Return the code identity of each planned task (computed once per module)."""
    search = [Path(root / tasks).parent, *import_path(root)] if tasks.endswith(".py") else None
    scanner = CodeScanner(root, search or import_path(root))
    return {
        name: scanner.identity_of_module(plan.graph.specs[name].module_name) for name in plan.order
    }


class TaskRun:
    """One execution of one task: context, call, publish, record, tracker."""

    def __init__(
        self,
        executor: Executor,
        spec: TaskSpec,
        config: Mapping[str, Any],
        inputs: Mapping[str, ArtifactVersion],
        key: str,
    ) -> None:
        self.ex = executor
        self.spec = spec
        self.config = dict(config)
        self.inputs = dict(inputs)
        self.key = key
        self.run_id = new_run_id()
        self.metrics: dict[str, Any] = {}
        self.started = ""

    def execute(self) -> TaskResult:
        """Run the task function and settle its outputs and record; never raises for its errors."""
        inv = self.ex.inv
        self.started = now_iso()
        info = TaskRunInfo(
            self.run_id,
            inv.project,
            self.spec.name,
            inv.group,
            self.config,
            inv.tags,
            inv.identity,
            list(self.inputs.values()),
        )
        tracked = self.ex.tracker.start(info)
        scratch = Path(tempfile.mkdtemp(prefix=f"aeromancy-{self.spec.name}-"))
        try:
            error, saved = self._call(scratch, tracked.log)
            outputs: list[ArtifactVersion] = []
            infrastructure: AeromancyError | None = None
            if error is None:
                try:
                    outputs = self._publish(saved)
                except AeromancyError as exc:
                    infrastructure, error = exc, f"publishing outputs failed: {exc}"
        finally:
            _remove_tree(scratch)
        if outputs:
            uris = {f.sha256: self.ex.store.blob_uri(f.sha256) for v in outputs for f in v.files}
            tracked.log_outputs(outputs, uris)
        record = self._record(outputs, error, tracked.path)
        try:
            self.ex.store.put_run_record(inv.project, self.run_id, record, namespace=inv.namespace)
        except AeromancyError as exc:
            infrastructure = infrastructure or exc
        tracked.finish(record, error is None)
        self.ex.remember(record)
        outcome = Outcome.RAN if error is None else Outcome.FAILED
        return TaskResult(
            self.spec.name, outcome, self.run_id, outputs, error, infrastructure=infrastructure
        )

    def _call(
        self, scratch: Path, tracker_log: Callable[[Mapping[str, Any], int | None], None]
    ) -> tuple[str | None, dict[str, SavedOutput]]:
        """Return (traceback or None, saved outputs) of calling the task function."""
        workdir = scratch / "work"
        workdir.mkdir()
        store = self.ex.store

        def load(ref: str) -> Path:
            dest = scratch / "inputs" / ref.replace("/", "__")
            dest.mkdir(parents=True)
            return store.materialize(self.inputs[ref], dest)

        def log(metrics: Mapping[str, Any], step: int | None) -> None:
            self.metrics.update(metrics)
            tracker_log(metrics, step)

        ctx = Context(
            task=self.spec.name,
            run_id=self.run_id,
            config=self.config,
            workdir=workdir,
            inputs=self.inputs,
            outputs=self.spec.outputs,
            loader=load,
            logger=log,
        )
        try:
            self.spec.fn(ctx, **self.config)
        except Exception:
            return traceback.format_exc()[-MAX_ERROR_CHARS:], {}
        saved = ctx.saved_outputs()
        missing = [name for name in self.spec.outputs if name not in saved]
        if missing:
            error = UsageError(
                f"task {self.spec.name} returned without saving {', '.join(missing)}",
                "call ctx.save for every declared output",
            )
            return str(error), {}
        return None, saved

    def _publish(self, saved: Mapping[str, SavedOutput]) -> list[ArtifactVersion]:
        inv = self.ex.inv
        return [
            self.ex.store.publish(
                inv.project,
                out.name,
                out.path,
                type=out.type,
                metadata=dict(out.metadata),
                run_id=self.run_id,
                namespace=inv.namespace,
            )
            for out in (saved[name] for name in self.spec.outputs)
        ]

    def _record(
        self, outputs: list[ArtifactVersion], error: str | None, tracker_path: str | None
    ) -> dict[str, Any]:
        inv = self.ex.inv
        code = self.ex.code[self.spec.name]
        return {
            "format": RECORD_FORMAT,
            "run_id": self.run_id,
            "project": inv.project,
            "task": self.spec.name,
            "tasks_module": inv.tasks,
            "group": inv.group,
            "namespace": inv.namespace,
            "status": SUCCEEDED if error is None else FAILED,
            "error": error,
            "config": self.config,
            "inputs": [input_entry(ref, v) for ref, v in self.inputs.items()],
            "outputs": [output_entry(v) for v in outputs],
            "fingerprint": self.key,
            "code": {"digest": code.digest, "files": list(code.files)},
            "environment_key": inv.environment_key,
            "started": self.started,
            "ended": now_iso(),
            **asdict(inv.identity),
            "environment": self.ex.environment(),
            "tags": list(inv.tags),
            "wandb_run": tracker_path,
            "metrics": dict(self.metrics),
            "aeromancy_version": __version__,
        }


def _remove_tree(path: Path) -> None:
    """Delete a scratch tree, first making its read-only directories (inputs) writable.

    Only directories are touched: files may be hard links into the read cache, whose
    read-only mode must stay.
    """
    for directory, subdirectories, _ in os.walk(path):
        for sub in subdirectories:
            target = os.path.join(directory, sub)
            if not os.path.islink(target):
                os.chmod(target, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)


def raise_for_results(results: Mapping[str, TaskResult]) -> None:
    """Raise InfrastructureError (exit 3) if the store failed us, else return."""
    for result in results.values():
        if result.infrastructure is not None:
            raise InfrastructureError(str(result.infrastructure)) from result.infrastructure
