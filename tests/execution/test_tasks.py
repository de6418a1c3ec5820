"""The @task decorator, config introspection, --set parsing and task module loading."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aeromancy import Context, InvalidName, NotFound, UsageError, task
from aeromancy.errors import GraphError
from aeromancy.tasks import SPEC_ATTRIBUTE, TaskSpec, load_tasks


def spec_of(fn: Any) -> TaskSpec:
    spec = getattr(fn, SPEC_ATTRIBUTE)
    assert isinstance(spec, TaskSpec)
    return spec


def test_decorator_records_inputs_outputs_and_config() -> None:
    @task(inputs=["raw", "other/labels"], outputs={"model": "model"})
    def train(ctx: Context, learning_rate: float = 0.1, epochs: int = 3) -> None:
        pass

    spec = spec_of(train)
    assert spec.name == "train"
    assert spec.inputs == ("raw", "other/labels")
    assert dict(spec.outputs) == {"model": "model"}
    assert dict(spec.defaults) == {"learning_rate": 0.1, "epochs": 3}


def test_output_list_means_type_artifact() -> None:
    @task(outputs=["report"])
    def evaluate(ctx: Context) -> None:
        pass

    assert dict(spec_of(evaluate).outputs) == {"report": "artifact"}


def test_decorated_function_stays_callable() -> None:
    @task(outputs=["x"])
    def double(ctx: object, n: int = 2) -> int:
        return n * 2

    assert double(None, n=4) == 8


@pytest.mark.parametrize("bad", ["", "-x", "a b", "../up"])
def test_bad_output_name_is_refused(bad: str) -> None:
    with pytest.raises(InvalidName):
        task(outputs=[bad])


def test_bad_input_project_is_refused() -> None:
    with pytest.raises(InvalidName):
        task(inputs=["bad project/raw"])


def test_string_instead_of_list_is_refused() -> None:
    with pytest.raises(UsageError, match="list of names"):
        task(inputs="raw")


def test_config_parameter_without_default_is_refused() -> None:
    with pytest.raises(UsageError, match="needs a default"):

        @task()
        def t(ctx: Context, n: int) -> None:
            pass


def test_config_default_of_unsupported_type_is_refused() -> None:
    with pytest.raises(UsageError, match="config defaults are"):

        @task()
        def t(ctx: Context, where: Path = Path(".")) -> None:
            pass


def test_task_without_ctx_is_refused() -> None:
    with pytest.raises(UsageError, match="context as its first parameter"):

        @task()
        def t() -> None:
            pass


PIPELINE = """
from aeromancy import task
import helpers

@task(outputs=["a"])
def first(ctx, n: int = helpers.N):
    pass

@task(inputs=["a"], outputs=["b"])
def second(ctx):
    pass
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "helpers.py").write_text("N = 4\n")
    return tmp_path


def test_load_tasks_by_path_sees_edits(tmp_path: Path) -> None:
    root = _project(tmp_path)
    specs = load_tasks("pipeline.py", root)
    assert sorted(specs) == ["first", "second"]
    assert specs["first"].defaults["n"] == 4
    (root / "helpers.py").write_text("N = 9\n")
    assert load_tasks("pipeline.py", root)["first"].defaults["n"] == 9


def test_load_tasks_by_dotted_name(tmp_path: Path) -> None:
    package = tmp_path / "src" / "mypkg_dotted"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "flow.py").write_text(PIPELINE.replace("import helpers", "from . import helpers"))
    (package / "helpers.py").write_text("N = 3\n")
    specs = load_tasks("mypkg_dotted.flow", tmp_path)
    assert specs["first"].defaults["n"] == 3


def test_missing_module_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_tasks("nothere.py", tmp_path)
    with pytest.raises(NotFound):
        load_tasks("no_such_module_anywhere", tmp_path)


def test_module_without_tasks_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "empty_pipeline.py").write_text("X = 1\n")
    with pytest.raises(NotFound, match="defines no tasks"):
        load_tasks("empty_pipeline.py", tmp_path)


def test_module_that_raises_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(UsageError, match=r"cannot load task module broken\.py: RuntimeError: boom"):
        load_tasks("broken.py", tmp_path)


def test_two_tasks_with_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "other_mod.py").write_text(
        "from aeromancy import task\n@task(outputs=['z'])\ndef first(ctx):\n    pass\n"
    )
    source = PIPELINE + textwrap.dedent(
        """
        import other_mod
        again = other_mod.first
        """
    )
    (tmp_path / "pipeline.py").write_text(source)
    (tmp_path / "helpers.py").write_text("N = 1\n")
    with pytest.raises(GraphError, match="two tasks are named 'first'"):
        load_tasks("pipeline.py", tmp_path)


def test_fast_config_reading_matches_inspect() -> None:
    from aeromancy.tasks import _checked_config_defaults, _plain_config_defaults

    def positional(ctx: Context, a: int = 1, b: str = "x") -> None:
        pass

    def keyword_only(ctx: Context, /, a: float = 0.5, *, b: list[int] | None = None) -> None:
        pass

    def no_config(ctx: Context) -> None:
        pass

    for fn in (positional, keyword_only, no_config):
        assert _plain_config_defaults(fn) == _checked_config_defaults(fn)

    def missing(ctx: Context, a: int, b: int = 2) -> None:
        pass

    assert _plain_config_defaults(missing) is None


def test_an_edit_of_the_same_size_in_the_same_second_runs_the_new_code(tmp_path: Path) -> None:
    # The compiled code is cached by the source's digest, never by its mtime and size.
    root = tmp_path / "proj"
    root.mkdir()
    module = root / "flow.py"
    module.write_text("from aeromancy import task\n\n@task()\ndef one(ctx, n=1): ...\n")
    stamp = module.stat().st_mtime_ns
    assert load_tasks("flow.py", root)["one"].defaults["n"] == 1
    module.write_text("from aeromancy import task\n\n@task()\ndef one(ctx, n=2): ...\n")
    os.utime(module, ns=(stamp, stamp))
    assert load_tasks("flow.py", root)["one"].defaults["n"] == 2
    assert load_tasks("flow.py", root)["one"].defaults["n"] == 2  # from the cache now
