"""``--tracker mlflow`` against a real ``mlflow server`` on loopback (SQLite, local artifacts).

Each pipeline run is a real ``aeromancy`` subprocess in a real git repository; everything
is read back through ``mlflow.MlflowClient`` and, for secrets, by scanning every file
the server stored. Nothing is faked.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from aeromancy.cli import main
from aeromancy.errors import UsageError
from aeromancy.store import open_store
from aeromancy.tracking.mlflow import MlflowTracker

AEROMANCY = Path(sys.executable).with_name("aeromancy")
SECRET = "sk-mlflow-3a9f1c2e7b-never-store-me"
PASSTHROUGH_SECRET = "pt-mlflow-6e1d0b9a44-passthrough-value"
PASSWORD = "pw-mlflow-c0ffee-tracking-password"
REMOTE_TOKEN = "glcbt-mlflow-77aa-remote-token"
# Screenshots of the MLflow UI, kept after the test (git-ignored) to be looked at.
UI_SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "mlflow-ui"

PIPELINE = """\
import hashlib
import os

from aeromancy import Context, task


@task(outputs={"raw": "dataset"})
def ingest(ctx: Context) -> None:
    seen = "".join(os.environ.get(n, "") for n in ("AWS_SECRET_ACCESS_KEY", "E2E_PASSTHROUGH"))
    folder = ctx.workdir / "raw"
    folder.mkdir()
    (folder / "rows.csv").write_text("x\\n1\\n2\\n3\\n")
    (folder / "seen.txt").write_text(hashlib.sha256(seen.encode()).hexdigest())
    print("ingest wrote 3 rows")
    ctx.save("raw", folder)


@task(inputs=["raw"], outputs={"model": "model"})
def train(ctx: Context, epochs: int = 2, optimizer: dict = {"name": "sgd", "lr": 0.1},
          marker: str = "") -> None:
    rows = (ctx.load("raw") / "rows.csv").read_text().split()[1:]
    for epoch in range(epochs):
        ctx.log({"loss": 1.0 / (epoch + 1), "note": "text is not a metric"}, step=epoch)
    out = ctx.workdir / "model.txt"
    out.write_text(f"rows={len(rows)} epochs={epochs} weights-7f3a")
    ctx.save("model", out, metadata={"epochs": epochs})


@task(inputs=["raw", "model"], outputs=["report"])
def evaluate(ctx: Context) -> None:
    model = (ctx.load("model") / "model.txt").read_text()
    ctx.log({"accuracy": 0.9})
    ctx.log({"accuracy": 0.95, "top@1": 1})
    out = ctx.workdir / "report.md"
    out.write_text(f"model: {model}")
    ctx.save("report", out)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Return a committed git repository holding a three-task project ``mlproj``."""
    root = tmp_path / "mlproj"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "mlproj"\nversion = "0.1.0"\n\n[tool.aeromancy]\nproject = "mlproj"\n'
    )
    (root / "pipeline.py").write_text(PIPELINE)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "MLflow pipeline\n\nBody."], check=True)
    remote = f"https://ci-token:{REMOTE_TOKEN}@git.example.com/team/mlproj.git"
    subprocess.run([*git, "remote", "add", "origin", remote], check=True)
    return root


@pytest.fixture
def base_env(bytecode_cached_env: dict[str, str]) -> dict[str, str]:
    """Return the subprocess environment without any MLflow or W&B settings of the caller."""
    return {k: v for k, v in bytecode_cached_env.items() if not k.startswith(("MLFLOW_", "WANDB_"))}


def run_env(env: dict[str, str], server_url: str, **extra: str) -> dict[str, str]:
    return {
        **env,
        "MLFLOW_TRACKING_URI": server_url,
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": PASSWORD,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "E2E_PASSTHROUGH": PASSTHROUGH_SECRET,
        "COLUMNS": "200",
        **extra,
    }


def aeromancy(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AEROMANCY), *args], cwd=project, env=env, capture_output=True, text=True, check=False
    )


def head_commit(project: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(project), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def runs_of(client: MlflowClient, experiment: str, invocation: str) -> list[Any]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment}"
    return list(
        client.search_runs(
            [found.experiment_id], filter_string=f"tags.`aeromancy.invocation` = '{invocation}'"
        )
    )


def download_json(client: MlflowClient, run_id: str, path: str, dest: Path) -> Any:
    local = client.download_artifacts(run_id, path, str(dest))
    return json.loads(Path(local).read_text())


def test_a_pipeline_tracked_with_mlflow_reads_back_through_the_client(
    project: Path, tmp_path: Path, mlflow_server: Any, base_env: dict[str, str]
) -> None:
    store_url = str(tmp_path / "store")
    done = aeromancy(
        project,
        run_env(base_env, mlflow_server.url),
        *("--store", store_url, "run", "--dev", "--tracker", "mlflow"),
        *("--tags", "nightly,baseline", "--set", "train.epochs=3"),
        *("--set", "train.optimizer.lr=0.05"),
    )
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    assert "View run" not in done.stdout  # MLflow's own links stay out of Aeromancy's output

    store = open_store(store_url)
    records = {r["task"]: r for r in store.list_run_records("mlproj", "dev")}
    (group,) = {r["group"] for r in records.values()}
    client = MlflowClient(tracking_uri=mlflow_server.url)
    runs = runs_of(client, "mlproj", group)
    parents = [r for r in runs if r.data.tags.get("aeromancy.kind") == "invocation"]
    tasks = {r.data.tags["aeromancy.task"]: r for r in runs if r not in parents}
    assert len(parents) == 1
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert set(tasks) == {"ingest", "train", "evaluate"}

    commit = head_commit(project)
    for task, run in tasks.items():
        record, tags = records[task], run.data.tags
        assert record["wandb_run"] == f"mlflow:{run.info.experiment_id}/{run.info.run_id}"
        assert run.info.status == "FINISHED"
        assert run.info.run_name == f"{task}-{record['run_id']}"
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["aeromancy.run_id"] == record["run_id"]
        assert tags["aeromancy.invocation"] == group
        assert tags["mlflow.source.git.commit"] == commit
        assert tags["mlflow.source.git.branch"] == "main"
        assert tags["mlflow.source.git.repoURL"] == "https://***@git.example.com/team/mlproj.git"
        assert tags["aeromancy.tags"] == "nightly,baseline"
        assert tags["mlflow.note.content"] == "MLflow pipeline"
        _check_inputs(run, record)
        _check_outputs(client, run, record, store, tmp_path / "downloads" / task)
        saved = download_json(
            client, run.info.run_id, "aeromancy/run-record.json", tmp_path / "rec" / task
        )
        assert saved["run_id"] == record["run_id"]
        environment = download_json(
            client, run.info.run_id, "aeromancy/environment.json", tmp_path / "env" / task
        )
        assert environment["python_packages"]["mlflow"]

    output = client.download_artifacts(
        tasks["ingest"].info.run_id, "aeromancy/output.log", str(tmp_path / "out")
    )
    assert Path(output).read_text() == "ingest wrote 3 rows\n"

    train = tasks["train"]
    assert train.data.params == {
        "epochs": "3",
        "optimizer.name": "sgd",
        "optimizer.lr": "0.05",
        "marker": "",
    }
    losses = client.get_metric_history(train.info.run_id, "loss")
    assert [(m.step, m.value) for m in losses] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert "note" not in train.data.metrics
    accuracy = client.get_metric_history(tasks["evaluate"].info.run_id, "accuracy")
    assert [(m.step, m.value) for m in accuracy] == [(0, 0.9), (1, 0.95)]
    assert tasks["evaluate"].data.metrics["top_1"] == 1.0  # '@' is not allowed in a key


def _check_inputs(run: Any, record: dict[str, Any]) -> None:
    logged = {}
    for dataset_input in run.inputs.dataset_inputs:
        dataset, tags = dataset_input.dataset, {t.key: t.value for t in dataset_input.tags}
        profile = json.loads(dataset.profile)
        logged[dataset.name] = (tags["aeromancy.version"], profile["digest"], dataset.digest)
        assert tags["mlflow.data.context"] == "input"
        assert dataset.source_type == "aeromancy"
    expected = {
        entry["name"]: (
            entry["label"],
            entry["digest"],
            entry["digest"].removeprefix("sha256:")[:36],
        )
        for entry in record["inputs"]
    }
    assert logged == expected


def _check_outputs(
    client: MlflowClient, run: Any, record: dict[str, Any], store: Any, dest: Path
) -> None:
    (output,) = record["outputs"]
    version = store.resolve(f"{output['name']}:{output['label']}", "mlproj", namespace="dev")
    listed = [a.path for a in client.list_artifacts(run.info.run_id, "aeromancy/outputs")]
    assert listed == [f"aeromancy/outputs/{version.name}.json"]
    reference = download_json(client, run.info.run_id, listed[0], dest)
    assert reference["ref"] == version.ref
    assert reference["digest"] == version.digest
    assert {f["path"]: f["uri"] for f in reference["files"]} == {
        f.path: store.blob_uri(f.sha256) for f in version.files
    }
    assert run.data.tags[f"aeromancy.output.{version.name}"] == version.label


def test_a_secret_appears_in_nothing_the_mlflow_server_stored(
    project: Path, tmp_path: Path, mlflow_server: Any, base_env: dict[str, str]
) -> None:
    store_url = str(tmp_path / "store")
    marker = "config-marker-mlflow-5b1e"  # stored as a param: proves the scan finds things
    done = aeromancy(
        project,
        run_env(base_env, mlflow_server.url),
        *("--store", store_url, "--debug", "run", "--dev", "--tracker", "mlflow"),
        *("--extra-env-var", "E2E_PASSTHROUGH", "--set", f"train.marker={marker}"),
    )
    assert done.returncode == 0, done.stderr

    store = open_store(store_url)
    raw = store.resolve("raw", "mlproj", namespace="dev")
    seen = (store.materialize(raw, tmp_path / "raw") / "seen.txt").read_text()
    both = SECRET + PASSTHROUGH_SECRET
    assert seen == hashlib.sha256(both.encode()).hexdigest(), "the task did not see the secrets"

    client = MlflowClient(tracking_uri=mlflow_server.url)
    (group,) = {r["group"] for r in store.list_run_records("mlproj", "dev")}
    runs = runs_of(client, "mlproj", group)
    assert len(runs) == 4
    texts = [json.dumps({"params": r.data.params, "tags": r.data.tags}) for r in runs]
    assert any(marker in text for text in texts)
    stored = [path.read_bytes() for path in mlflow_server.stored_files()]
    assert any(marker.encode() in data for data in stored), "the scan does not see the params"
    for secret in (SECRET, PASSTHROUGH_SECRET, PASSWORD, REMOTE_TOKEN):
        assert not [t for t in texts if secret in t]
        assert not [d for d in stored if secret.encode() in d], f"{secret} stored by MLflow"
        assert secret not in done.stdout + done.stderr


def test_an_unreachable_server_warns_once_and_keeps_outputs_and_records(
    project: Path, tmp_path: Path, base_env: dict[str, str]
) -> None:
    store_url = str(tmp_path / "store")
    env = run_env(base_env, "http://127.0.0.1:9", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    done = aeromancy(project, env, "--store", store_url, "run", "--dev", "--tracker", "mlflow")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, done.stderr
    assert "tracker failed in start" in warnings[0]
    records = open_store(store_url).list_run_records("mlproj", "dev")
    assert {r["task"] for r in records} == {"ingest", "train", "evaluate"}
    assert all(r["status"] == "succeeded" and r["wandb_run"] is None for r in records)


def test_the_project_setting_tracks_pushes_in_mlflow(
    project: Path, tmp_path: Path, mlflow_server: Any, base_env: dict[str, str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'tracker = "mlflow"\n')
    data = tmp_path / "labels"
    data.mkdir()
    (data / "labels.csv").write_text("id,label\n1,cat\n")
    store_url = str(tmp_path / "store")
    env = run_env(base_env, mlflow_server.url)
    done = aeromancy(project, env, "--store", store_url, "push", "labels", str(data))
    assert done.returncode == 0, done.stderr
    version = open_store(store_url).resolve("labels", "mlproj")

    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.get_experiment_by_name("mlproj")
    assert experiment is not None
    (run,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`aeromancy.task` = 'push'"
    )
    assert f"tracked in mlflow: mlflow:{experiment.experiment_id}/{run.info.run_id}" in done.stdout
    assert "mlflow.parentRunId" not in run.data.tags
    assert run.data.params == {"artifact": "labels", "type": "artifact"}
    reference = download_json(
        client, run.info.run_id, "aeromancy/outputs/labels.json", tmp_path / "push"
    )
    assert reference["ref"] == "mlproj/labels:v1"
    assert reference["digest"] == version.digest


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, "needs MLflow, which is not installed"),
        ({}, "needs MLFLOW_TRACKING_URI"),
    ],
    ids=["mlflow-missing", "no-tracking-uri"],
)
def test_mlflow_unusable_refuses_before_anything_runs(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    expected: str,
) -> None:
    if "MLFLOW_TRACKING_URI" in environ:
        # Python's own way to make an import fail: None in sys.modules.
        monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project)
    store = tmp_path / "store"
    result = CliRunner().invoke(
        main, ["--store", str(store), "run", "--dev", "--tracker", "mlflow"]
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert expected in result.output
    assert not store.exists()


def test_an_image_without_the_mlflow_client_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in the container of a rerun whose recorded image was built for another tracker.
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setattr("aeromancy.launcher.inside_container", lambda: True)
    with pytest.raises(UsageError) as caught:
        MlflowTracker({"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        "--tracker mlflow needs MLflow, which this image's Aeromancy venv lacks (it was "
        "built for another tracker) (run it with the tracker it was recorded with; "
        "`aeromancy run --tracker mlflow` builds an image with the MLflow client)"
    )


def test_a_tracked_run_without_a_tracking_uri_is_refused_before_building(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AEROMANCY_IN_CONTAINER", raising=False)
    monkeypatch.chdir(project)
    store = tmp_path / "store"
    result = CliRunner().invoke(main, ["--store", str(store), "run", "--tracker", "mlflow"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert "needs MLFLOW_TRACKING_URI" in result.output
    assert not store.exists()


def chromium() -> str:
    """Return Debian's Chromium, or skip the test saying how to get it."""
    found = shutil.which("chromium")
    if found is None:
        pytest.skip(
            "chromium is missing for the MLflow UI check (apt-get install chromium; "
            "scripts/setup installs it when run as root)"
        )
    return found


def browse(browser: str, url: str, screenshot: Path, profile: Path) -> str:
    """Load ``url`` in headless Chromium, save a screenshot, return the rendered DOM.

    A fresh profile per page; the virtual time budget lets MLflow's single-page app
    fetch its data and render before the page is captured.
    """
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    argv += [f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1800,1600"]
    argv += ["--virtual-time-budget=30000", "--dump-dom", f"--screenshot={screenshot}", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return done.stdout


def test_the_mlflow_ui_shows_the_runs_of_the_pipeline(
    project: Path, tmp_path: Path, mlflow_server: Any, base_env: dict[str, str]
) -> None:
    browser = chromium()
    store_url = str(tmp_path / "store")
    env = run_env(base_env, mlflow_server.url)
    done = aeromancy(project, env, "--store", store_url, "run", "--dev", "--tracker", "mlflow")
    assert done.returncode == 0, done.stderr
    (group,) = {r["group"] for r in open_store(store_url).list_run_records("mlproj", "dev")}
    client = MlflowClient(tracking_uri=mlflow_server.url)
    runs = runs_of(client, "mlproj", group)
    names = {run.data.tags.get("aeromancy.task", "invocation"): run.info.run_name for run in runs}
    assert set(names) == {"invocation", "ingest", "train", "evaluate"}
    experiment = runs[0].info.experiment_id

    # The runs of one invocation side by side: names, params and metrics.
    ids = urllib.parse.quote(json.dumps([run.info.run_id for run in runs]))
    compare = f"{mlflow_server.url}/#/compare-runs?runs={ids}&experiments=%5B%22{experiment}%22%5D"
    page = browse(browser, compare, UI_SCREENSHOTS / "compare-runs.png", tmp_path / "p1")
    assert f"Comparing {len(runs)} Runs from 1 Experiment" in page
    for name in names.values():
        assert name in page
    for shown in ("optimizer.lr", "epochs", "loss", "accuracy"):
        assert shown in page

    # One task run's page: its metrics, params, input dataset and parent run.
    (train,) = [run for run in runs if run.info.run_name == names["train"]]
    url = f"{mlflow_server.url}/#/experiments/{experiment}/runs/{train.info.run_id}"
    page = browse(browser, url, UI_SCREENSHOTS / "train-run.png", tmp_path / "p2")
    for shown in (names["train"], names["invocation"], "raw", "loss", "optimizer.lr"):
        assert shown in page
