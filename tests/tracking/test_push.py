"""``aeromancy push`` with a tracker: the pushed version becomes a W&B artifact of a ``push`` run.

Pushes and runs are real ``aeromancy`` subprocesses in a real git repository, with the
real wandb SDK offline; every W&B run is read back from its ``.wandb`` file (what
``wandb sync`` uploads). ``aeromancy sync`` needs the W&B server, which cannot run
here: its public API is replaced by ``FakeApi`` (tests/tracking/test_sync.py), which
serves exactly the runs and artifact aliases that the offline files hold.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.store import open_store
from aeromancy.tracking import sync as wandb_sync
from aeromancy.tracking.wandb_artifacts import artifact_metadata

AEROMANCY = Path(sys.executable).with_name("aeromancy")

PIPELINE = """\
from aeromancy import Context, task


@task(inputs=["raw"], outputs={"model": "model"})
def train(ctx: Context) -> None:
    rows = (ctx.load("raw") / "rows.csv").read_text().split()
    out = ctx.workdir / "model.txt"
    out.write_text(f"rows={len(rows)}")
    ctx.save("model", out)
"""


def make_project(root: Path, tool: str = "") -> Path:
    """Create a committed git repository holding a project whose task consumes ``raw``."""
    root.mkdir()
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "lin"\nversion = "0.1.0"\n\n[tool.aeromancy]\nproject = "lin"\n{tool}'
    )
    (root / "pipeline.py").write_text(PIPELINE)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "Lineage project"], check=True)
    data = root.parent / "raw"
    data.mkdir()
    (data / "rows.csv").write_text("x\n1\n2\n")
    (data / "notes.txt").write_text("from the field\n")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "lin")


def aeromancy(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(AEROMANCY), *args], cwd=project, env=env, capture_output=True, text=True, check=False
    )


def push_raw(project: Path, store: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    data = str(project.parent / "raw")
    return aeromancy(
        project, "--store", str(store), "push", "raw", data, "--type", "dataset", *extra
    )


def test_push_logs_the_version_as_an_artifact_of_a_push_run(
    project: Path, tmp_path: Path, wandb_env: Path, read_runs: Any
) -> None:
    store_dir = tmp_path / "store"
    done = push_raw(project, store_dir, "--metadata", '{"rows": 2}', "--tracker", "wandb")
    assert done.returncode == 0, done.stderr

    store = open_store(str(store_dir))
    version = store.resolve("raw", "lin")
    (run,) = read_runs(wandb_env / "wandb")
    assert f"tracked in wandb: lin/{run.run_id}" in done.stdout
    assert run.job_type == "push"
    assert run.project == "lin"
    assert run.user_config["artifact"] == "raw"
    assert run.exit_code == 0
    (artifact,) = run.artifacts
    assert (artifact["name"], artifact["type"]) == ("raw", "dataset")
    assert set(artifact["aliases"]) == {"latest", "aeromancy-v1"}
    # The same metadata and reference entries as a task output: store blob URIs, no uploads.
    assert artifact["metadata"] == json.loads(json.dumps(artifact_metadata(version)))
    assert artifact["metadata"]["rows"] == 2
    assert {path: e["ref"] for path, e in artifact["entries"].items()} == {
        f.path: store.blob_uri(f.sha256) for f in version.files
    }
    record = json.loads((run.directory / "files" / "aeromancy-run-record.json").read_text())
    assert record["artifact"] == "lin/raw:v1"
    assert record["digest"] == version.digest
    assert record["tracker_run"] == f"lin/{run.run_id}"


def test_a_consumer_declares_the_pushed_version_and_sync_links_it(
    project: Path,
    tmp_path: Path,
    wandb_env: Path,
    read_runs: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store_dir = tmp_path / "store"
    assert push_raw(project, store_dir, "--tracker", "wandb").returncode == 0
    done = aeromancy(project, "--store", str(store_dir), "run", "--dev", "--tracker", "wandb")
    assert done.returncode == 0, done.stderr

    runs = {r.job_type: r for r in read_runs(wandb_env / "wandb")}
    assert set(runs) == {"push", "train"}
    (pushed,) = runs["push"].artifacts
    (used,) = runs["train"].config["aeromancy"]["inputs"]
    assert used["ref"] == "lin/raw:v1"
    assert used["wandb_alias"] in pushed["aliases"]
    assert used["digest"] == pushed["metadata"]["aeromancy"]["digest"]
    # Both offline runs are waiting for `aeromancy sync` to upload them.
    pending = wandb_sync.pending_offline_runs(wandb_env / "wandb")
    assert sorted(pending) == sorted(r.directory for r in runs.values())

    # After the upload the server holds both runs and the push run's artifact aliases.
    api = uploaded(runs.values(), entity="team")
    monkeypatch.setattr(wandb_sync, "open_api", lambda: api)
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.chdir(project)
    linked = CliRunner().invoke(main, ["--store", str(store_dir), "sync", "--no-upload"])

    assert linked.exit_code == 0, linked.output
    train_path = f"team/lin/{runs['train'].run_id}"
    assert f"linked lin/raw:v1 -> {train_path}" in linked.output
    assert "not linked" not in linked.output
    assert [a.path for a in api.runs[train_path].used] == ["team/lin/raw:aeromancy-v1"]


def uploaded(runs: Any, entity: str) -> Any:
    """Return a FakeApi holding what ``wandb sync`` of these offline runs puts on the server."""
    fakes = sync_fakes()
    FakeApi, FakeArtifact, FakeRun = fakes.FakeApi, fakes.FakeArtifact, fakes.FakeRun
    artifacts = {}
    for run in runs:
        for logged in run.artifacts:
            for alias in logged["aliases"]:
                path = f"{entity}/{run.project}/{logged['name']}:{alias}"
                artifacts[path] = FakeArtifact(f"{logged['name']}@{run.run_id}", path)
    fake_runs = {f"{entity}/{r.project}/{r.run_id}": FakeRun(r.user_config) for r in runs}
    return FakeApi(runs=fake_runs, artifacts=artifacts, default_entity=entity)


def sync_fakes() -> Any:
    """Return test_sync.py as a module: the W&B public API fakes live there."""
    name = "aeromancy_tests_tracking_sync"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("test_sync.py")
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_the_project_setting_turns_the_tracker_on_for_push(
    tmp_path: Path, wandb_env: Path, read_runs: Any
) -> None:
    project = make_project(tmp_path / "lin", tool='tracker = "wandb"\n')
    done = push_raw(project, tmp_path / "store")
    assert done.returncode == 0, done.stderr
    (run,) = read_runs(wandb_env / "wandb")
    assert run.job_type == "push"


def test_without_a_tracker_push_starts_no_run(
    project: Path, tmp_path: Path, wandb_env: Path
) -> None:
    done = push_raw(project, tmp_path / "store")
    assert done.returncode == 0, done.stderr
    assert "tracked in" not in done.stdout
    assert not (wandb_env / "wandb").exists()


def test_an_unknown_tracker_setting_refuses_before_pushing(tmp_path: Path) -> None:
    project = make_project(tmp_path / "lin", tool='tracker = "neptune"\n')
    done = push_raw(project, tmp_path / "store")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "tracker = 'neptune' is not a tracker" in done.stderr
    assert "wandb, mlflow, none" in done.stderr
    assert not (tmp_path / "store" / "artifacts").exists()


def test_a_failing_wandb_keeps_the_push_and_warns_once(
    project: Path, tmp_path: Path, wandb_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Online against a closed port: the real SDK fails the way it does with no network.
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    done = push_raw(project, tmp_path / "store", "--tracker", "wandb")
    assert done.returncode == 0, done.stderr
    assert "pushed lin/raw:v1" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, done.stderr
    assert "Task outputs and run records are not affected" in warnings[0]
    assert open_store(str(tmp_path / "store")).resolve("raw", "lin").label == "v1"
    assert "k" * 40 not in done.stderr + done.stdout
