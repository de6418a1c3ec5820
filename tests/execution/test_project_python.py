"""The task's child runs the project's interpreter, which needs none of Aeromancy's
dependencies: here a bare venv with nothing installed, named by AEROMANCY_PROJECT_PYTHON
(as the image does) or found through ``.pdm-python`` (as pdm records it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ProjectFactory

PIPELINE = """
import importlib.util
import sys

from aeromancy import task


@task(outputs=["where"])
def where(ctx):
    out = ctx.workdir / "where.txt"
    found = [name for name in ("click", "rich", "boto3") if importlib.util.find_spec(name)]
    out.write_text(f"{sys.executable}\\n{found}")
    ctx.save("where", out)
"""


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the python of a venv holding no packages at all (not even pip)."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


@pytest.mark.parametrize("how", ["env", "pdm-python"])
def test_the_task_runs_in_the_project_interpreter_without_our_dependencies(
    local_project_with: ProjectFactory, tmp_path: Path, bare_python: Path, how: str
) -> None:
    project = local_project_with(PIPELINE)
    env = {}
    if how == "env":
        env["AEROMANCY_PROJECT_PYTHON"] = str(bare_python)
    else:
        (project.root / ".pdm-python").write_text(f"{bare_python}\n")
    result = project.cli("run", "--dev", env=env)
    assert result.exit_code == 0, result.output
    store = project.store()
    version = store.resolve("where", "demo", namespace="dev")
    text = (store.materialize(version, tmp_path / "out") / "where.txt").read_text()
    assert text == f"{bare_python}\n[]"


def test_a_bad_project_python_is_refused_before_anything_runs(
    local_project_with: ProjectFactory, tmp_path: Path
) -> None:
    project = local_project_with(PIPELINE)
    missing = tmp_path / "no" / "python"
    result = project.cli("run", "--dev", env={"AEROMANCY_PROJECT_PYTHON": str(missing)})
    assert result.exit_code == 2, result.output
    assert f"AEROMANCY_PROJECT_PYTHON={missing} is not an executable Python" in result.stderr
    assert project.store_is_empty()
