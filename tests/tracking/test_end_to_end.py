"""A three-task pipeline run with ``aeromancy run --dev --tracker wandb``, W&B offline.

The run is a real subprocess (so process exit flushes W&B as it does for users) in a
real git repository; afterwards every W&B run is read back from its ``.wandb`` file
and checked against Aeromancy's own run records. No network is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aeromancy.store import open_store

pytest.importorskip("aeromancy.execution.executor", reason="needs the executor")

AEROMANCY = Path(sys.executable).with_name("aeromancy")
SECRET = "sk-e2e-4b1f9d0c7a2e-never-store-me"
PASSTHROUGH_SECRET = "pt-e2e-8c3a5f1e6d90-passthrough-value"
REMOTE_TOKEN = "glcbt-e2e-5d2c81f0-remote-token"  # as GitLab CI puts in its remote URL

PIPELINE = """\
import hashlib
import os
import sys

from aeromancy import Context, task


@task(outputs={"raw": "dataset"})
def ingest(ctx: Context) -> None:
    # Proves the secrets were in the task's environment, without storing them.
    seen = "".join(os.environ.get(n, "") for n in ("AWS_SECRET_ACCESS_KEY", "E2E_PASSTHROUGH"))
    folder = ctx.workdir / "raw"
    folder.mkdir()
    (folder / "rows.csv").write_text("x\\n1\\n2\\n3\\n")
    (folder / "seen.txt").write_text(hashlib.sha256(seen.encode()).hexdigest())
    print("ingest wrote 3 rows")
    print("ingest warns on stderr", file=sys.stderr)
    ctx.save("raw", folder)


@task(inputs=["raw"], outputs={"model": "model"})
def train(ctx: Context, epochs: int = 2, marker: str = "") -> None:
    rows = (ctx.load("raw") / "rows.csv").read_text().split()[1:]
    for epoch in range(epochs):
        ctx.log({"loss": 1.0 / (epoch + 1)}, step=epoch)
    out = ctx.workdir / "model.txt"
    out.write_text(f"rows={len(rows)} epochs={epochs}")
    ctx.save("model", out, metadata={"epochs": epochs})


@task(inputs=["raw", "model"], outputs=["report"])
def evaluate(ctx: Context) -> None:
    model = (ctx.load("model") / "model.txt").read_text()
    ctx.log({"accuracy": 0.9})
    out = ctx.workdir / "report.md"
    out.write_text(f"model: {model}")
    ctx.save("report", out)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Return a committed git repository holding a three-task Aeromancy project."""
    root = tmp_path / "e2e"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "e2e"\nversion = "0.1.0"\n\n[tool.aeromancy]\nproject = "e2e"\n'
    )
    (root / "pipeline.py").write_text(PIPELINE)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "E2E pipeline\n\nA longer body."], check=True)
    remote = f"https://gitlab-ci-token:{REMOTE_TOKEN}@git.example.com/team/e2e.git"
    subprocess.run([*git, "remote", "add", "origin", remote], check=True)
    return root


@pytest.fixture
def run_env(wandb_env: Path, tmp_path: Path) -> dict[str, str]:
    """Return the environment of the aeromancy subprocess: W&B offline, secrets set."""
    return {
        **os.environ,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "E2E_PASSTHROUGH": PASSTHROUGH_SECRET,
        "COLUMNS": "200",
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


def test_every_task_run_is_recorded_in_wandb(
    project: Path, tmp_path: Path, run_env: dict[str, str], wandb_env: Path, read_runs: Any
) -> None:
    store_url = str(tmp_path / "store")
    done = aeromancy(
        project,
        run_env,
        *("--store", store_url, "run", "--dev", "--tracker", "wandb"),
        *("--tags", "nightly,e2e", "--set", "train.epochs=4"),
    )
    assert done.returncode == 0, done.stderr

    store = open_store(store_url)
    records = {r["task"]: r for r in store.list_run_records("e2e", "dev")}
    runs = {r.job_type: r for r in read_runs(wandb_env / "wandb")}
    assert set(records) == set(runs) == {"ingest", "train", "evaluate"}
    groups = {r.group for r in runs.values()}
    assert len(groups) == 1
    assert groups == {records["train"]["group"]}

    for task, record in records.items():
        run = runs[task]
        assert record["wandb_run"] == f"e2e/{run.run_id}"
        assert run.project == "e2e"
        assert run.config["aeromancy"]["run_id"] == record["run_id"]
        assert run.tags == ["git/main", "nightly", "e2e"]
        assert run.notes == "E2E pipeline"
        assert run.git["commit"] == head_commit(project)
        assert run.git["remote_url"] == "https://***@git.example.com/team/e2e.git"
        assert record["git_remote"] == run.git["remote_url"]
        assert run.exit_code == 0
        assert run.summary["aeromancy"]["status"] == record["status"]
        recorded_inputs = {(i["name"], i["version"], i["digest"]) for i in _inputs(run)}
        assert recorded_inputs == {_record_input(entry) for entry in record["inputs"]}
        _check_outputs(run, record, store)
        saved = json.loads((run.directory / "files" / "aeromancy-run-record.json").read_text())
        assert saved["run_id"] == record["run_id"]
        assert saved["environment"]["python_packages"]["wandb"]

    output = (runs["ingest"].directory / "files" / "aeromancy-output.log").read_text()
    assert "ingest wrote 3 rows\n" in output
    assert "ingest warns on stderr\n" in output
    assert "aeromancy-output.log" in runs["ingest"].saved_files
    assert records["ingest"]["log"] == hashlib.sha256(output.encode()).hexdigest()
    assert runs["train"].config["epochs"] == 4
    assert [row["loss"] for row in runs["train"].history if "loss" in row] == [1, 0.5, 1 / 3, 0.25]
    assert {i["name"] for i in _inputs(runs["evaluate"])} == {"raw", "model"}


def _inputs(run: Any) -> list[dict[str, Any]]:
    return list(run.config["aeromancy"]["inputs"])


def _record_input(entry: dict[str, Any]) -> tuple[str, str, str]:
    """Return (name, version label, digest) of an input as the executor's record lists it."""
    return str(entry["name"]), str(entry["label"]), str(entry["digest"])


def _check_outputs(run: Any, record: dict[str, Any], store: Any) -> None:
    assert len(run.artifacts) == len(record["outputs"]) == 1
    (artifact,) = run.artifacts
    meta = artifact["metadata"]["aeromancy"]
    version = store.resolve(
        f"{artifact['name']}:{meta['version'].partition(':')[2]}", "e2e", namespace="dev"
    )
    assert meta["digest"] == version.digest
    assert meta["run_id"] == record["run_id"]
    assert f"aeromancy-{version.label}" in artifact["aliases"]
    assert {path: e["ref"] for path, e in artifact["entries"].items()} == {
        f.path: store.blob_uri(f.sha256) for f in version.files
    }


def _all_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def test_secrets_in_the_environment_are_stored_nowhere(
    project: Path, tmp_path: Path, run_env: dict[str, str], wandb_env: Path, read_runs: Any
) -> None:
    store_url = str(tmp_path / "store")
    marker = "config-marker-71c2"  # a value that must be stored: proves the search finds things
    done = aeromancy(
        project,
        run_env,
        *("--store", store_url, "--debug", "run", "--dev", "--tracker", "wandb"),
        *("--extra-env-var", "E2E_PASSTHROUGH", "--set", f"train.marker={marker}"),
    )
    assert done.returncode == 0, done.stderr
    read_runs(wandb_env / "wandb")

    store = open_store(store_url)
    raw = store.resolve("raw", "e2e", namespace="dev")
    seen = (store.materialize(raw, tmp_path / "raw") / "seen.txt").read_text()
    both = SECRET + PASSTHROUGH_SECRET
    assert seen == hashlib.sha256(both.encode()).hexdigest(), "the task did not see the secrets"

    roots = [tmp_path / "store", wandb_env, Path(os.environ["AEROMANCY_CACHE"]), project]
    roots += [
        Path(os.environ[n]) for n in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR")
    ]
    # The project's .git/config holds the remote URL with its token: the user put it there.
    files = [f for f in _all_files(*roots) if project / ".git" not in f.parents]
    assert any(marker.encode() in f.read_bytes() for f in files if f.suffix == ".json")
    assert any(marker.encode() in f.read_bytes() for f in files if f.suffix == ".wandb")
    for secret in (SECRET, PASSTHROUGH_SECRET, REMOTE_TOKEN):
        leaks = [str(f) for f in files if secret.encode() in f.read_bytes()]
        assert leaks == [], f"secret found in {leaks}"
        assert secret not in done.stdout
        assert secret not in done.stderr
