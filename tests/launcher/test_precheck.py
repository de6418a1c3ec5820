"""Tracked-run requests refused on the host from the task module's source, before any build.

The pipelines import a module the host does not have, so a refusal proves the module
was read, not imported; and Docker points at a socket where no engine answers, so a
refusal with exit 2 (not 3) proves nothing reached the image step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aeromancy.cli import main
from aeromancy.errors import UsageError
from aeromancy.launcher.engine import docker_client
from aeromancy.launcher.precheck import read_task_module

ProjectFactory = Callable[..., Path]

HEAVY_PIPELINE = """\
import aeromancy_test_absent_dependency  # only the image has it

from aeromancy import Context, task
from stages import clean


@task(outputs=["raw"])
def ingest(ctx: Context, rows: int = 3, source: str = "local", limit: int | None = 3) -> None:
    ...


@task(inputs=["raw"], outputs=["model"])
def train(ctx: Context, *, lr: float = 0.1, layers: list = [1, 2]) -> None:
    ...
"""

STAGES = """\
import aeromancy


@aeromancy.task(outputs=["tidy"])
def clean(ctx, threshold=0.5):
    ...


@aeromancy.task(outputs=["unused"])
def not_imported(ctx):
    ...
"""


@pytest.fixture
def heavy_project(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Path]:
    """Yield a committed project whose tasks need a dependency the host lacks."""
    root = make_project(name="heavy", pipeline=HEAVY_PIPELINE, files={"stages.py": STAGES})
    monkeypatch.chdir(root)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    docker_client.cache_clear()
    yield root
    docker_client.cache_clear()


def tracked(*args: str) -> Result:
    """Invoke ``aeromancy run ARGS`` (tracked) in the current directory."""
    return CliRunner().invoke(main, ["run", *args])


def refusal(result: Result) -> str:
    """Return the one error line of a run refused with exit 2."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_tasks_are_read_from_source_following_project_imports(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(HEAVY_PIPELINE)
    (tmp_path / "stages.py").write_text(STAGES)
    declared = read_task_module("pipeline.py", tmp_path)
    assert declared is not None
    assert {name: found.defaults for name, found in declared.tasks.items()} == {
        "ingest": {"rows": 3, "source": "local", "limit": 3},
        "train": {"lr": 0.1, "layers": [1, 2]},
        "clean": {"threshold": 0.5},
    }
    assert declared.tasks["ingest"].annotated == {"rows", "source", "limit"}
    assert declared.tasks["clean"].annotated == set()
    assert "aeromancy_test_absent_dependency" not in declared.maybe  # `import x` binds no task


def test_tasks_made_by_calling_task_are_left_to_the_container(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(
        "from aeromancy import task\n\ndef f(ctx):\n    ...\n\ng = task(outputs=['x'])(f)\n"
    )
    assert read_task_module("pipeline.py", tmp_path) is None


def test_names_imported_from_outside_the_project_may_be_tasks(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text("from shared_tasks import prepare as p\n")
    declared = read_task_module("pipeline.py", tmp_path)
    assert declared is not None
    assert not declared.tasks
    assert declared.maybe == {"prepare"}
    assert read_task_module("installed.module", tmp_path) is None  # not in the project


def test_dotted_module_under_src_is_read(tmp_path: Path) -> None:
    (tmp_path / "src" / "flows").mkdir(parents=True)
    (tmp_path / "src" / "flows" / "__init__.py").write_text("")
    (tmp_path / "src" / "flows" / "main.py").write_text(
        "from aeromancy import task as step\n\n@step()\ndef go(ctx, n=1):\n    ...\n"
    )
    declared = read_task_module("flows.main", tmp_path)
    assert declared is not None
    assert declared.tasks["go"].defaults == {"n": 1}


def test_syntax_error_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text("def broken(:\n")
    with pytest.raises(UsageError, match=r"cannot load task module pipeline\.py: SyntaxError"):
        read_task_module("pipeline.py", tmp_path)


def test_only_typo_is_refused_before_any_build(heavy_project: Path) -> None:
    line = refusal(tracked("--only", "trian"))
    assert line == "error: --only names unknown task trian (tasks: clean, ingest, train)"


def test_set_of_unknown_task_or_parameter_is_refused(heavy_project: Path) -> None:
    line = refusal(tracked("--set", "ingset.rows=4"))
    assert "--set ingset.rows: unknown task 'ingset'" in line
    line = refusal(tracked("--set", "ingest.row=4"))
    assert (
        "--set ingest.row: task ingest has no parameter 'row' (parameters: limit, rows, source)"
        in line
    )
    line = refusal(tracked("--set", "clean.threshold=high"))
    assert "--set clean.threshold=high: not a valid float" in line


def test_set_of_a_task_only_leaves_out_is_refused(heavy_project: Path) -> None:
    line = refusal(tracked("--only", "ingest", "--set", "train.lr=0.5"))
    assert "--set names task train, which --only leaves out" in line


def test_missing_module_names_the_host_path(heavy_project: Path) -> None:
    line = refusal(tracked("pipelines/main.py"))
    assert f"task module pipelines/main.py not found under {heavy_project.resolve()}" in line
    assert "/app" not in line


def test_a_valid_request_goes_on_to_the_image(heavy_project: Path) -> None:
    # limit's annotation (int | None), not its default, says it takes null: the host
    # leaves the value of an annotated parameter to the check in the container.
    result = tracked(
        "--only", "ingest,train", "--set", "train.lr=0.5", "--set", "ingest.limit=null"
    )
    assert result.exit_code == 3  # past the checks: the (absent) Docker engine is next
    assert "no Docker engine answers" in result.output
