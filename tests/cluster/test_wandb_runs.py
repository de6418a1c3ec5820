"""Offline W&B runs of task runs on a worker end up in the project's W&B runs directory.

The real W&B SDK in offline mode; the worker is a ``dask worker`` process of its own
whose ``WANDB_DIR`` is elsewhere (as in a container): each task run on it writes its W&B
files into a directory of its own, ships the offline run through the store, and the run
unpacks it into the host's ``WANDB_DIR``/wandb, where ``aeromancy sync`` finds it, as
it finds local runs'.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from distributed import Client, LocalCluster

from aeromancy.cluster.session import backend_factory
from aeromancy.execution.executor import Executor
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome
from aeromancy.identity import RunIdentity
from aeromancy.tracking.none import NoneTracker

if TYPE_CHECKING:
    from conftest import DaskWorker, DemoProject

PIPELINE = """\
from aeromancy import Context, task


@task(outputs=["raw"])
def ingest(ctx: Context) -> None:
    out = ctx.workdir / "raw.txt"
    out.write_text("rows")
    ctx.log({"rows": 1})
    ctx.save("raw", out)


@task(inputs=["raw"], outputs=["model"])
def train(ctx: Context) -> None:
    out = ctx.workdir / "model.txt"
    out.write_text((ctx.load("raw") / "raw.txt").read_text() + "!")
    ctx.log({"loss": 0.5})
    ctx.save("model", out)
"""


@pytest.fixture
def client(wandb_env: Path, tmp_path: Path, dask_worker: DaskWorker) -> Iterator[Client]:
    """A scheduler here and one worker process whose WANDB_DIR is not the host's."""
    with (
        LocalCluster(
            n_workers=0,
            processes=False,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as connected,
    ):
        env = {**os.environ, "WANDB_DIR": str(tmp_path / "worker-wandb")}
        args = ("--nthreads", "1", "--host", "127.0.0.1")
        with dask_worker(cluster.scheduler_address, *args, env=env):
            connected.wait_for_workers(1, timeout=60)
            yield connected


def worker_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("aeromancy-worker-wandb-*"))


def test_offline_wandb_runs_made_on_a_worker_land_in_the_projects_wandb_dir(
    client: Client, tmp_path: Path, wandb_env: Path, demo_project: DemoProject
) -> None:
    root, store_url, store, plan = demo_project(PIPELINE)
    invocation = Invocation("demo", root, "pipeline.py", "dev", RunIdentity(), "env", "g1")
    before = worker_dirs()
    backend = backend_factory(client, store_url, "wandb")
    results = Executor(plan, store, invocation, NoneTracker(), backend=backend).run()
    assert {r.outcome for r in results.values()} == {Outcome.RAN}, results
    home = wandb_env / "wandb"
    for name, result in results.items():
        [run_dir] = home.glob(f"offline-run-*-{result.run_id}")
        [events] = run_dir.glob(f"run-{result.run_id}.wandb")
        assert events.stat().st_size > 0, name
    records = {r["task"]: r for r in store.list_run_records("demo", namespace="dev")}
    assert records["train"]["wandb_run"] == f"demo/{results['train'].run_id}"
    assert worker_dirs() == before  # the worker's copies are gone
    assert not list((tmp_path / "worker-wandb").glob("**/offline-run-*"))
