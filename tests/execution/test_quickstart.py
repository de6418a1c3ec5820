"""The quickstart example runs end to end as a user would run it (a real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from aeromancy.store import open_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
AEROMANCY = Path(sys.executable).with_name("aeromancy")


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(AEROMANCY), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_quickstart_runs_skips_and_reports(tmp_path: Path) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, project)
    store_url = str(tmp_path / "store")
    first = run(project, "--store", store_url, "run", "--dev")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(" ran ") == 3

    store = open_store(store_url)
    report = store.resolve("report", "quickstart", namespace="dev")
    folder = store.materialize(report, tmp_path / "report")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.85
    [train] = [r for r in store.list_run_records("quickstart", "dev") if r["task"] == "train"]
    assert sorted(train["code"]["files"]) == ["logreg.py", "pipeline.py"]
    assert train["metrics"]["loss"] < 0.3

    second = run(project, "--store", store_url, "run", "--dev")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("skipped (up to date)") == 3

    lineage = run(project, "--store", store_url, "lineage", "report")
    assert "quickstart/model:dev1" in lineage.stdout
    assert "quickstart/dataset:dev1" in lineage.stdout
