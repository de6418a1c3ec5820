"""Worker resources on a real in-process Dask cluster: one plain worker, one with GPU=1.

``@task(resources=...)`` and ``--cluster-resources`` become Dask's ``resources=`` on
submit, so those task runs run on the GPU worker only and their records say what they
were submitted with; a task needing what no worker has is refused before anything
is submitted, in one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from distributed import Client, Scheduler, SpecCluster, Worker

from aeromancy import task
from aeromancy.cli import main
from aeromancy.cluster.containers import worker_resource_args
from aeromancy.cluster.resources import parse_resources
from aeromancy.cluster.session import backend_factory, check_resources_offered
from aeromancy.errors import UsageError
from aeromancy.execution.executor import Executor
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome, TaskResult
from aeromancy.identity import RunIdentity
from aeromancy.planning import Plan, build_plan, load_graph
from aeromancy.store import open_store
from aeromancy.tracking.none import NoneTracker

PIPELINE = """\
import time

from aeromancy import Context, task


@task(outputs=["raw"])
def ingest(ctx: Context) -> None:
    out = ctx.workdir / "raw.txt"
    out.write_text("rows")
    ctx.save("raw", out)


@task(inputs=["raw"], outputs=["model"], resources={"GPU": 1})
def train(ctx: Context, lr: float = 0.1) -> None:
    time.sleep(0.3)
    out = ctx.workdir / "model.txt"
    out.write_text((ctx.load("raw") / "raw.txt").read_text() + str(lr))
    ctx.save("model", out)
"""


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    workers = {
        "plain": {"cls": Worker, "options": {"nthreads": 1}},
        "gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    with (
        SpecCluster(workers=workers, scheduler=scheduler) as cluster,
        Client(cluster, set_as_default=False) as connected,
    ):
        connected.wait_for_workers(2)
        yield connected


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "demo"
    project.mkdir()
    (project / "pipeline.py").write_text(PIPELINE)
    return project


def plan_of(root: Path, store_url: str) -> Plan:
    graph = load_graph("pipeline.py", root, "demo")
    return build_plan(graph, open_store(store_url), namespace="dev")


def run_on(
    client: Client, root: Path, store_url: str, given: dict[str, float], group: str
) -> dict[str, TaskResult]:
    invocation = Invocation("demo", root, "pipeline.py", "dev", RunIdentity(), "env", group, jobs=2)
    backend = backend_factory(client, store_url, "none", given)
    plan = plan_of(root, store_url)
    check_resources_offered(client, plan, given)
    return Executor(plan, open_store(store_url), invocation, NoneTracker(), backend=backend).run()


def started_on(client: Client) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    client.subscribe_topic(
        "aeromancy-started", lambda event: seen.append((event[1]["task"], event[1]["on"]))
    )
    return seen


def records(store_url: str) -> dict[str, dict[str, float]]:
    found = open_store(store_url).list_run_records("demo", namespace="dev")
    return {r["task"]: r["worker_resources"] for r in found}


def test_a_task_declaring_a_gpu_runs_on_the_gpu_worker_only(
    client: Client, root: Path, tmp_path: Path
) -> None:
    seen = started_on(client)
    for lr in (0.1, 0.2, 0.3):  # three runs: the plain worker is free for every one
        (root / "pipeline.py").write_text(PIPELINE.replace("lr: float = 0.1", f"lr: float = {lr}"))
        store_url = str(tmp_path / f"store-{lr}")
        results = run_on(client, root, store_url, {}, f"g{lr}")
        assert {r.outcome for r in results.values()} == {Outcome.RAN}
        assert records(store_url) == {"ingest": {}, "train": {"GPU": 1.0}}
    assert {on for name, on in seen if name == "train"} == {"gpu"}, seen


def test_cluster_resources_apply_to_every_task_run(
    client: Client, root: Path, tmp_path: Path
) -> None:
    seen = started_on(client)
    store_url = str(tmp_path / "store")
    results = run_on(client, root, store_url, {"GPU": 0.5}, "g-given")
    assert {r.outcome for r in results.values()} == {Outcome.RAN}
    assert records(store_url) == {"ingest": {"GPU": 0.5}, "train": {"GPU": 0.5}}
    assert {on for _name, on in seen} == {"gpu"}, seen


def test_a_task_needing_what_no_worker_has_is_refused_before_submitting(
    client: Client, root: Path, tmp_path: Path
) -> None:
    store_url = str(tmp_path / "store")
    plan = plan_of(root, store_url)
    with pytest.raises(UsageError) as caught:
        check_resources_offered(client, plan, {"TPU": 1})
    message = caught.value.message
    assert message == (
        "cluster refused: task ingest needs worker resources TPU=1; its workers offer GPU=1; none"
    )
    with pytest.raises(UsageError, match="task ingest needs worker resources GPU=2"):
        check_resources_offered(client, plan, {"GPU": 2})
    # The task's own GPU=1 with the run's MEMORY=1: the GPU worker has no memory listed.
    with pytest.raises(UsageError, match="task train needs worker resources GPU=1, MEMORY=1;"):
        check_resources_offered(client, replace(plan, order=("train",)), {"MEMORY": 1})
    assert open_store(store_url).list_run_records("demo", namespace="dev") == []


def test_resources_parse_from_repeated_and_comma_options() -> None:
    assert parse_resources(["GPU=1,MEMORY=2e9", "gpu=0.5"]) == {
        "GPU": 1.0,
        "MEMORY": 2e9,
        "gpu": 0.5,
    }
    assert worker_resource_args({"MEMORY": 2e9, "GPU": 1.0}) == [
        "--resources",
        "GPU=1 MEMORY=2000000000",
    ]
    for bad in ("GPU", "GPU=x", "GPU=0", "GPU=-1", "=1", "G PU=1"):
        with pytest.raises(UsageError):
            parse_resources([bad])


@pytest.mark.parametrize("resources", [{"GPU": 0}, {"GPU": True}, {"": 1}, {"GPU": "1"}])
def test_a_bad_task_resource_is_a_usage_error(resources: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        task(resources=resources)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--dev", "--cluster-resources", "GPU=1"],
        ["run", "--cluster-resources", "GPU=1"],
        ["run", "--cluster", "tcp://127.0.0.1:1", "--cluster-resources", "GPU"],
        ["cluster", "up", "--resources", "GPU=none"],
    ],
    ids=["dev", "no-cluster", "malformed", "cluster-up"],
)
def test_cluster_resources_without_a_cluster_or_malformed_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AEROMANCY_CLUSTER", raising=False)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "-resources" in lines[0]  # --cluster-resources, or cluster up's --resources
