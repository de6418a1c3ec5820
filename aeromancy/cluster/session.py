"""Connecting a run to its cluster: reach the scheduler, check every worker, then run.

The scheduler must answer within :data:`~aeromancy.cluster.address.CONNECT_TIMEOUT_S`
(exit 3 otherwise, in one line). Every worker connected then must run this run's
environment and see its store (:mod:`aeromancy.cluster.fit`); one that does not is
refused (exit 2) before anything is submitted.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.cluster.address import CONNECT_TIMEOUT_S, unreachable
from aeromancy.cluster.fit import refusal, worker_report
from aeromancy.cluster.resources import Resources, describe, merged, missing
from aeromancy.cluster.work import STARTED_TOPIC
from aeromancy.errors import InfrastructureError, UsageError
from aeromancy.launcher.container import local_store_path

if TYPE_CHECKING:
    from distributed import Client

    from aeromancy.cluster.backend import DaskBackend
    from aeromancy.execution.process import ChildProcesses
    from aeromancy.execution.task_run import RunServices
    from aeromancy.planning import Plan

PROBE_PREFIX = ".aeromancy-cluster-probe-"
#: How long to wait for a first worker to join a scheduler that has none yet.
WORKER_WAIT_S = 30.0
Started = Callable[[str, str, str], None]  # (task, variant label, worker)


def check_store_kind(store: str) -> None:
    """Refuse (exit 2) a store that workers elsewhere could not share: S3 or a directory."""
    if store.startswith("s3://") or local_store_path(store) is not None:
        return
    raise UsageError(
        f"store {store} cannot be shared with cluster workers",
        "use an s3:// store or a directory every worker mounts at the same path",
    )


@contextlib.contextmanager
def connect(address: str, environment_image: str, store: str) -> Iterator[Client]:
    """Yield a client of the scheduler at ``address`` whose workers fit this run.

    Raises InfrastructureError (exit 3) when the scheduler does not answer in time or
    has no worker, and UsageError (exit 2) when a worker does not fit.
    """
    check_store_kind(store)
    client = _client(address)
    try:
        _wait_for_workers(client, address)
        _check_workers(client, environment_image, store)
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=5)


def _client(address: str) -> Client:
    """Return a client of ``address``; raise InfrastructureError after the timeout.

    Dask's own timeout covers the TCP connection but not a peer that accepts it and
    never answers, so the client is made on a thread of its own and abandoned (a
    daemon) when it is not ready in time.
    """
    from distributed import Client

    made: list[Client] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            made.append(Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False))
        except Exception as exc:
            failed.append(exc)

    thread = threading.Thread(target=make, name="dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    if made:
        return made[0]
    if failed:
        reason = str(failed[0]).splitlines()[0] if str(failed[0]) else type(failed[0]).__name__
        raise unreachable(address, reason) from failed[0]
    raise unreachable(address, f"no answer within {CONNECT_TIMEOUT_S:.0f} s")


def _wait_for_workers(client: Client, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except (OSError, TimeoutError) as exc:
        raise InfrastructureError(
            f"the Dask scheduler at {address} has no worker (waited {WORKER_WAIT_S:.0f} s)",
            "start workers (`aeromancy cluster up`), or check that they can reach the scheduler",
        ) from exc


def _check_workers(client: Client, environment_image: str, store: str) -> None:
    with _probe(store) as (path, text):
        try:
            reports = client.run(worker_report, path)
        except (OSError, TimeoutError) as exc:  # the scheduler cannot reach a worker
            raise InfrastructureError(
                f"the cluster's workers could not be asked about their environment "
                f"({_first_line(exc)})",
                "a worker must listen on an address the scheduler reaches "
                "(`dask worker --host NODE-HOST`)",
            ) from exc
    found = refusal(reports, environment_image, text)
    if found is not None:
        raise UsageError(
            f"cluster refused: {found}",
            "start workers from this run's image (`aeromancy cluster down`, then `up`)",
        )


@contextlib.contextmanager
def _probe(store: str) -> Iterator[tuple[str | None, str | None]]:
    """Yield (path, text) of a probe file in a directory store, or (None, None) for S3."""
    root = local_store_path(store)
    if root is None:
        yield None, None
        return
    root.mkdir(parents=True, exist_ok=True)
    text = secrets.token_hex(16)
    path = Path(root) / f"{PROBE_PREFIX}{text[:8]}"
    path.write_text(text)
    try:
        yield str(path), text
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def total_threads(client: Client) -> int:
    """Return how many task runs the cluster's workers can run at once."""
    workers = client.scheduler_info().get("workers", {})
    return max(1, sum(int(info.get("nthreads", 1)) for info in workers.values()))


def follow_starts(client: Client, started: Started) -> None:
    """Call ``started(task, variant, worker)`` as each task run starts on a worker."""

    def handler(event: Any) -> None:
        _stamp, message = event
        if isinstance(message, dict):
            started(str(message["task"]), str(message["variant"]), str(message["on"]))

    client.subscribe_topic(STARTED_TOPIC, handler)


def worker_resources(client: Client) -> dict[str, dict[str, float]]:
    """Return the resources each worker of the cluster advertises, by address."""
    workers = client.scheduler_info().get("workers", {})
    return {address: dict(info.get("resources") or {}) for address, info in workers.items()}


def check_resources_offered(client: Client, plan: Plan, given: Resources) -> None:
    """Refuse (exit 2) a run with a task whose resources no worker has (Dask would wait
    for such a worker forever), before anything is submitted.

    Every selected task is checked, also one that will turn out up to date.
    """
    offered = worker_resources(client)
    for name in plan.order:
        needed = merged(plan.graph.specs[name].resources, given)
        lacking = missing(needed, offered)
        if lacking is not None:
            raise UsageError(
                f"cluster refused: task {name} needs worker resources {lacking}; "
                f"its workers offer {_offers(offered)}",
                "start workers with them (`aeromancy cluster up --resources ...`, "
                "`dask worker --resources ...`), or change --cluster-resources",
            )


def _offers(offered: dict[str, dict[str, float]]) -> str:
    kinds = sorted({describe(resources) for resources in offered.values()})
    return "; ".join(kinds) if kinds else "nothing"


def backend_factory(
    client: Client, store: str, tracker: str, resources: Resources | None = None
) -> DaskBackends:
    """Return the executor's backend factory for runs on ``client``'s cluster;
    ``resources`` are the worker resources every task run needs, over the task's own."""
    return DaskBackends(client, store, tracker, dict(resources or {}))


class DaskBackends:
    """Makes a DaskBackend per executor (a sweep has one per variant) and can stop them
    all at once (Ctrl-C during a sweep: :meth:`stop_everywhere`)."""

    def __init__(self, client: Client, store: str, tracker: str, resources: Resources) -> None:
        self.client = client
        self.store = store
        self.tracker = tracker
        self.resources = resources
        self._made: list[DaskBackend] = []
        self._lock = threading.Lock()

    def __call__(self, services: RunServices, _children: ChildProcesses, jobs: int) -> DaskBackend:
        from aeromancy.cluster.backend import DaskBackend

        made = DaskBackend(
            self.client, services, self.store, self.tracker, jobs, resources=self.resources
        )
        with self._lock:
            self._made.append(made)
        return made

    def stop_everywhere(self) -> None:
        """Stop every task run of every backend made (their futures are cancelled)."""
        with self._lock:
            made = list(self._made)
        for backend in made:
            backend.stop()
