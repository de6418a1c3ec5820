"""``aeromancy diff``: two real runs apart in config, input version, code and packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project

AEROMANCY = Path(sys.executable).with_name("aeromancy")


def site_with_package(root: Path, version: str) -> Path:
    """Return a directory on which Python finds an installed distribution demo-extra==version."""
    site = root / f"site-{version}"
    info = site / f"demo_extra-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: demo-extra\nVersion: {version}\n")
    return site


def run_in(project: Project, site: Path, *args: str) -> None:
    """Run ``aeromancy run --dev`` in a fresh interpreter that also sees ``site``."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [str(AEROMANCY), "--store", project.store_url, "run", "--dev", "--tracker", "none", *args],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_diff_names_config_input_code_package_metric_and_output_changes(
    project: Project, tmp_path: Path
) -> None:
    run_in(project, site_with_package(tmp_path, "1.0"))
    project.write("pipeline.py", (project.root / "pipeline.py").read_text() + "\n# tuned\n")
    project.commit("tune")
    args = ("--set", "prepare.rows=5", "--set", "train.lr=0.2")
    run_in(project, site_with_package(tmp_path, "2.0"), *args)
    first, second = project.records_of("train")

    found = json.loads(
        project.ok("diff", first["run_id"], second["run_id"], "--format", "json").stdout
    )

    assert found["config"] == [{"key": "lr", "a": 0.1, "b": 0.2}]
    [data] = found["inputs"]
    assert data["key"] == "data"
    assert data["a"] == f"data:dev1 {first['inputs'][0]['digest']}"
    assert data["b"] == f"data:dev2 {second['inputs'][0]['digest']}"
    assert found["code"]["a"] == first["git_commit"]
    assert found["code"]["b"] == second["git_commit"]
    assert found["code"]["files"] == ["pipeline.py"]
    assert found["python_packages"]["changed"] == [{"key": "demo-extra", "a": "1.0", "b": "2.0"}]
    assert found["python_packages"]["added"] == found["python_packages"]["removed"] == []
    assert {m["key"] for m in found["metrics"]} == {"accuracy", "loss"}
    assert [o["key"] for o in found["outputs"]] == ["model/model.json"]

    text = project.ok("diff", first["run_id"], second["run_id"]).stdout
    assert "  lr: 0.1 -> 0.2" in text
    assert "  ~ demo-extra 1.0 -> 2.0" in text
    assert "  file: pipeline.py" in text
    assert "  loss: 0.1 -> 0.2 (+0.1)" in text


def test_diff_of_a_run_with_itself_and_by_prefix(project: Project) -> None:
    project.ok("run", "--dev", "--tracker", "none")
    [train] = project.records_of("train")
    prefix = train["run_id"][:-3]
    text = project.ok("diff", prefix, train["run_id"]).stdout
    assert text.splitlines()[1] == "no differences"


def test_unknown_run_ids_exit_2_naming_what_exists(project: Project) -> None:
    project.ok("run", "--dev", "--tracker", "none")
    [train] = project.records_of("train")
    result = project.cli("diff", train["run_id"], "20991231-nope")
    assert result.exit_code == 2
    assert "no run 20991231-nope in project exp" in result.output
    assert train["run_id"] in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_diff_names_debian_package_python_and_image_changes(project: Project) -> None:
    project.ok("run", "--dev", "--tracker", "none", "--only", "prepare")
    [record] = project.records_of("prepare")
    environment = record["environment"]
    a = {
        **record,
        "run_id": "20261201-000001-aaaaaaaa",
        "image_id": "sha256:" + "1" * 64,
        "environment": {
            **environment,
            "python": {**environment["python"], "version": "3.11.7"},
            "debian_packages": {"libc6": "2.36-9", "curl": "7.88.1-10", "gone": "1.0"},
        },
    }
    b = {
        **a,
        "run_id": "20261201-000002-bbbbbbbb",
        "image_id": "sha256:" + "2" * 64,
        "environment": {
            **a["environment"],
            "python": {**environment["python"], "version": "3.12.1"},
            "debian_packages": {"libc6": "2.36-9+deb12u4", "curl": "7.88.1-10", "new": "2.0"},
        },
    }
    for made in (a, b):
        project.store().put_run_record("exp", made["run_id"], made, namespace="dev")

    found = json.loads(project.ok("diff", a["run_id"], b["run_id"], "--format", "json").stdout)

    assert found["debian_packages"] == {
        "added": [{"key": "new", "a": None, "b": "2.0"}],
        "removed": [{"key": "gone", "a": "1.0", "b": None}],
        "changed": [{"key": "libc6", "a": "2.36-9", "b": "2.36-9+deb12u4"}],
    }
    environment_changes = {c["key"]: (c["a"], c["b"]) for c in found["environment"]}
    assert environment_changes["Python"] == ("3.11.7", "3.12.1")
    assert environment_changes["image"] == (a["image_id"], b["image_id"])
    assert found["config"] == found["inputs"] == found["outputs"] == []
