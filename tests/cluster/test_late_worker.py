"""A worker that joins after the run connected (and so was never checked) is checked
where it runs a task: one of another environment fails the task with the cause.

The late worker is a real ``dask worker`` process of this venv, told another
environment image id; the task needs a resource only it has, so it lands there.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from distributed import Client, LocalCluster

from aeromancy.cluster.backend import DaskBackend
from aeromancy.cluster.fit import ENVIRONMENT_IMAGE_ENV
from aeromancy.cluster.work import run_on_worker
from aeromancy.execution.executor import Executor, code_identities
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome
from aeromancy.execution.task_run import TaskRequest
from aeromancy.identity import RunIdentity
from aeromancy.store import open_store
from aeromancy.tracking.none import NoneTracker

if TYPE_CHECKING:
    from conftest import DaskWorker, DemoProject

PIPELINE = """\
from aeromancy import Context, task


@task(outputs=["raw"], resources={"LATE": 1})
def ingest(ctx: Context) -> None:
    out = ctx.workdir / "raw.txt"
    out.write_text("rows")
    ctx.save("raw", out)
"""
RUN_IMAGE = "sha256:" + "a" * 64
OTHER_IMAGE = "sha256:" + "b" * 64


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
            protocol="tcp://",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster, set_as_default=False) as connected,
    ):
        yield connected


@pytest.fixture
def backend(
    client: Client, demo_project: DemoProject
) -> Iterator[tuple[DaskBackend, TaskRequest, str]]:
    root, store_url, store, plan = demo_project(PIPELINE)
    identity = RunIdentity(environment_image_id=RUN_IMAGE)
    invocation = Invocation("demo", root, "pipeline.py", "dev", identity, "env", "g1")
    executor = Executor(plan, store, invocation, NoneTracker())
    code = code_identities(plan, root, "pipeline.py")["ingest"]
    made = DaskBackend(client, executor.services(), store_url, "none", 1)
    request = TaskRequest(plan.graph.specs["ingest"], {}, {}, "sha256:fp", code)
    yield made, request, store_url
    made.close()


def late_worker(
    dask_worker: DaskWorker, address: str, image: str
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """The late worker: told ``image`` as its environment, the only one with ``LATE``."""
    env = {**os.environ, ENVIRONMENT_IMAGE_ENV: image}
    args = ("--nthreads", "1", "--name", "late", "--resources", "LATE=1", "--host", "127.0.0.1")
    return dask_worker(address, *args, env=env)


def wait_for_workers(client: Client, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(client.scheduler_info()["workers"]) < count:
        assert time.monotonic() < deadline, "the late worker never joined"
        time.sleep(0.2)


def test_a_late_worker_of_another_environment_fails_the_task_with_the_cause(
    client: Client, backend: tuple[DaskBackend, TaskRequest, str], dask_worker: DaskWorker
) -> None:
    made, request, store_url = backend
    with late_worker(dask_worker, client.scheduler.address, OTHER_IMAGE):
        wait_for_workers(client, 2)
        result = made.submit(request).result(timeout=120)
    assert result.outcome is Outcome.FAILED
    assert result.error == (
        "task ingest refused: worker late runs environment image bbbbbbbbbbbb, this run's is "
        "aaaaaaaaaaaa (start every worker from this run's image (`aeromancy cluster up`))"
    )
    assert result.infrastructure is not None  # exit 3: the cluster, not the task
    store = open_store(store_url)
    assert store.list_versions("demo", "raw", namespace="dev") == []
    assert store.list_run_records("demo", namespace="dev") == []


def test_a_late_worker_of_the_same_environment_runs_the_task(
    client: Client, backend: tuple[DaskBackend, TaskRequest, str], dask_worker: DaskWorker
) -> None:
    made, request, store_url = backend
    with late_worker(dask_worker, client.scheduler.address, RUN_IMAGE):
        wait_for_workers(client, 2)
        result = made.submit(request).result(timeout=120)
    assert result.outcome is Outcome.RAN, result.error
    [record] = open_store(store_url).list_run_records("demo", namespace="dev")
    assert record["worker_resources"] == {"LATE": 1.0}


def test_a_worker_of_other_package_versions_fails_the_task(
    backend: tuple[DaskBackend, TaskRequest, str],
) -> None:
    made, request, _store_url = backend
    item = replace(made.work_item(request), versions="sha256:other")
    answer = run_on_worker(item)
    assert answer.result.outcome is Outcome.FAILED
    assert answer.result.error is not None
    assert answer.result.error.startswith(
        "task ingest refused: worker local has other package versions than this run's"
    )
