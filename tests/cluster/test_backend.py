"""The Dask backend on a real in-process Dask cluster (LocalCluster, two workers).

The workers are threads of this process here (no containers), so this checks the
backend's contract: a diamond graph runs with outputs and records identical to a
local run's, on both workers, each record once; a retried task run under the same
run id publishes nothing twice. tests/cluster/test_containers.py runs the same on
containers of the project's image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from aeromancy.cluster.backend import DaskBackend
from aeromancy.cluster.session import backend_factory
from aeromancy.cluster.work import run_on_worker
from aeromancy.execution.executor import BackendFactory, Executor, code_identities
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome, TaskResult
from aeromancy.execution.task_run import TaskRequest
from aeromancy.identity import RunIdentity
from aeromancy.planning import build_plan, load_graph
from aeromancy.store import open_store
from aeromancy.store.layout import run_record_key
from aeromancy.tracking.none import NoneTracker

PIPELINE = """\
import time

from aeromancy import Context, task


@task(outputs=["raw"])
def ingest(ctx: Context, rows: int = 4) -> None:
    out = ctx.workdir / "raw.txt"
    out.write_text("\\n".join(str(i) for i in range(rows)))
    ctx.save("raw", out)


@task(inputs=["raw"], outputs=["left"])
def left(ctx: Context, pause: float = 0.5) -> None:
    time.sleep(pause)
    print("left ran")
    out = ctx.workdir / "left.txt"
    out.write_text((ctx.load("raw") / "raw.txt").read_text().upper())
    ctx.save("left", out)


@task(inputs=["raw"], outputs=["right"])
def right(ctx: Context, pause: float = 0.5) -> None:
    time.sleep(pause)
    out = ctx.workdir / "right.txt"
    out.write_text((ctx.load("raw") / "raw.txt").read_text()[::-1])
    ctx.save("right", out)


@task(inputs=["left", "right"], outputs=["joined"])
def join(ctx: Context) -> None:
    out = ctx.workdir / "joined.txt"
    left = (ctx.load("left") / "left.txt").read_text()
    out.write_text(left + (ctx.load("right") / "right.txt").read_text())
    ctx.save("joined", out)
"""


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as connected,
    ):
        yield connected


def run_plan(
    root: Path, store_url: str, backend: BackendFactory | None, jobs: int = 1
) -> dict[str, TaskResult]:
    store = open_store(store_url)
    graph = load_graph("pipeline.py", root, "demo")
    plan = build_plan(graph, store, namespace="dev")
    invocation = Invocation(
        project="demo",
        root=root,
        tasks="pipeline.py",
        namespace="dev",
        identity=RunIdentity(),
        environment_key="test-env",
        group="g1",
        jobs=jobs,
    )
    if backend is None:
        return Executor(plan, store, invocation, NoneTracker()).run()
    return Executor(plan, store, invocation, NoneTracker(), backend=backend).run()


def output_digests(results: dict[str, TaskResult]) -> dict[str, list[str]]:
    return {name: [v.digest for v in r.outputs] for name, r in results.items()}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "demo"
    project.mkdir()
    (project / "pipeline.py").write_text(PIPELINE)
    return project


def test_diamond_on_the_cluster_matches_a_local_run(
    client: Client, root: Path, tmp_path: Path
) -> None:
    local = run_plan(root, str(tmp_path / "local-store"), None)
    store_url = str(tmp_path / "cluster-store")
    on_cluster = run_plan(root, store_url, backend_factory(client, store_url, "none"), jobs=2)
    assert {r.outcome for r in on_cluster.values()} == {Outcome.RAN}
    assert output_digests(on_cluster) == output_digests(local)
    records = open_store(store_url).list_run_records("demo", namespace="dev")
    assert sorted(r["task"] for r in records) == ["ingest", "join", "left", "right"]
    assert {r["run_id"] for r in records} == {r.run_id for r in on_cluster.values()}
    # Up-to-date tasks are skipped on this side: nothing is submitted a second time.
    again = run_plan(root, store_url, backend_factory(client, store_url, "none"), jobs=2)
    assert {r.outcome for r in again.values()} == {Outcome.SKIPPED}


def test_the_two_branches_of_the_diamond_run_on_both_workers(
    client: Client, root: Path, tmp_path: Path
) -> None:
    store_url = str(tmp_path / "store")
    seen: list[str] = []
    client.subscribe_topic("aeromancy-started", lambda event: seen.append(event[1]["on"]))
    run_plan(root, store_url, backend_factory(client, store_url, "none"), jobs=2)
    assert len(set(seen)) == 2, seen


@pytest.mark.parametrize("record_written", [True, False], ids=["after-record", "before-record"])
def test_an_attempt_under_the_same_run_id_publishes_and_records_once(
    client: Client, root: Path, tmp_path: Path, record_written: bool
) -> None:
    """A worker that died after publishing (and maybe recording) is run again by Dask
    with the same work item: the second attempt makes no second version or record."""
    store_url = str(tmp_path / "store")
    store = open_store(store_url)
    plan = build_plan(load_graph("pipeline.py", root, "demo"), store, namespace="dev")
    invocation = Invocation("demo", root, "pipeline.py", "dev", RunIdentity(), "env", "g2")
    executor = Executor(plan, store, invocation, NoneTracker())
    code = code_identities(plan, root, "pipeline.py")
    backend = DaskBackend(client, executor.services(), store_url, "none", 1)
    request = TaskRequest(plan.graph.specs["ingest"], {"rows": 7}, {}, "sha256:fp", code["ingest"])
    item = backend.work_item(request)
    first = run_on_worker(item)
    if not record_written:
        (Path(store_url) / run_record_key("dev", "demo", item.run_id)).unlink()
    # Meanwhile another variant published a newer version of the same artifact.
    rival = tmp_path / "rival.txt"
    rival.write_text("another variant's rows")
    store.publish("demo", "raw", rival, run_id="rival", namespace="dev")
    second = run_on_worker(item)
    assert [first.result.outcome, second.result.outcome] == [Outcome.RAN, Outcome.RAN]
    assert first.result.outputs == second.result.outputs
    published = [v.run_id for v in store.list_versions("demo", "raw", namespace="dev")]
    assert sorted(published) == sorted([item.run_id, "rival"])
    records = store.list_run_records("demo", namespace="dev")
    assert [r["run_id"] for r in records] == [item.run_id]
