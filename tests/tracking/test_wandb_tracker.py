"""WandbTracker driven through the tracker protocol with the real wandb SDK, offline.

Every test reads back what the SDK wrote to the offline run's ``.wandb`` file (see
conftest.py), which is exactly what a later ``wandb sync`` uploads. No network is used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

from aeromancy.identity import RunIdentity
from aeromancy.store import open_store
from aeromancy.store.manifest import ArtifactVersion, FileEntry
from aeromancy.tracking.base import TaskRunInfo
from aeromancy.tracking.wandb import WandbTracker

IDENTITY = RunIdentity(
    git_commit="0123456789abcdef0123456789abcdef01234567",
    git_branch="main",
    git_remote="https://alice:s3cr3t-token@git.example.com/team/proj.git",
    git_message="Train with a smaller learning rate",
    image_id="sha256:" + "e" * 64,
)


def write_blob(store: Path, content: bytes) -> tuple[FileEntry, str]:
    """Write ``content`` as a content-addressed blob; return its entry stub and file URI."""
    digest = hashlib.sha256(content).hexdigest()
    blob = store / "blobs" / "sha256" / digest[:2] / digest
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    return FileEntry("", len(content), digest), blob.as_uri()


def make_version(
    store: Path, name: str, files: dict[str, bytes], *, version: int = 1, type_: str = "dataset"
) -> tuple[ArtifactVersion, dict[str, str]]:
    """Return a version whose blobs really exist under ``store``, and its blob URIs."""
    entries, uris = [], {}
    for path, content in files.items():
        stub, uri = write_blob(store, content)
        entries.append(FileEntry(path, stub.size, stub.sha256))
        uris[stub.sha256] = uri
    made = ArtifactVersion(
        project="proj",
        name=name,
        version=version,
        type=type_,
        files=tuple(entries),
        metadata={"rows": 3},
        created="2026-11-22T05:00:00Z",
        run_id="run-producer",
    )
    return made, uris


def info_for(task: str, run_id: str, inputs: tuple[ArtifactVersion, ...] = ()) -> TaskRunInfo:
    return TaskRunInfo(
        run_id=run_id,
        project="proj",
        task=task,
        group="invocation-42",
        config={"learning_rate": 0.01, "epochs": 3},
        tags=("nightly", "baseline"),
        identity=IDENTITY,
        inputs=inputs,
    )


def md5_b64(content: bytes) -> str:
    return base64.b64encode(hashlib.md5(content).digest()).decode()


@dataclass
class TrainRun:
    """One offline train run driven through the protocol, and what W&B recorded."""

    path: str | None
    recorded: Any
    raw: ArtifactVersion
    model: ArtifactVersion
    uris: dict[str, str]
    record: dict[str, Any]
    output: str


@pytest.fixture
def train_run(
    wandb_env: Path, tmp_path: Path, read_runs: Any, capfd: pytest.CaptureFixture[str]
) -> TrainRun:
    store = tmp_path / "store"
    raw, _ = make_version(store, "raw", {"data.csv": b"a,b\n1,2\n"}, version=4)
    model, uris = make_version(
        store, "model", {"model.txt": b"lr=0.01", "sub/weights.bin": b"\x00\x01"}, type_="model"
    )
    record = {"run_id": "run-train-1", "status": "succeeded", "environment": {"host": "h"}}

    run = WandbTracker().start(info_for("train", "run-train-1", inputs=(raw,)))
    run.log({"loss": 0.5}, step=0)
    run.log({"loss": 0.25}, step=1)
    run.log_outputs([model], uris)
    run.finish(record, succeeded=True)

    (recorded,) = read_runs(wandb_env / "wandb")
    out, err = capfd.readouterr()
    return TrainRun(run.path, recorded, raw, model, uris, record, out + err)


def test_offline_run_records_the_task_run(train_run: TrainRun) -> None:
    recorded = train_run.recorded
    assert train_run.path == "proj/run-train-1"
    assert (recorded.run_id, recorded.project) == ("run-train-1", "proj")
    assert recorded.job_type == "train"
    assert recorded.group == "invocation-42"
    assert recorded.tags == ["git/main", "nightly", "baseline"]
    assert recorded.notes == "Train with a smaller learning rate"
    assert recorded.git == {
        "commit": IDENTITY.git_commit,
        "remote_url": "https://***@git.example.com/team/proj.git",
    }
    ours = recorded.config["aeromancy"]
    assert recorded.config["learning_rate"] == 0.01
    assert recorded.config["epochs"] == 3
    assert ours["run_id"] == "run-train-1"
    assert ours["image_id"] == IDENTITY.image_id
    assert ours["inputs"] == [
        {
            "project": "proj",
            "name": "raw",
            "version": "v4",
            "ref": "proj/raw:v4",
            "digest": train_run.raw.digest,
            "wandb_alias": "aeromancy-v4",
        }
    ]
    assert [row["loss"] for row in recorded.history if "loss" in row] == [0.5, 0.25]
    assert "wandb" not in train_run.output.lower(), "W&B must stay quiet"


def test_outputs_become_artifacts_of_references(train_run: TrainRun) -> None:
    model, uris = train_run.model, train_run.uris
    (artifact,) = train_run.recorded.artifacts
    assert (artifact["name"], artifact["type"]) == ("model", "model")
    assert sorted(artifact["aliases"]) == ["aeromancy-v1", "latest"]
    meta = artifact["metadata"]["aeromancy"]
    assert meta["version"] == "model:v1"
    assert meta["digest"] == model.digest
    assert meta["run_id"] == "run-producer"
    assert meta["files"]["sub/weights.bin"]["sha256"] == hashlib.sha256(b"\x00\x01").hexdigest()
    assert artifact["metadata"]["rows"] == 3
    by_sha = {f.path: f.sha256 for f in model.files}
    assert set(artifact["entries"]) == {"model.txt", "sub/weights.bin"}
    for path, entry in artifact["entries"].items():
        assert entry["ref"] == uris[by_sha[path]]
        assert entry["ref"].startswith("file:///")
    # W&B checksummed the local blobs: the digest is the MD5 of the real content.
    assert artifact["entries"]["model.txt"]["digest"] == md5_b64(b"lr=0.01")
    assert artifact["entries"]["model.txt"]["size"] == len(b"lr=0.01")


def test_finish_attaches_the_record_and_environment(train_run: TrainRun) -> None:
    recorded = train_run.recorded
    files = recorded.directory / "files"
    assert recorded.summary["aeromancy"]["exit_code"] == 0
    assert recorded.summary["aeromancy"]["status"] == "succeeded"
    assert recorded.summary["aeromancy"]["environment"] == {"host": "h"}
    assert recorded.exit_code == 0
    assert {"aeromancy-run-record.json", "aeromancy-environment.json"} <= set(recorded.saved_files)
    assert json.loads((files / "aeromancy-run-record.json").read_text()) == train_run.record
    assert json.loads((files / "aeromancy-environment.json").read_text()) == {"host": "h"}


def test_s3_references_are_recorded_without_touching_the_network(
    wandb_env: Path, tmp_path: Path, read_runs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An endpoint nothing listens on: if the SDK tried to read or checksum the
    # object, the artifact could not be logged and the assertions below would fail.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    content = b"remote bytes"
    sha = hashlib.sha256(content).hexdigest()
    version = ArtifactVersion("proj", "remote", 2, "dataset", (FileEntry("r.bin", 12, sha),))
    uri = f"s3://no-such-bucket/prefix/blobs/sha256/{sha[:2]}/{sha}"

    run = WandbTracker().start(info_for("ingest", "run-ingest-1"))
    started = time.monotonic()
    run.log_outputs([version], {sha: uri})
    assert time.monotonic() - started < 5
    run.finish({}, succeeded=True)

    (recorded,) = read_runs(wandb_env / "wandb")
    (artifact,) = recorded.artifacts
    # Not checksummed: the URI itself is the digest (it names the sha256 of the content).
    assert artifact["entries"] == {"r.bin": {"ref": uri, "digest": uri, "size": 0}}
    assert artifact["metadata"]["aeromancy"]["files"]["r.bin"] == {"sha256": sha, "size": 12}


def test_failed_task_ends_with_exit_code_one(
    wandb_env: Path, read_runs: Any, tmp_path: Path
) -> None:
    run = WandbTracker().start(info_for("evaluate", "run-eval-1"))
    record = {
        "status": "failed",
        "started": "2026-11-22T05:00:00.000000+00:00",
        "ended": "2026-11-22T05:00:02.500000+00:00",
    }
    run.finish(record, succeeded=False)
    (recorded,) = read_runs(wandb_env / "wandb")
    assert recorded.exit_code == 1
    summary = recorded.summary["aeromancy"]
    assert (summary["succeeded"], summary["exit_code"], summary["status"]) == (False, 1, "failed")
    assert summary["duration_seconds"] == 2.5
    assert summary["started"] == record["started"]
    # Without an environment in the record, the tracker captures one itself.
    assert summary["environment"]["python"]["version"]


def test_parallel_task_runs_get_separate_runs(wandb_env: Path, read_runs: Any) -> None:
    tracker = WandbTracker()

    def one(task: str) -> None:
        run = tracker.start(info_for(task, f"run-{task}"))
        for step in range(5):
            run.log({f"{task}_metric": step}, step=step)
        run.finish({}, succeeded=True)

    threads = [threading.Thread(target=one, args=(task,)) for task in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    recorded = {run.job_type: run for run in read_runs(wandb_env / "wandb")}
    assert set(recorded) == {"a", "b", "c"}
    for task, run in recorded.items():
        assert run.run_id == f"run-{task}"
        assert [row[f"{task}_metric"] for row in run.history if f"{task}_metric" in row] == [
            0,
            1,
            2,
            3,
            4,
        ]


def test_unreachable_server_is_reported_once_and_the_run_continues_untracked(
    wandb_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Online mode against a closed port: the real SDK fails the way it does with no network.
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    store = tmp_path / "store"
    model, uris = make_version(store, "model", {"m.txt": b"m"})
    tracker = WandbTracker()
    assert tracker.mode == "online"

    first = tracker.start(info_for("train", "run-online-1"))
    first.log({"loss": 1.0})
    first.log_outputs([model], uris)
    first.finish({}, succeeded=True)
    started = time.monotonic()
    second = tracker.start(info_for("evaluate", "run-online-2"))
    second.finish({}, succeeded=True)

    assert first.path is None
    assert second.path is None
    assert time.monotonic() - started < 1, "after a failure, later runs do not retry W&B"
    _, err = capfd.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, err
    assert "wandb.init" in warnings[0]
    assert "run records are not affected" in warnings[0]
    assert "k" * 40 not in err


def test_disabled_mode_tracks_nothing(wandb_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = WandbTracker().start(info_for("train", "run-disabled"))
    run.log({"x": 1})
    run.finish({}, succeeded=True)
    assert run.path is None
    assert not (wandb_env / "wandb").exists()


def test_runs_dir_never_dirties_the_git_tree(
    tmp_path: Path, wandb_env: Path, monkeypatch: pytest.MonkeyPatch, read_runs: Any
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\n')
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    monkeypatch.delenv("WANDB_DIR")
    monkeypatch.chdir(project)

    run = WandbTracker().start(info_for("train", "run-in-project"))
    run.finish({}, succeeded=True)

    assert len(read_runs(project / "wandb")) == 1
    status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=all"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert status.stdout == ""


def test_task_parameter_named_aeromancy_keeps_its_value(wandb_env: Path, read_runs: Any) -> None:
    info = info_for("train", "run-clash")
    clash = TaskRunInfo(**{**info.__dict__, "config": {"aeromancy": "mine"}})
    WandbTracker().start(clash).finish({}, succeeded=True)
    (recorded,) = read_runs(wandb_env / "wandb")
    assert recorded.config["aeromancy"] == "mine"
    assert recorded.config["_aeromancy"]["run_id"] == "run-clash"


def test_outputs_published_to_a_real_store(
    store_url: str, wandb_env: Path, tmp_path: Path, read_runs: Any
) -> None:
    store = open_store(store_url)
    source = tmp_path / "model"
    (source / "nested").mkdir(parents=True)
    (source / "weights.bin").write_bytes(b"\x01" * 1000)
    (source / "nested" / "config.json").write_text('{"lr": 0.01}')
    published = store.publish("proj", "model", source, type="model", run_id="run-store-1")
    uris = {f.sha256: store.blob_uri(f.sha256) for f in published.files}

    run = WandbTracker().start(info_for("train", "run-store-1"))
    run.log_outputs([published], uris)
    run.finish({}, succeeded=True)

    (recorded,) = read_runs(wandb_env / "wandb")
    (artifact,) = recorded.artifacts
    assert artifact["name"] == "model"
    assert artifact["metadata"]["aeromancy"]["version"] == f"model:{published.label}"
    assert artifact["metadata"]["aeromancy"]["run_id"] == "run-store-1"
    entries = artifact["entries"]
    assert set(entries) == {"weights.bin", "nested/config.json"}
    for entry in published.files:
        ref = entries[entry.path]["ref"]
        assert ref == store.blob_uri(entry.sha256)
        assert ref.endswith(entry.sha256)
        if store_url.startswith("s3://"):
            assert ref.startswith(store_url + "/blobs/")
            assert entries[entry.path]["digest"] == ref
        else:
            assert ref.startswith("file:///")
            blob = Path(url2pathname(urlsplit(ref).path))
            assert entries[entry.path]["digest"] == md5_b64(blob.read_bytes())


def test_an_output_wandb_refuses_costs_only_that_artifact(
    wandb_env: Path, tmp_path: Path, read_runs: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    # "job" is a valid Aeromancy type but reserved by W&B: the real SDK raises.
    store = tmp_path / "store"
    job, job_uris = make_version(store, "schedule", {"s.txt": b"s"}, type_="job")
    model, model_uris = make_version(store, "model", {"m.txt": b"m"}, type_="model")
    tracker = WandbTracker()

    run = tracker.start(info_for("train", "run-refused-1"))
    run.log_outputs([job, model], {**job_uris, **model_uris})
    run.finish({"status": "succeeded"}, succeeded=True)
    later = tracker.start(info_for("evaluate", "run-refused-2"))
    later.finish({"status": "succeeded"}, succeeded=True)

    runs = {r.run_id: r for r in read_runs(wandb_env / "wandb")}
    assert set(runs) == {"run-refused-1", "run-refused-2"}, "later task runs are still tracked"
    first = runs["run-refused-1"]
    assert [a["name"] for a in first.artifacts] == ["model"]
    assert first.exit_code == 0
    assert "aeromancy-run-record.json" in first.saved_files
    warnings = [line for line in capfd.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "log artifact schedule" in warnings[0]
    assert "reserved" in warnings[0]
