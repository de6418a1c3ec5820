"""A tracked run (in the container) with ``--tracker mlflow`` against a real loopback server.

The real CLI builds the image from the local base image with the MLflow client in
Aeromancy's runtime venv (not in the project's), runs the pipeline in a container on the
host network (the server listens on the host's 127.0.0.1), and everything is read back
through ``mlflow.MlflowClient``; for the secret, every param and tag and every byte the
server stored is searched.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from aeromancy.store import open_store

pytestmark = pytest.mark.docker

ProjectFactory = Callable[..., Path]
AEROMANCY = str(Path(sys.executable).parent / "aeromancy")
SECRET = "sk-tracked-mlflow-41c9e07d-never-store-me"
PASSWORD = "pw-tracked-mlflow-9d2e-tracking-password"
MARKER = "config-marker-tracked-mlflow-e8a1"

PIPELINE = """\
import hashlib
import importlib.util
import os

from aeromancy import Context, task


@task(outputs={"raw": "dataset"})
def ingest(ctx: Context) -> None:
    folder = ctx.workdir / "raw"
    folder.mkdir()
    (folder / "rows.csv").write_text("x\\n1\\n2\\n3\\n")
    seen = os.environ.get("E2E_SECRET", "")
    (folder / "seen.txt").write_text(hashlib.sha256(seen.encode()).hexdigest())
    # The task runs in the project's venv, which holds only pdm.lock: no MLflow client.
    (folder / "mlflow.txt").write_text(str(importlib.util.find_spec("mlflow") is not None))
    ctx.save("raw", folder)


@task(inputs=["raw"], outputs={"model": "model"})
def train(ctx: Context, epochs: int = 3, optimizer: dict = {"name": "sgd", "lr": 0.1},
          marker: str = "") -> None:
    rows = (ctx.load("raw") / "rows.csv").read_text().split()[1:]
    for epoch in range(epochs):
        ctx.log({"loss": 1.0 / (epoch + 1)}, step=epoch)
    out = ctx.workdir / "model.txt"
    out.write_text(f"rows={len(rows)} epochs={epochs}")
    ctx.save("model", out, metadata={"epochs": epochs})


@task(inputs=["raw", "model"], outputs=["report"])
def evaluate(ctx: Context) -> None:
    ctx.log({"accuracy": 0.9})
    ctx.log({"accuracy": 0.95})
    out = ctx.workdir / "report.md"
    out.write_text((ctx.load("model") / "model.txt").read_text())
    ctx.save("report", out)
"""


def run_tracked(root: Path, store: str, server_url: str) -> subprocess.CompletedProcess[str]:
    """Run the pipeline tracked, in the container, with MLflow; return the finished process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    env.update(
        MLFLOW_TRACKING_URI=server_url,
        MLFLOW_TRACKING_USERNAME="alice",
        MLFLOW_TRACKING_PASSWORD=PASSWORD,
        E2E_SECRET=SECRET,
        COLUMNS="200",
    )
    argv = [AEROMANCY, "--store", store, "run", "--tracker", "mlflow", "--tags", "nightly"]
    argv += ["--extra-env-var", "E2E_SECRET", "--set", "train.optimizer.lr=0.05"]
    argv += ["--set", f"train.marker={MARKER}"]
    return subprocess.run(
        argv,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )


def test_a_tracked_run_in_the_container_reaches_the_loopback_mlflow_server(
    make_project: ProjectFactory, local_store_url: str, mlflow_server: Any, tmp_path: Path
) -> None:
    root = make_project(name="mlproj", pipeline=PIPELINE)
    done = run_tracked(root, local_store_url, mlflow_server.url)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr

    store = open_store(local_store_url)
    records = {r["task"]: r for r in store.list_run_records("mlproj")}
    assert set(records) == {"ingest", "train", "evaluate"}
    (group,) = {r["group"] for r in records.values()}
    raw = store.materialize(store.resolve("raw", "mlproj"), tmp_path / "raw")
    assert (raw / "seen.txt").read_text() == hashlib.sha256(SECRET.encode()).hexdigest()
    assert (raw / "mlflow.txt").read_text() == "False"  # the project's venv is untouched
    # Aeromancy's own process in the container (where the tracker runs) has the client.
    assert records["train"]["environment"]["python_packages"]["mlflow-skinny"]

    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.get_experiment_by_name("mlproj")
    assert experiment is not None
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`aeromancy.invocation` = '{group}'"
    )
    (parent,) = [r for r in runs if r.data.tags.get("aeromancy.kind") == "invocation"]
    assert parent.info.status == "FINISHED"
    tasks = {r.data.tags["aeromancy.task"]: r for r in runs if r is not parent}
    assert set(tasks) == {"ingest", "train", "evaluate"}
    commit = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for task, run in tasks.items():
        record, tags = records[task], run.data.tags
        assert run.info.status == "FINISHED"
        assert record["wandb_run"] == f"mlflow:{experiment.experiment_id}/{run.info.run_id}"
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["aeromancy.run_id"] == record["run_id"]
        assert tags["aeromancy.image_id"] == record["image_id"]
        assert record["image_id"].startswith("sha256:")
        assert tags["mlflow.source.git.commit"] == commit
        assert tags["mlflow.source.git.branch"] == "main"
        assert tags["aeromancy.tags"] == "nightly"
        assert _inputs(run) == {
            entry["name"]: (entry["label"], entry["digest"]) for entry in record["inputs"]
        }
        saved = client.download_artifacts(
            run.info.run_id, "aeromancy/run-record.json", str(tmp_path / "rec" / task)
        )
        assert json.loads(Path(saved).read_text())["run_id"] == record["run_id"]
        _check_output(client, run, record, store, tmp_path / "out" / task)

    train = tasks["train"]
    assert train.data.params == {
        "epochs": "3",
        "optimizer.name": "sgd",
        "optimizer.lr": "0.05",
        "marker": MARKER,
    }
    losses = client.get_metric_history(train.info.run_id, "loss")
    assert [(m.step, m.value) for m in losses] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    accuracy = client.get_metric_history(tasks["evaluate"].info.run_id, "accuracy")
    assert [(m.step, m.value) for m in accuracy] == [(0, 0.9), (1, 0.95)]

    # The secret reached the task (above) and nothing MLflow holds: no param, no tag, no
    # byte of its database or artifacts; the marker param shows the search finds things.
    texts = [json.dumps({"params": r.data.params, "tags": r.data.tags}) for r in runs]
    stored = [path.read_bytes() for path in mlflow_server.stored_files()]
    assert any(MARKER in text for text in texts)
    assert any(MARKER.encode() in data for data in stored)
    for secret in (SECRET, PASSWORD):
        assert not [text for text in texts if secret in text]
        assert not [data for data in stored if secret.encode() in data], f"{secret} stored"
        assert secret not in done.stdout + done.stderr


def _inputs(run: Any) -> dict[str, tuple[str, str]]:
    """Return input name -> (version label, full digest) as the run's datasets say."""
    found = {}
    for dataset_input in run.inputs.dataset_inputs:
        dataset = dataset_input.dataset
        tags = {tag.key: tag.value for tag in dataset_input.tags}
        profile = json.loads(dataset.profile)
        assert tags["mlflow.data.context"] == "input"
        assert dataset.digest == profile["digest"].removeprefix("sha256:")[:36]
        found[dataset.name] = (tags["aeromancy.version"], profile["digest"])
    return found


def _check_output(
    client: MlflowClient, run: Any, record: dict[str, Any], store: Any, dest: Path
) -> None:
    (output,) = record["outputs"]
    version = store.resolve(f"{output['name']}:{output['label']}", "mlproj")
    local = client.download_artifacts(
        run.info.run_id, f"aeromancy/outputs/{version.name}.json", str(dest)
    )
    reference = json.loads(Path(local).read_text())
    assert reference["digest"] == version.digest
    assert {f["path"]: f["uri"] for f in reference["files"]} == {
        f.path: store.blob_uri(f.sha256) for f in version.files
    }
