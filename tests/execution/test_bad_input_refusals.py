"""Bad input is refused with exit 2 and one line, before anything is written.

Real CLI runs in a real git project (tests/executor/conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.store import open_store

if TYPE_CHECKING:
    from conftest import Project, ProjectFactory


def one_line_refusal(result: object, message: str) -> None:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    stderr = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(stderr) == 1, stderr
    assert message in stderr[0]


TWICE = """
from aeromancy import task

@task(outputs=["model"])
def train(ctx):
    ctx.save("model", ctx.workdir)

@task(outputs=["other"])
def train(ctx):
    ctx.save("other", ctx.workdir)
"""

BAD_TYPE = """
from aeromancy import task

@task(outputs={"model": "a model!"})
def train(ctx):
    ctx.save("model", ctx.workdir)
"""


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (TWICE, "two tasks are named 'train'"),
        (BAD_TYPE, "invalid output type name 'a model!'"),
    ],
    ids=["same-name-twice", "invalid-output-type"],
)
@pytest.mark.parametrize("command", [["list", "--dev"], ["run", "--dev"]])
def test_a_bad_task_module_is_refused_before_anything_runs(
    project_with: ProjectFactory, pipeline: str, message: str, command: list[str]
) -> None:
    project = project_with(pipeline)

    result = project.cli(*command)

    one_line_refusal(result, message)
    assert project.store_is_empty()


def test_an_artifact_name_too_long_for_the_store_is_refused_before_any_blob(
    project: Project,
) -> None:
    result = project.cli("push", "x" * 300, "README.md")

    one_line_refusal(result, "is 300 characters long")
    assert open_store(project.store_url).backend.list_prefix("") == []


def test_graph_does_not_overwrite_a_file_without_force(local_project: Project) -> None:
    before = (local_project.root / "pipeline.py").read_text()

    refused = local_project.cli("graph", "-o", "pipeline.py")

    one_line_refusal(refused, "pipeline.py already exists")
    assert (local_project.root / "pipeline.py").read_text() == before
    forced = local_project.cli("graph", "-o", "graph.txt", "--force")
    assert forced.exit_code == 0, forced.output
    assert "ingest" in (local_project.root / "graph.txt").read_text()


def test_a_relative_store_is_the_same_directory_for_push_and_run_anywhere_in_the_project(
    local_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = local_project.root / "notebooks"
    sub.mkdir()
    monkeypatch.chdir(sub)
    pushed = CliRunner().invoke(main, ["--store", "rel-store", "push", "readme", "../README.md"])
    assert pushed.exit_code == 0, pushed.output
    monkeypatch.chdir(local_project.root)
    ran = CliRunner().invoke(main, ["--store", "rel-store", "run", "--dev"])
    assert ran.exit_code == 0, ran.output

    store = open_store(local_project.root / "rel-store")
    assert [v.name for v in store.list_artifacts("demo")] == ["readme"]
    assert len(store.list_run_ids("demo", namespace="dev")) == 3
    assert not (sub / "rel-store").exists()
    assert os.path.isdir(local_project.root / "rel-store" / "blobs")


def test_a_symlink_loop_in_a_pushed_directory_exits_2(project: Project) -> None:
    data = project.root / "data"
    data.mkdir()
    (data / "f.txt").write_text("x")
    (data / "a").symlink_to(data / "b")
    (data / "b").symlink_to(data / "a")

    result = project.cli("push", "data", "data")

    one_line_refusal(result, "Too many levels of symbolic links")
    assert open_store(project.store_url).backend.list_prefix("") == []
    assert Path(project.root / "data" / "f.txt").exists()
