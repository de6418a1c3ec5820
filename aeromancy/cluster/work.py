"""What travels through Dask for one task run, and the function a worker runs with it.

Only references travel: the task's name and declared inputs and outputs, its config,
each input as (project, name, version, digest), the store URL, the run's identity and
code identity. The worker reads every byte from the store, runs the task as the same
:class:`~aeromancy.execution.task_run.TaskRun` a local run uses (its function in a
child process of the project's interpreter), publishes the outputs and writes the
record, and answers with a :class:`WorkAnswer`.

The run id is minted on the host, so a task run that Dask runs again (its worker died)
keeps its id: an attempt that finds the record already written answers from it, and
one that finds an output already published by this run id reuses that version
(:mod:`aeromancy.execution.retried`). Each output is published once and each run
recorded once.

Before it runs anything, the worker compares its environment with the run's (a worker
that joined after the run checked its workers); while the task runs, it watches for its
future's cancellation and then kills the task's process (:mod:`aeromancy.cluster.cancel`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.cluster.cancel import StoppableChildren, watch_cancel
from aeromancy.errors import AeromancyError, InfrastructureError, NotFound
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome, TaskResult
from aeromancy.execution.output import Stream
from aeromancy.fingerprint import CodeIdentity
from aeromancy.store.manifest import ArtifactVersion, Namespace
from aeromancy.tasks import TaskSpec

if TYPE_CHECKING:
    from aeromancy.cluster.wandb_runs import ShippedRun
    from aeromancy.execution.process import ChildProcesses
    from aeromancy.store import Store

#: At most this much of a task's output travels back to be shown on the host; the whole
#: log (up to its own cap) is stored with the run record as for a local run.
SHOWN_OUTPUT_CHARS = 1 << 20
#: The topic a worker posts "this task started here" on, for the host's progress lines.
STARTED_TOPIC = "aeromancy-started"


@dataclass(frozen=True)
class InputRef:
    """One input version by name and number; the worker reads its manifest from the store."""

    project: str
    name: str
    namespace: Namespace
    version: int
    digest: str

    @classmethod
    def of(cls, version: ArtifactVersion) -> InputRef:
        """Return the reference to ``version``."""
        return cls(
            version.project, version.name, version.namespace, version.version, version.digest
        )


@dataclass(frozen=True)
class TaskRef:
    """The declared shape of a task: enough for a worker, which never imports its module."""

    name: str
    inputs: tuple[str, ...]
    outputs: Mapping[str, str]
    files: tuple[str, ...]

    def spec(self) -> TaskSpec:
        """Return a TaskSpec for the task run (its function lives in the child only)."""
        return TaskSpec(self.name, _in_child_only, self.inputs, dict(self.outputs), {}, self.files)


@dataclass(frozen=True)
class WorkItem:
    """One task run to do on a worker: references only."""

    run_id: str
    task: TaskRef
    config: Mapping[str, Any]
    inputs: Mapping[str, InputRef]
    fingerprint: str
    code: CodeIdentity
    invocation: Invocation
    store_url: str
    tracker: str
    config_sources: Mapping[str, Any] = field(default_factory=dict)
    variant: Mapping[str, Any] | None = None
    resources: Mapping[str, float] = field(default_factory=dict)  # Dask's, as submitted
    # The run's environment, for a worker that joined after the run checked its workers.
    environment_image: str = ""
    versions: str = ""


@dataclass
class WorkAnswer:
    """What a worker says back: the result, the record it wrote, the output to show."""

    result: TaskResult
    record: dict[str, Any] | None
    output: list[tuple[Stream, str]]
    worker: str
    infrastructure: str | None = None  # InfrastructureError travels as its text
    wandb_runs: list[ShippedRun] = field(default_factory=list)  # offline W&B runs, as blobs


def _in_child_only(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("a task function runs in its child process, never on the worker")


def run_on_worker(item: WorkItem) -> WorkAnswer:
    """Run ``item`` here (on a Dask worker) and return the answer; never raises for the
    task's own errors, nor for the store's (they come back as the result's failure)."""
    from aeromancy.store import open_store

    worker = _worker_name()
    _announce(item.task.name, _variant_label(item.variant))
    try:
        _check_environment(item, worker)
        store = open_store(item.store_url)
        recorded = _recorded(store, item)
        if recorded is not None:
            return WorkAnswer(recorded[0], recorded[1], [], worker)
        return _run(store, item, worker)
    except AeromancyError as exc:
        result = TaskResult(item.task.name, Outcome.FAILED, item.run_id, error=str(exc))
        infra = str(exc) if isinstance(exc, InfrastructureError) else None
        return WorkAnswer(result, None, [], worker, infra)


def _run(store: Store, item: WorkItem, worker: str) -> WorkAnswer:
    """Run ``item`` with W&B files in a directory of its own; ship its offline runs."""
    from aeromancy.cluster.wandb_runs import worker_wandb_dir

    with worker_wandb_dir() as wandb_dir:
        answer = _run_tracked(store, item, worker, _tracker(item.tracker, wandb_dir))
        if item.tracker == "wandb":
            _ship_wandb(store, wandb_dir, answer)
    return answer


def _ship_wandb(store: Store, wandb_dir: Path, answer: WorkAnswer) -> None:
    from aeromancy.cluster.wandb_runs import ship_offline_runs

    try:
        answer.wandb_runs = ship_offline_runs(store, wandb_dir)
    except (AeromancyError, OSError) as exc:
        answer.output.append(
            ("stderr", f"warning: the offline W&B run could not be stored and is lost ({exc})\n")
        )


def _run_tracked(store: Store, item: WorkItem, worker: str, tracker: Any) -> WorkAnswer:
    from aeromancy.execution.interpreter import project_python
    from aeromancy.execution.task_run import RunServices, TaskRequest, TaskRun

    invocation = replace(item.invocation, root=_code_root(store, item.invocation))
    _check_code(item.code, invocation.root, worker)
    inputs = {ref: _version(store, found) for ref, found in item.inputs.items()}
    shown = _ShownOutput()
    records: list[dict[str, Any]] = []
    services = RunServices(
        invocation=invocation,
        store=store,
        tracker=tracker,
        environment=_environment(invocation),
        remember=lambda record, _outputs, _stored: records.append(dict(record)),
        output=shown,
        prefix=False,
    )
    request = TaskRequest(
        item.task.spec(),
        item.config,
        inputs,
        item.fingerprint,
        item.code,
        item.config_sources,
        item.variant,
        run_id=item.run_id,
        worker_resources=item.resources,
    )
    children = StoppableChildren(_children(project_python(invocation.root)))
    with watch_cancel(children):
        result = TaskRun(services, request, children).execute()  # type: ignore[arg-type]
    infra = None if result.infrastructure is None else str(result.infrastructure)
    result.infrastructure = None  # sent as text: the host rebuilds the error
    return WorkAnswer(result, records[0] if records else None, shown.chunks, worker, infra)


_CHILDREN: dict[str, ChildProcesses] = {}
_CHILDREN_LOCK = threading.Lock()


def _children(python: str) -> ChildProcesses:
    """Return this worker process's task processes of ``python`` (made once, kept)."""
    from aeromancy.execution.process import ChildProcesses

    with _CHILDREN_LOCK:
        if python not in _CHILDREN:
            _CHILDREN[python] = ChildProcesses(python)
        return _CHILDREN[python]


def _recorded(store: Store, item: WorkItem) -> tuple[TaskResult, dict[str, Any]] | None:
    """Return the result and record of an earlier attempt that wrote its record, or None."""
    from aeromancy.records import SUCCEEDED, version_of_entry

    inv = item.invocation
    try:
        record = store.get_run_record(inv.project, item.run_id, namespace=inv.namespace)
    except NotFound:
        return None
    outputs = [version_of_entry(store, entry) for entry in record.get("outputs") or ()]
    ok = record.get("status") == SUCCEEDED
    outcome = Outcome.RAN if ok else Outcome.FAILED
    error = None if ok else str(record.get("error") or "the task failed")
    return TaskResult(item.task.name, outcome, item.run_id, outputs, error), record


def _version(store: Store, ref: InputRef) -> ArtifactVersion:
    """Return the input version ``ref`` names, checked against its digest."""
    from aeromancy.store import versions

    found = versions.read_version(store.backend, ref.namespace, ref.project, ref.name, ref.version)
    if found is None or found.digest != ref.digest:
        raise InfrastructureError(
            f"input {ref.project}/{ref.name} version {ref.version} is not in {store.describe()} "
            "as the run saw it",
            "the worker must use the run's store (the same directory or S3 bucket)",
        )
    return found


def _code_root(store: Store, invocation: Invocation) -> Path:
    """Return the project root to run in: the run's code package, fetched from the store
    into this worker's cache (once per package), else the worker's own root."""
    identity = invocation.identity
    if not identity.code_package:
        return invocation.root
    from aeromancy.environments.code_package import fetch

    return fetch(store, invocation.project, identity.git_commit, identity.code_package)


def _check_environment(item: WorkItem, worker: str) -> None:
    """Raise InfrastructureError when this worker runs another environment than the run."""
    from aeromancy.cluster.fit import late_refusal

    found = late_refusal(item.environment_image, item.versions, worker)
    if found is not None:
        raise InfrastructureError(
            f"task {item.task.name} refused: {found}",
            "start every worker from this run's image (`aeromancy cluster up`)",
        )


def _check_code(code: CodeIdentity, root: Path, worker: str) -> None:
    """Raise InfrastructureError when this worker's copy of the task's code differs."""
    for relative, digest in code.file_digests:
        path = root / relative
        found = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        if found != digest:
            raise InfrastructureError(
                f"worker {worker} has other code than this run ({relative} differs)",
                "check that the worker reads the run's store and code package",
            )


def _tracker(name: str, wandb_dir: Path) -> Any:
    """Return the guarded tracker ``name``; W&B writes its files into ``wandb_dir``."""
    import os

    from aeromancy.tracker_guard import TrackerGuard
    from aeromancy.tracking import make_tracker

    if name == "wandb":
        from aeromancy.tracking.wandb import WandbTracker

        return TrackerGuard(WandbTracker({**os.environ, "WANDB_DIR": str(wandb_dir)}))
    return TrackerGuard(make_tracker(name))


def _environment(invocation: Invocation) -> Any:
    from aeromancy.tracking.environment import capture_environment

    lock = threading.Lock()
    taken: list[dict[str, Any]] = []

    def environment() -> dict[str, Any]:
        with lock:
            if not taken:
                taken.append(capture_environment(invocation.identity))
            return taken[0]

    return environment


def _variant_label(variant: Mapping[str, Any] | None) -> str:
    return str((variant or {}).get("label") or "")


def _announce(task: str, variant: str) -> None:
    """Post "``task`` started on this worker" to the scheduler's event log for the host."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    worker.log_event(STARTED_TOPIC, {"task": task, "variant": variant, "on": _worker_name()})


def _worker_name() -> str:
    """Return this worker's name (its address when it has none), or 'local' outside Dask."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return "local"
    return str(worker.name or worker.address)


class _ShownOutput:
    """An output sink that keeps what the task printed, to show on the host (capped)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[Stream, str]] = []
        self.size = 0
        self._lock = threading.Lock()

    def __call__(self, stream: Stream, text: str) -> None:
        with self._lock:
            room = SHOWN_OUTPUT_CHARS - self.size
            if room > 0:
                self.chunks.append((stream, text[:room]))
                self.size += min(len(text), room)
