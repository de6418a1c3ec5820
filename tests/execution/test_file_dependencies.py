"""File dependencies: project files a task reads make it stale when they change."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project, ProjectFactory

READS_DATA = """\
from aeromancy import Context, task


@task(outputs=["summary"])
def summarise(ctx: Context) -> None:
    rows = open("data/raw.csv").read().splitlines()
    scratch = ctx.workdir / "scratch.txt"
    scratch.write_text("temporary")
    scratch.read_text()
    out = ctx.workdir / "summary.txt"
    out.write_text(str(len(rows)))
    ctx.save("summary", out)
"""

DECLARES_DIRECTORY = """\
import subprocess

from aeromancy import Context, task


@task(outputs=["listing"], files=["conf/"])
def native(ctx: Context) -> None:
    # A child process reads the files: no audit event reaches this interpreter.
    text = subprocess.run(["cat", "conf/a.yaml"], capture_output=True, text=True).stdout
    out = ctx.workdir / "listing.txt"
    out.write_text(text)
    ctx.save("listing", out)
"""


def _summary_row(output: str, task: str) -> str:
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) >= 3 and cells[0] == task:
            return " ".join(cells[1:])
    raise AssertionError(f"no row for {task} in:\n{output}")


def _data_project(factory: ProjectFactory) -> Project:
    project = factory(READS_DATA)
    project.write("data/raw.csv", "a,b\n1,2\n")
    project.commit("data")
    return project


def test_changed_data_file_makes_the_task_stale_with_the_reason(
    project_with: ProjectFactory,
) -> None:
    project = _data_project(project_with)
    assert project.cli("run", "--dev").exit_code == 0
    [record] = project.records_of("summarise")
    assert set(record["files"]) == {"data/raw.csv"}
    assert "skipped" in _summary_row(project.cli("run", "--dev").stdout, "summarise")

    project.write("data/raw.csv", "a,b\n1,2\n3,4\n")
    listing = project.cli("list", "--dev")
    assert listing.exit_code == 0, listing.output
    assert "file data/raw.csv changed" in listing.stdout
    rerun = project.cli("run", "--dev")
    assert rerun.exit_code == 0, rerun.output
    assert "ran" in _summary_row(rerun.stdout, "summarise")
    assert "file data/raw.csv changed" in _summary_row(rerun.stdout, "summarise")
    assert len(project.records_of("summarise")) == 2


def test_file_written_in_the_workdir_is_not_a_dependency(project_with: ProjectFactory) -> None:
    project = _data_project(project_with)
    assert project.cli("run", "--dev").exit_code == 0
    [record] = project.records_of("summarise")
    assert list(record["files"]) == ["data/raw.csv"]  # not scratch.txt, not pipeline.py
    assert "skipped" in _summary_row(project.cli("run", "--dev").stdout, "summarise")


def test_declared_directory_changed_makes_the_task_stale(
    local_project_with: ProjectFactory,
) -> None:
    project = local_project_with(DECLARES_DIRECTORY)
    project.write("conf/a.yaml", "lr: 0.1\n")
    project.commit("conf")
    assert project.cli("run", "--dev").exit_code == 0
    [record] = project.records_of("native")
    assert set(record["files"]) == {"conf/a.yaml"}
    assert "skipped" in _summary_row(project.cli("run", "--dev").stdout, "native")

    project.write("conf/b.yaml", "extra: 1\n")  # a new file in the declared directory
    listing = project.cli("list", "--dev")
    assert "file conf/b.yaml changed" in listing.stdout
    assert "ran" in _summary_row(project.cli("run", "--dev").stdout, "native")

    project.write("conf/a.yaml", "lr: 0.01\n")
    assert "file conf/a.yaml changed" in project.cli("list", "--dev").stdout
    assert "ran" in _summary_row(project.cli("run", "--dev").stdout, "native")
    assert "skipped" in _summary_row(project.cli("run", "--dev").stdout, "native")


def test_declared_file_outside_the_project_is_refused(local_project_with: ProjectFactory) -> None:
    project = local_project_with(
        """\
        from aeromancy import Context, task


        @task(outputs=["x"], files=["../secrets.txt"])
        def escape(ctx: Context) -> None:
            pass
        """
    )
    result = project.cli("run", "--dev")
    assert result.exit_code == 2, result.output
    assert "must be a path inside the project" in result.output
    assert project.store_is_empty()
