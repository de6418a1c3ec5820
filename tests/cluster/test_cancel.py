"""Stopping a task that runs on a worker (Ctrl-C on the host), on an in-process cluster.

The backend's ``stop`` cancels the futures; the worker-side runner sees its task
released and kills the task's process, which publishes nothing and writes no record.
tests/cluster/test_containers.py sends a real SIGINT to ``aeromancy run --cluster``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from distributed import Client, LocalCluster

from aeromancy.cluster.backend import DaskBackend
from aeromancy.cluster.session import backend_factory
from aeromancy.execution.executor import Executor, code_identities
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome
from aeromancy.execution.task_run import TaskRequest
from aeromancy.fingerprint import CodeIdentity
from aeromancy.identity import RunIdentity
from aeromancy.store import open_store
from aeromancy.tasks import TaskSpec
from aeromancy.tracking.none import NoneTracker

if TYPE_CHECKING:
    from conftest import DemoProject

PIPELINE = """\
import os
import time
from pathlib import Path

from aeromancy import Context, task


@task(outputs=["slow"])
def slow(ctx: Context, pid_file: str = "", seconds: float = 60.0) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    out = ctx.workdir / "slow.txt"
    out.write_text("done")
    ctx.save("slow", out)
"""


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as connected,
    ):
        yield connected


def alive(pid: int) -> bool:
    """Return True while ``pid`` runs (a zombie waiting for its reaper has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:  # reaped, even between two looks
        return False
    return fields[0] != "Z"


def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@dataclass
class Setup:
    store_url: str
    executor: Executor
    spec: TaskSpec
    code: CodeIdentity

    def request(self, pid_file: Path, variant: int = 0) -> TaskRequest:
        config = {"pid_file": str(pid_file), "seconds": 60.0}
        return TaskRequest(
            self.spec, config, {}, "sha256:fp", self.code, variant={"index": variant}
        )


@pytest.fixture
def setup(demo_project: DemoProject) -> Setup:
    root, store_url, store, plan = demo_project(PIPELINE)
    invocation = Invocation("demo", root, "pipeline.py", "dev", RunIdentity(), "env", "g1")
    executor = Executor(plan, store, invocation, NoneTracker())
    code = code_identities(plan, root, "pipeline.py")["slow"]
    return Setup(store_url, executor, plan.graph.specs["slow"], code)


def test_stop_kills_the_running_task_on_the_worker_and_keeps_nothing(
    client: Client, tmp_path: Path, setup: Setup
) -> None:
    store, store_url = open_store(setup.store_url), setup.store_url
    backend = DaskBackend(client, setup.executor.services(), store_url, "none", 2)
    pid_file = tmp_path / "pid"
    settled = backend.submit(setup.request(pid_file))
    assert wait_for(lambda: pid_file.is_file() and pid_file.read_text(), 60), "never started"
    pid = int(pid_file.read_text())
    assert alive(pid)
    started = time.monotonic()
    backend.stop()
    result = settled.result(timeout=30)
    assert result.outcome is Outcome.FAILED
    assert wait_for(lambda: not alive(pid), 10), "the task's process outlived its cancel"
    assert time.monotonic() - started < 10
    backend.close()
    # The worker's thread is free again, and the stopped run left nothing behind.
    assert wait_for(lambda: not any(client.processing().values()), 10)
    assert store.list_versions("demo", "slow", namespace="dev") == []
    assert store.list_run_records("demo", namespace="dev") == []


def test_a_sweeps_backends_are_stopped_everywhere_at_once(
    client: Client, tmp_path: Path, setup: Setup
) -> None:
    """A sweep makes one backend per variant; Ctrl-C stops the task runs of all."""
    factory = backend_factory(client, setup.store_url, "none")
    pid_files = [tmp_path / "pid-a", tmp_path / "pid-b"]
    settled = []
    for index, pid_file in enumerate(pid_files):  # one backend per variant, as a sweep
        backend = factory(setup.executor.services(), None, 1)  # type: ignore[arg-type]
        settled.append(backend.submit(setup.request(pid_file, index)))
    assert wait_for(lambda: all(p.is_file() and p.read_text() for p in pid_files), 60)
    pids = [int(p.read_text()) for p in pid_files]
    factory.stop_everywhere()
    assert [f.result(timeout=30).outcome for f in settled] == [Outcome.FAILED] * 2
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 10)
    assert open_store(setup.store_url).list_run_records("demo", namespace="dev") == []
