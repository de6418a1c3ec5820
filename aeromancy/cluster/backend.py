"""The executor's Backend on a Dask cluster: each task run becomes one Dask future.

The executor still decides what runs and when: it submits a task once its upstream
tasks are settled, because a task's fingerprint (and so whether it is up to date)
depends on the exact versions its upstream tasks produced, which only exist then.
So Dask futures carry no dependencies of their own; Dask places each one on a free
worker, and the number in flight is bounded by the cluster's threads, not ``-j``.

The future's key names the run: ``<invocation>-<task>[-v<variant>]``. A worker that
dies mid-task has its future run again by the scheduler (its ``allowed-failures``), with
the same run id (see :mod:`aeromancy.cluster.work`).
"""

from __future__ import annotations

import tarfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aeromancy.cluster.fit import own_versions_digest
from aeromancy.cluster.resources import Resources, merged
from aeromancy.cluster.work import InputRef, TaskRef, WorkAnswer, WorkItem, run_on_worker
from aeromancy.errors import AeromancyError, InfrastructureError
from aeromancy.execution.outcomes import Outcome, TaskResult
from aeromancy.execution.task_run import RunServices, TaskRequest
from aeromancy.records import new_run_id

if TYPE_CHECKING:
    from distributed import Client


class DaskBackend:
    """Runs each task request as a future on ``client``'s cluster."""

    def __init__(
        self,
        client: Client,
        services: RunServices,
        store_url: str,
        tracker: str,
        jobs: int,
        *,
        resources: Resources | None = None,
    ) -> None:
        self.client = client
        self.resources = dict(resources or {})  # --cluster-resources, over each task's own
        self.versions = own_versions_digest()  # what every worker must have, late ones too
        self.services = services
        self.store_url = store_url
        self.tracker = tracker
        self._pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="dask")
        self._futures: set[Any] = set()
        self._lock = threading.Lock()

    def submit(self, request: TaskRequest) -> Future[TaskResult]:
        item = self.work_item(request)
        future = self.client.submit(
            run_on_worker,
            item,
            key=self.key(request),
            pure=False,
            resources=dict(item.resources) or None,
        )
        with self._lock:
            self._futures.add(future)
        return self._pool.submit(self._settle, request, future)

    def key(self, request: TaskRequest) -> str:
        """Return the Dask key of ``request``: its invocation, task and variant."""
        group = self.services.invocation.group
        variant = request.variant or {}
        suffix = f"-v{variant['index']}" if "index" in variant else ""
        return f"aeromancy-{group}-{request.spec.name}{suffix}"

    def work_item(self, request: TaskRequest) -> WorkItem:
        """Return the references a worker needs to run ``request`` (a fresh run id)."""
        spec = request.spec
        return WorkItem(
            run_id=new_run_id(),
            task=TaskRef(spec.name, spec.inputs, dict(spec.outputs), spec.files),
            config=dict(request.config),
            inputs={ref: InputRef.of(version) for ref, version in request.inputs.items()},
            fingerprint=request.fingerprint,
            code=request.code,
            invocation=self.services.invocation,
            store_url=self.store_url,
            tracker=self.tracker,
            config_sources=dict(request.config_sources),
            variant=None if request.variant is None else dict(request.variant),
            resources=merged(spec.resources, self.resources),
            environment_image=self.services.invocation.identity.environment_image_id,
            versions=self.versions,
        )

    def _settle(self, request: TaskRequest, future: Any) -> TaskResult:
        try:
            answer: WorkAnswer = future.result()
        except Exception as exc:  # the cluster failed us: a worker died too often, or worse
            return _lost(request, exc)
        finally:
            with self._lock:
                self._futures.discard(future)
        self._bring_home(answer)
        for stream, text in _prefixed(answer, request):
            self.services.output(stream, text)
        if answer.record is not None:
            # No stored bytes come back from the worker: the run is left out of the
            # invocation's run pack (a later reader reads its record on its own).
            self.services.remember(answer.record, answer.result.outputs, None)
        if answer.infrastructure is not None:
            answer.result.infrastructure = InfrastructureError(answer.infrastructure)
        return answer.result

    def _bring_home(self, answer: WorkAnswer) -> None:
        """Unpack the task run's offline W&B runs into the project's W&B runs directory."""
        from aeromancy.cluster.wandb_runs import unpack_offline_run
        from aeromancy.tracking.wandb_setup import runs_dir

        for shipped in answer.wandb_runs:
            try:
                unpack_offline_run(
                    self.services.store, shipped, runs_dir(self.services.invocation.root)
                )
            except (AeromancyError, OSError, tarfile.TarError) as exc:
                note = f"warning: offline W&B run {shipped.name} not brought home ({exc})\n"
                answer.output.append(("stderr", note))

    def stop(self) -> None:
        with self._lock:
            futures = list(self._futures)
        self.client.cancel(futures, force=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _prefixed(answer: WorkAnswer, request: TaskRequest) -> list[tuple[Any, str]]:
    """Return the task's output as lines prefixed with its name, as parallel runs show it."""
    prefix = f"[{request.spec.name}] "
    chunks = []
    for stream in ("stdout", "stderr"):
        text = "".join(t for s, t in answer.output if s == stream)
        if text:
            lines = text.rstrip("\n").split("\n")
            chunks.append((stream, "".join(f"{prefix}{line}\n" for line in lines)))
    return chunks


def _lost(request: TaskRequest, exc: BaseException) -> TaskResult:
    name = request.spec.name
    message = f"task {name} was lost on the cluster ({type(exc).__name__}: {exc})"
    return TaskResult(
        name, Outcome.FAILED, None, error=message, infrastructure=InfrastructureError(message)
    )
