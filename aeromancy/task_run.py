"""One execution of one task: its Context, the call, publishing, the record, the tracker.

The order matters: outputs are published only after the task function returned and
saved every declared output, and the run record is written after the outputs, so a
record never names a version that does not exist.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy import __version__
from aeromancy.context import Context, SavedOutput
from aeromancy.errors import AeromancyError, InfrastructureError, UsageError
from aeromancy.experiments.metrics import MetricSummary
from aeromancy.leftovers import remove_tree, task_dir
from aeromancy.outcomes import Outcome, TaskResult
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
from aeromancy.tasks import TaskSpec
from aeromancy.tracking.base import TaskRunInfo

if TYPE_CHECKING:
    from aeromancy.executor import Executor

MAX_ERROR_CHARS = 20_000


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
        self.metric_summary = MetricSummary()
        self.started = ""
        self.infrastructure: AeromancyError | None = None

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
        scratch = task_dir(self.spec.name)  # named by its owner: swept if we are killed
        try:
            error, saved = self._call(scratch, tracked.log)
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
        finally:
            remove_tree(scratch)
        if outputs:
            uris = {f.sha256: self.ex.store.blob_uri(f.sha256) for v in outputs for f in v.files}
            tracked.log_outputs(outputs, uris)
        record = self._record(outputs, error, tracked.path)
        try:
            self.ex.store.put_run_record(inv.project, self.run_id, record, namespace=inv.namespace)
        except InfrastructureError as exc:
            self.infrastructure = self.infrastructure or exc
        tracked.finish(record, error is None)
        self.ex.remember(record, outputs)
        outcome = Outcome.RAN if error is None else Outcome.FAILED
        return TaskResult(
            self.spec.name, outcome, self.run_id, outputs, error, infrastructure=self.infrastructure
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
            self.metric_summary.update(metrics)
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
            # A ``seed`` set by --repeat reaches the task as ctx.seed unless it declares one.
            self.spec.fn(ctx, **{k: v for k, v in self.config.items() if k in self.spec.defaults})
        except Exception as exc:
            if isinstance(exc, InfrastructureError):  # e.g. the store failed in ctx.load
                self.infrastructure = exc
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
            "config_sources": dict(self.ex.plan.config_sources.get(self.spec.name, {})),
            "variant": self.ex.plan.variant,
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
            "metric_summary": self.metric_summary.as_record(),
            "aeromancy_version": __version__,
        }
