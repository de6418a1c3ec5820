"""``aeromancy sync`` and online input declaration.

The W&B server cannot run here, so the online calls are tested against fakes at that
one boundary: ``FakeApi`` stands in for ``wandb.Api`` (``run``, ``artifact``,
``default_entity``) and ``FakeRun`` for a run's ``use_artifact`` / ``used_artifacts``
/ ``config``. Everything on our side of that boundary is real: the configs the fakes
serve are the ones the real SDK wrote for offline runs, read back from their files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.identity import RunIdentity
from aeromancy.store import open_store
from aeromancy.store.manifest import ArtifactVersion, FileEntry
from aeromancy.tracking import sync as wandb_sync
from aeromancy.tracking.base import TaskRunInfo
from aeromancy.tracking.wandb import FailureNotice, WandbTracker, declare_inputs
from aeromancy.tracking.wandb_setup import resolve_mode


@dataclass
class FakeArtifact:
    id: str
    path: str


@dataclass
class FakeRun:
    config: dict[str, Any]
    used: list[FakeArtifact] = field(default_factory=list)
    entity: str | None = "team"
    fail_on: set[str] = field(default_factory=set)

    def used_artifacts(self) -> list[FakeArtifact]:
        return list(self.used)

    def use_artifact(self, artifact: FakeArtifact | str) -> FakeArtifact:
        if isinstance(artifact, str):  # the SDK run's use_artifact takes a path
            if artifact in self.fail_on:
                raise ValueError(f"artifact {artifact} not found")
            artifact = FakeArtifact(f"id-{artifact}", artifact)
        self.used.append(artifact)
        return artifact


@dataclass
class FakeApi:
    runs: dict[str, FakeRun]
    artifacts: dict[str, FakeArtifact]
    default_entity: str | None = "team"

    def run(self, path: str) -> FakeRun:
        if path not in self.runs:
            raise ValueError(f"Could not find run {path}")
        return self.runs[path]

    def artifact(self, name: str) -> FakeArtifact:
        if name not in self.artifacts:
            raise ValueError(f"artifact {name} not found")
        return self.artifacts[name]


def version(name: str, number: int) -> ArtifactVersion:
    return ArtifactVersion("proj", name, number, "dataset", (FileEntry("f", 1, "0" * 64),))


def info(task: str, run_id: str, inputs: tuple[ArtifactVersion, ...]) -> TaskRunInfo:
    return TaskRunInfo(run_id, "proj", task, "g", {}, (), RunIdentity(), inputs)


def offline_config(
    task: str, run_id: str, inputs: tuple[ArtifactVersion, ...], read_runs: Any, runs_dir: Path
) -> dict[str, Any]:
    """Return the config the real SDK recorded for an offline run with these inputs."""
    WandbTracker().start(info(task, run_id, inputs)).finish({}, succeeded=True)
    (recorded,) = [r for r in read_runs(runs_dir) if r.run_id == run_id]
    return recorded.user_config


def test_link_inputs_declares_each_recorded_input_once(wandb_env: Path, read_runs: Any) -> None:
    runs_dir = wandb_env / "wandb"
    raw, model, missing = version("raw", 2), version("model", 1), version("lost", 5)
    train = offline_config("train", "run-train", (raw,), read_runs, runs_dir)
    evaluate = offline_config("evaluate", "run-eval", (raw, model, missing), read_runs, runs_dir)
    raw_art = FakeArtifact("A-raw", "team/proj/raw:aeromancy-v2")
    model_art = FakeArtifact("A-model", "team/proj/model:aeromancy-v1")
    api = FakeApi(
        runs={
            "team/proj/run-train": FakeRun(train),
            "team/proj/run-eval": FakeRun(evaluate, used=[model_art]),
        },
        artifacts={a.path: a for a in (raw_art, model_art)},
    )

    report = wandb_sync.link_inputs(
        api, ["proj/run-train", "team/proj/run-eval", "proj/run-never-synced"], "team"
    )

    assert report.linked == [
        ("team/proj/run-train", "proj/raw:v2"),
        ("team/proj/run-eval", "proj/raw:v2"),
    ]
    assert report.already_linked == [("team/proj/run-eval", "proj/model:v1")]
    assert report.missing_artifacts == [("team/proj/run-eval", "proj/lost:v5")]
    assert report.missing_runs == ["team/proj/run-never-synced"]
    assert api.runs["team/proj/run-train"].used == [raw_art]
    assert api.runs["team/proj/run-eval"].used == [model_art, raw_art]

    again = wandb_sync.link_inputs(api, ["proj/run-train", "team/proj/run-eval"], "team")
    assert again.linked == []
    assert len(again.already_linked) == 3


def test_pending_offline_runs_skips_synced_ones(wandb_env: Path, read_runs: Any) -> None:
    tracker = WandbTracker()
    for run_id in ("run-1", "run-2"):
        tracker.start(info("t", run_id, ())).finish({}, succeeded=True)
    runs_dir = wandb_env / "wandb"
    read_runs(runs_dir)  # waits until the SDK has written both runs
    pending = wandb_sync.pending_offline_runs(runs_dir)
    assert len(pending) == 2
    (log,) = pending[0].glob("run-*.wandb")
    log.with_name(log.name + ".synced").touch()  # what `wandb sync` leaves behind
    assert wandb_sync.pending_offline_runs(runs_dir) == pending[1:]


def test_online_start_declares_inputs_with_use_artifact() -> None:
    raw, lost = version("raw", 3), version("lost", 1)
    run = FakeRun({}, fail_on={"team/proj/lost:aeromancy-v1"})
    unlinked = declare_inputs(run, info("train", "r", (raw, lost)), FailureNotice())
    assert [a.path for a in run.used] == ["team/proj/raw:aeromancy-v3"]
    assert unlinked == ["proj/lost:v1"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "proj"\n')
    monkeypatch.chdir(root)
    return root


def test_sync_refuses_without_credentials(
    project: Path, wandb_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE")
    result = CliRunner().invoke(main, ["--store", str(project / "store"), "sync"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "W&B is offline" in result.output
    assert "WANDB_API_KEY" in result.output


def test_sync_links_the_inputs_of_recorded_runs(
    project: Path, wandb_env: Path, monkeypatch: pytest.MonkeyPatch, read_runs: Any
) -> None:
    raw = version("raw", 1)
    config = offline_config("train", "run-train", (raw,), read_runs, wandb_env / "wandb")
    store_dir = project.parent / "store"
    store = open_store(str(store_dir))
    store.put_run_record(
        "proj", "run-train", {"run_id": "run-train", "wandb_run": "proj/run-train"}
    )
    store.put_run_record("proj", "run-untracked", {"run_id": "run-untracked", "wandb_run": None})
    raw_art = FakeArtifact("A-raw", "team/proj/raw:aeromancy-v1")
    api = FakeApi(runs={"team/proj/run-train": FakeRun(config)}, artifacts={raw_art.path: raw_art})
    monkeypatch.setattr(wandb_sync, "open_api", lambda: api)
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_mode() == "online"

    result = CliRunner().invoke(main, ["--store", str(store_dir), "sync", "--no-upload"])

    assert result.exit_code == 0, result.output
    assert "linked proj/raw:v1 -> team/proj/run-train" in result.output
    assert "1 input(s) linked, 0 already linked" in result.output
    assert api.runs["team/proj/run-train"].used == [raw_art]
    assert "k" * 40 not in result.output
