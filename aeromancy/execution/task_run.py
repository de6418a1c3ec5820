"""One execution of one task: inputs, the child process, publishing, the record, the tracker.

The order matters: every input is materialised before the child starts; outputs are
published only after the child returned from the task function having saved every
declared output, and the run record is written after the outputs, so a record never
names a version that does not exist. A run stopped by Ctrl-C publishes nothing and
writes no record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy import __version__
from aeromancy.errors import AeromancyError, InfrastructureError
from aeromancy.execution.child.protocol import LOG_EVENT, PROTOCOL, REQUEST_FILENAME
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome, TaskResult
from aeromancy.execution.output import CappedLog, OutputRelay, OutputSink
from aeromancy.execution.process import ChildExit, ChildProcesses
from aeromancy.experiments.metrics import MetricSummary
from aeromancy.file_deps import FileDigests
from aeromancy.fingerprint import CodeIdentity
from aeromancy.leftovers import remove_tree, task_dir
from aeromancy.records import (
    FAILED,
    RECORD_FORMAT,
    SUCCEEDED,
    input_entry,
    new_run_id,
    now_iso,
    output_entry,
)
from aeromancy.store.manifest import ArtifactVersion
from aeromancy.store.paths import SourceFile
from aeromancy.tasks import TaskSpec
from aeromancy.tracker_guard import GuardedRun, TrackerGuard
from aeromancy.tracking.base import TaskRunInfo

if TYPE_CHECKING:
    from aeromancy.store import Store

LOG_FILENAME = "output.log"


@dataclass(frozen=True)
class TaskRequest:
    """One task to run fresh: the exact inputs, config and fingerprint it runs with."""

    spec: TaskSpec
    config: Mapping[str, Any]
    inputs: Mapping[str, ArtifactVersion]
    fingerprint: str
    code: CodeIdentity
    config_sources: Mapping[str, Any] = field(default_factory=dict)
    variant: Mapping[str, Any] | None = None  # the sweep variant (index, point, seed)
    # Minted by the caller when the run may be attempted again (a cluster worker died):
    # an attempt then reuses what an earlier one with this id published.
    run_id: str | None = None
    # What the run was submitted with to a cluster worker ({"GPU": 1}); {} for local runs.
    worker_resources: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunServices:
    """What every task run of one invocation shares (a narrow view of the executor).

    ``environment`` returns the environment capture (taken once); ``remember`` is the
    sink of written records (with the bytes stored, None when storing failed);
    ``output`` shows task output, prefixed when ``prefix``.
    """

    invocation: Invocation
    store: Store
    tracker: TrackerGuard
    environment: Callable[[], dict[str, Any]]
    remember: Callable[[Mapping[str, Any], Sequence[ArtifactVersion], bytes | None], None]
    output: OutputSink
    prefix: bool


class TaskRun:
    """One execution of one task: inputs, child, publish, record, tracker."""

    def __init__(self, services: RunServices, request: TaskRequest, children: ChildProcesses):
        self.services = services
        self.request = request
        self.spec = request.spec
        self.children = children
        self.run_id = request.run_id or new_run_id()
        self.metrics: dict[str, Any] = {}
        self.metric_summary = MetricSummary()
        self.started = ""
        self.infrastructure: AeromancyError | None = None
        self.read_files: list[str] = []  # project files the child saw the task read

    def execute(self) -> TaskResult:
        """Run the task in its child and settle its outputs and record; never raises for
        its errors."""
        inv = self.services.invocation
        self.started = now_iso()
        info = TaskRunInfo(
            self.run_id,
            inv.project,
            self.spec.name,
            inv.group,
            dict(self.request.config),
            inv.tags,
            inv.identity,
            list(self.request.inputs.values()),
            self.request.variant,
        )
        tracked = self.services.tracker.start(info)
        scratch = task_dir(self.spec.name)  # named by its owner: swept if we are killed
        try:
            return self._run_in(scratch, tracked)
        finally:
            remove_tree(scratch)

    def _run_in(self, scratch: Path, tracked: GuardedRun) -> TaskResult:
        log = CappedLog(scratch / LOG_FILENAME)
        error, ended, saved = self._call(scratch, tracked, log)
        log_bytes = log.close()
        if self.children.stopped:
            return TaskResult(self.spec.name, Outcome.FAILED, self.run_id, error="interrupted")
        outputs: list[ArtifactVersion] = []
        if error is None:
            try:
                outputs = self._publish(saved)
            except AeromancyError as exc:
                # A refused output (a file changed while read, a link out of the
                # artifact) is the task's failure; an unreachable store is ours.
                if isinstance(exc, InfrastructureError):
                    self.infrastructure = exc
                error = f"publishing outputs failed: {exc}"
        store = self.services.store
        if outputs:
            uris = {f.sha256: store.blob_uri(f.sha256) for v in outputs for f in v.files}
            tracked.log_outputs(outputs, uris)
        if log_bytes:
            tracked.attach_log(log.path)
        record = self._record(outputs, error, tracked.path, ended)
        record["files"] = self._file_dependencies() if error is None else {}
        record["log"] = self._store_log(log.path) if log_bytes else None
        record["log_bytes"] = log_bytes
        inv = self.services.invocation
        stored: bytes | None = None
        try:
            stored = store.put_run_record(inv.project, self.run_id, record, namespace=inv.namespace)
        except InfrastructureError as exc:
            self.infrastructure = self.infrastructure or exc
        tracked.finish(record, error is None)
        self.services.remember(record, outputs, stored)
        outcome = Outcome.RAN if error is None else Outcome.FAILED
        return TaskResult(
            self.spec.name, outcome, self.run_id, outputs, error, infrastructure=self.infrastructure
        )

    def _call(
        self, scratch: Path, tracked: GuardedRun, log: CappedLog
    ) -> tuple[str | None, ChildExit | None, dict[str, Any]]:
        """Return (error or None, how the child ended, saved outputs by name)."""
        try:
            request_path = self._write_request(scratch)
        except AeromancyError as exc:  # e.g. the store failed while materialising
            if isinstance(exc, InfrastructureError):
                self.infrastructure = exc
            return f"loading inputs failed: {exc}", None, {}

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == LOG_EVENT and isinstance(event.get("metrics"), dict):
                step = event.get("step")
                self.metrics.update(event["metrics"])
                self.metric_summary.update(event["metrics"])
                tracked.log(event["metrics"], step if isinstance(step, int) else None)

        prefix = f"[{self.spec.name}] " if self.services.prefix else None
        relay = OutputRelay(self.services.output, log, prefix)
        ended = self.children.run(request_path, self.services.invocation.root, relay, on_event)
        cause = ended.cause(self.spec.name)
        if cause is not None:
            return cause, ended, {}
        result = ended.result or {}
        if not result.get("ok"):
            return str(result.get("error") or "the task failed"), ended, {}
        self.read_files = [str(path) for path in result.get("files") or ()]
        return None, ended, {entry["name"]: entry for entry in result.get("saved", ())}

    def _file_dependencies(self) -> dict[str, str | None]:
        """Return the digest of each project file the task read or declared."""
        root = self.services.invocation.root
        return FileDigests(root).record(self.read_files, self.spec.files)

    def _write_request(self, scratch: Path) -> Path:
        """Materialise every input and write the child's request; return its path."""
        workdir = scratch / "work"
        workdir.mkdir()
        inputs = {}
        for ref, version in self.request.inputs.items():
            dest = scratch / "inputs" / ref.replace("/", "__")
            dest.mkdir(parents=True)
            inputs[ref] = str(self.services.store.materialize(version, dest))
        inv = self.services.invocation
        request = {
            "protocol": PROTOCOL,
            "root": str(inv.root),
            "tasks": inv.tasks,
            "task": self.spec.name,
            "run_id": self.run_id,
            "config": dict(self.request.config),
            "workdir": str(workdir),
            "inputs": inputs,
            "outputs": dict(self.spec.outputs),
        }
        path = scratch / REQUEST_FILENAME
        path.write_text(json.dumps(request))
        return path

    def _publish(self, saved: Mapping[str, Any]) -> list[ArtifactVersion]:
        inv = self.services.invocation
        return [
            self._published_before(name)
            or self.services.store.publish(
                inv.project,
                name,
                Path(saved[name]["path"]),
                type=kind,
                metadata=dict(saved[name].get("metadata") or {}),
                run_id=self.run_id,
                namespace=inv.namespace,
            )
            for name, kind in self.spec.outputs.items()
        ]

    def _published_before(self, name: str) -> ArtifactVersion | None:
        """Return the version of output ``name`` an earlier attempt of this run made."""
        if self.request.run_id is None:
            return None
        from aeromancy.execution.retried import published_by

        inv = self.services.invocation
        return published_by(self.services.store, inv.project, name, inv.namespace, self.run_id)

    def _store_log(self, path: Path) -> str | None:
        """Store the log as a blob; return its sha256 (None when the store refused it)."""
        source = SourceFile(LOG_FILENAME, path, path.stat().st_size)
        try:
            [entry] = self.services.store.blobs.put_files([source], lambda _: None)
        except InfrastructureError as exc:
            self.infrastructure = self.infrastructure or exc
            return None
        return entry.sha256

    def _record(
        self,
        outputs: list[ArtifactVersion],
        error: str | None,
        tracker_path: str | None,
        ended: ChildExit | None,
    ) -> dict[str, Any]:
        inv = self.services.invocation
        code = self.request.code
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
            "config": dict(self.request.config),
            "config_sources": dict(self.request.config_sources),
            "variant": None if self.request.variant is None else dict(self.request.variant),
            "inputs": [input_entry(ref, v) for ref, v in self.request.inputs.items()],
            "outputs": [output_entry(v) for v in outputs],
            "fingerprint": self.request.fingerprint,
            "code": {
                "digest": code.digest,
                "files": list(code.files),
                "digests": dict(code.file_digests),
            },
            "environment_key": inv.environment_key,
            "started": self.started,
            "ended": now_iso(),
            **asdict(inv.identity),
            "environment": self.services.environment(),
            "tags": list(inv.tags),
            "wandb_run": tracker_path,
            "metrics": dict(self.metrics),
            "metric_summary": self.metric_summary.as_record(),
            "aeromancy_version": __version__,
            "exit_code": None if ended is None else ended.returncode,
            "worker_resources": dict(self.request.worker_resources),
            **_resources(ended),
        }


def _resources(ended: ChildExit | None) -> dict[str, Any]:
    if ended is None:
        return {"wall_s": None, "cpu_user_s": None, "cpu_system_s": None, "max_rss_bytes": None}
    return asdict(ended.resources)
