"""Plans that cannot run are refused with exit 2, one line, and nothing written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Project, ProjectFactory

CYCLE = """
from aeromancy import task

@task(inputs=["b"], outputs=["a"])
def make_a(ctx):
    pass

@task(inputs=["a"], outputs=["b"])
def make_b(ctx):
    pass
"""

UNKNOWN_INPUT = """
from aeromancy import task

@task(inputs=["nowhere"], outputs=["a"])
def make_a(ctx):
    pass
"""

DUPLICATE = """
from aeromancy import task

@task(outputs=["a"])
def first(ctx):
    pass

@task(outputs=["a"])
def second(ctx):
    pass
"""


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (CYCLE, "the task graph has a cycle: make_"),
        (UNKNOWN_INPUT, "no task produces and the store lacks: nowhere"),
        (DUPLICATE, "artifact 'a' is produced by both first and second"),
    ],
    ids=["cycle", "unknown-input", "duplicate-producer"],
)
def test_bad_graph_exits_2_and_writes_nothing(
    project_with: ProjectFactory, pipeline: str, message: str
) -> None:
    project = project_with(pipeline)
    result = project.cli("run", "--dev")
    assert result.exit_code == 2, result.output
    assert len(error_lines(result.stderr)) == 1
    assert message in result.stderr
    assert project.store_is_empty()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "nope.x=1"], "unknown task 'nope'"),
        (["--set", "train.nope=1"], "task train has no parameter 'nope'"),
        (["--set", "train.scale=fast"], "train.scale=fast: not a valid float"),
        (["--set", "ingest.rows=1.5"], "not a valid int"),
        (["--set", "train.scale"], "expected TASK.PARAM=VALUE"),
        (["--only", "nope"], "--only names unknown task nope"),
        (["--only", "train", "--set", "ingest.rows=3"], "which --only leaves out"),
        (["--artifact-override", "model:dev1"], "task train produces it in this run"),
        (["--artifact-override", "model"], "expected NAME:vN"),
        (["--only", "train"], "no task produces and the store lacks: raw"),
        (["--tracker", "bogus"], "Invalid value for '--tracker'"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(
    project: Project, args: list[str], message: str
) -> None:
    result = project.cli("run", "--dev", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert project.store_is_empty()


def test_unparsable_task_module_exits_2(project_with: ProjectFactory) -> None:
    project = project_with(
        "from aeromancy import task\n@task(outputs=['x'])\ndef t(ctx, n):\n  pass\n"
    )
    result = project.cli("run", "--dev")
    assert result.exit_code == 2, result.output
    assert "config parameter 'n' needs a default value" in result.stderr
    assert project.store_is_empty()


def test_tracked_run_outside_a_container_is_refused(project: Project) -> None:
    result = project.cli("run")
    assert result.exit_code == 2, result.output
    assert len(error_lines(result.stderr)) == 1
    assert project.store_is_empty()
