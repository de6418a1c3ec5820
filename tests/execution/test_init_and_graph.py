"""`aeromancy init` scaffolds a project that runs at once; `aeromancy graph` draws one."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.store import open_store

if TYPE_CHECKING:
    from conftest import Project


def test_init_scaffold_runs_with_dev_right_away(
    tmp_path: Path, local_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    created = runner.invoke(main, ["init", "my-proj"])
    assert created.exit_code == 0, created.output
    root = tmp_path / "my-proj"
    assert sorted(p.name for p in root.iterdir()) == [".gitignore", "pipeline.py", "pyproject.toml"]
    assert '[tool.aeromancy]\nproject = "my-proj"' in (root / "pyproject.toml").read_text()

    monkeypatch.chdir(root)
    result = runner.invoke(main, ["--store", local_store_url, "run", "--dev"])
    assert result.exit_code == 0, result.output
    store = open_store(local_store_url)
    records = store.list_run_records("my-proj", namespace="dev")
    assert sorted(r["task"] for r in records) == ["generate", "summarize"]
    assert all(r["status"] == "succeeded" for r in records)

    again = runner.invoke(main, ["init", str(root)])
    assert again.exit_code == 2
    assert "already has pyproject.toml, pipeline.py, .gitignore" in again.stderr


def test_init_refuses_a_bad_project_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "x", "--name", "bad name"])
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_graph_text_dot_mermaid(local_project: Project) -> None:
    text = local_project.cli("graph")
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines() == [
        "ingest: (no inputs) -> raw (dataset)",
        "train: raw -> model (model)",
        "evaluate: raw, model -> report (artifact)",
    ]
    dot = local_project.cli("graph", "--format", "dot")
    assert '"artifact:raw" -> "task:train";' in dot.stdout
    assert '"task:train" -> "artifact:model";' in dot.stdout
    mermaid = local_project.cli("graph", "--format", "mermaid")
    assert mermaid.stdout.startswith("flowchart LR\n")
    assert mermaid.stdout.count("-->") == 6


def test_graph_writes_a_file(local_project: Project) -> None:
    target = local_project.root.parent / "g.dot"
    result = local_project.cli("graph", "--format", "dot", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("digraph aeromancy {")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")
def test_graph_png_with_graphviz(local_project: Project) -> None:
    target = local_project.root.parent / "g.png"
    result = local_project.cli("graph", "--format", "png", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_graph_png_needs_output_and_graphviz(
    local_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing_output = local_project.cli("graph", "--format", "png")
    assert missing_output.exit_code == 2
    assert "--format png needs -o FILE" in missing_output.stderr
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    no_dot = local_project.cli("graph", "--format", "png", "-o", str(tmp_path / "g.png"))
    assert no_dot.exit_code == 2
    assert "needs Graphviz's `dot`" in no_dot.stderr
    assert "install graphviz" in no_dot.stderr
