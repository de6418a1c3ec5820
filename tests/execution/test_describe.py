"""Planning reads the task module's description from a child of the project's interpreter.

Aeromancy's own process never imports the task module, and a run whose code identity is
unchanged imports it nowhere: the description comes from the cache. Real CLI runs in
real git projects; the project's interpreter is a real venv holding a package that
Aeromancy's environment lacks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import aeromancy
from aeromancy.cache_files import cache_path

if TYPE_CHECKING:
    from conftest import Project, ProjectFactory

AEROMANCY = str(Path(sys.executable).parent / "aeromancy")


def make_venv(where: Path) -> Path:
    """Return the site-packages of a new venv at ``where`` with nothing installed."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return Path(site)


@pytest.fixture(scope="module")
def heavy_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the python of a venv whose only package, ``heavydep``, Aeromancy's lacks."""
    venv = tmp_path_factory.mktemp("heavy") / "venv"
    package = make_venv(venv) / "heavydep"
    package.mkdir()
    (package / "__init__.py").write_text("ROWS = 3\n")
    return venv / "bin" / "python"


HEAVY = """
import heavydep

from aeromancy import task


@task(outputs=["table"])
def make(ctx, rows: int = heavydep.ROWS):
    out = ctx.workdir / "table.txt"
    out.write_text("x" * rows)
    ctx.save("table", out)
"""


def test_planning_never_imports_the_module_in_aeromancys_process(
    local_project_with: ProjectFactory, heavy_venv: Path
) -> None:
    project = local_project_with(HEAVY)
    env = {"AEROMANCY_PROJECT_PYTHON": str(heavy_venv)}
    for command in (["list", "--dev"], ["graph"], ["run", "--dev"]):
        result = project.cli(*command, env=env)
        assert result.exit_code == 0, result.output
    assert "heavydep" not in sys.modules
    assert [r["config"] for r in project.records_of("make")] == [{"rows": 3}]
    assert "make" in project.cli("graph", env=env).output


MARKED = """
import helpers

from aeromancy import task

with open({marker!r}, "a") as log:
    log.write("imported\\n")


@task(outputs=["one"])
def first(ctx, n: int = helpers.N):
    (ctx.workdir / "one.txt").write_text(str(n))
    ctx.save("one", ctx.workdir / "one.txt")


@task(inputs=["one"], outputs=["two"])
def second(ctx):
    (ctx.workdir / "two.txt").write_text("2")
    ctx.save("two", ctx.workdir / "two.txt")
"""


def imports(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def test_a_noop_run_imports_nothing_of_the_project(
    local_project_with: ProjectFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "imports.log"
    project = local_project_with(MARKED.format(marker=str(marker)))
    project.write("helpers.py", "N = 1\n")
    assert project.cli("run", "--dev").exit_code == 0
    first = imports(marker)
    assert first == 3  # the description, then each task's own process

    for command in (
        ["run", "--dev"],
        ["list", "--dev"],
        ["graph"],
        ["run", "--dev", "--only", "second"],
    ):
        result = project.cli(*command)
        assert result.exit_code == 0, result.output
    assert imports(marker) == first

    project.write("helpers.py", "N = 2\n")  # a project module the task module imports
    result = project.cli("run", "--dev")
    assert result.exit_code == 0, result.output
    assert imports(marker) == first + 3
    assert sorted(r["config"]["n"] for r in project.records_of("first")) == [1, 2]


DYNAMIC = """
import importlib
import json

from aeromancy import task

SETTINGS = json.loads(open("stages.json").read())
helper = importlib.import_module("dyn" + "amic")


@task(outputs=["out"])
def make(ctx, rows: int = SETTINGS["rows"], scale: int = helper.SCALE):
    (ctx.workdir / "out.txt").write_text(str(rows * scale))
    ctx.save("out", ctx.workdir / "out.txt")
"""


def defaults_listed(project: Project) -> dict[str, int]:
    entries = sorted(cache_path("descriptions").glob("*.json"), key=lambda p: p.stat().st_mtime)
    tasks = json.loads(entries[-1].read_text())["tasks"]
    return dict(tasks[0][4])  # [name, module, inputs, outputs, defaults, files, types]


def test_the_description_follows_what_the_import_read_and_loaded(
    local_project_with: ProjectFactory,
) -> None:
    project = local_project_with(DYNAMIC)
    project.write("stages.json", '{"rows": 4}')
    project.write("dynamic.py", "SCALE = 10\n")
    assert project.cli("run", "--dev").exit_code == 0

    project.write("stages.json", '{"rows": 5}')  # a data file read at import time
    assert project.cli("run", "--dev").exit_code == 0
    project.write("dynamic.py", "SCALE = 20\n")  # a module no import statement names
    assert project.cli("run", "--dev").exit_code == 0

    configs = [r["config"] for r in project.records_of("make")]
    assert sorted(configs, key=lambda c: (c["rows"], c["scale"])) == [
        {"rows": 4, "scale": 10},
        {"rows": 5, "scale": 10},
        {"rows": 5, "scale": 20},
    ]
    assert defaults_listed(project) == {"rows": 5, "scale": 20}


OPTIONAL = """
try:
    import extra
    N = extra.N
except ImportError:
    N = 1

from aeromancy import task


@task(outputs=["out"])
def make(ctx, n: int = N):
    (ctx.workdir / "out.txt").write_text(str(n))
    ctx.save("out", ctx.workdir / "out.txt")
"""


def test_installing_a_package_refreshes_the_description(
    local_project_with: ProjectFactory, tmp_path: Path
) -> None:
    site = make_venv(tmp_path / "venv")
    env = {"AEROMANCY_PROJECT_PYTHON": str(tmp_path / "venv" / "bin" / "python")}
    project = local_project_with(OPTIONAL)
    assert project.cli("run", "--dev", env=env).exit_code == 0
    (site / "extra.py").write_text("N = 2\n")  # what installing a module does to the venv
    result = project.cli("run", "--dev", env=env)
    assert result.exit_code == 0, result.output
    assert sorted(r["config"]["n"] for r in project.records_of("make")) == [1, 2]


@pytest.mark.parametrize(
    "damage",
    [b"{not json", b"", b'{"format": 1, "key": "x"}', b"[1, 2]"],
    ids=["not-json", "empty", "wrong-key", "wrong-shape"],
)
def test_a_damaged_cache_entry_is_ignored_and_rebuilt(
    local_project: Project, tmp_path: Path, damage: bytes
) -> None:
    assert local_project.cli("run", "--dev").exit_code == 0
    (entry,) = cache_path("descriptions").glob("*.json")
    entry.write_bytes(damage)
    result = local_project.cli("run", "--dev")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output
    assert {task[0] for task in json.loads(entry.read_bytes())["tasks"]} == {
        "ingest",
        "train",
        "evaluate",
    }


def test_a_damaged_entry_with_the_right_key_is_rebuilt(local_project: Project) -> None:
    assert local_project.cli("run", "--dev").exit_code == 0
    (entry,) = cache_path("descriptions").glob("*.json")
    document = json.loads(entry.read_bytes())
    document["tasks"][0][2] = 7  # inputs: not a list of names
    entry.write_text(json.dumps(document))
    result = local_project.cli("list", "--dev")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("raise RuntimeError('boom')\n", "cannot load task module pipeline.py: RuntimeError: boom"),
        (
            "import not_installed_anywhere\n",
            "cannot load task module pipeline.py: ModuleNotFoundError: "
            "No module named 'not_installed_anywhere'",
        ),
        ("import sys\nsys.exit(3)\n", "cannot load task module pipeline.py: SystemExit: 3"),
        ("import os\nos._exit(4)\n", "exited with code 4 while importing it"),
        ("def broken(:\n", "cannot load task module pipeline.py: SyntaxError"),
    ],
    ids=["raises", "import-error", "sys-exit", "os-exit", "syntax-error"],
)
def test_a_module_that_fails_to_load_is_refused_in_one_line(
    local_project_with: ProjectFactory, source: str, message: str
) -> None:
    project = local_project_with(source)
    for command in (["run", "--dev"], ["list", "--dev"], ["graph"]):
        result = project.cli(*command)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert message in lines[0]
    assert project.store_is_empty()
    assert not list(cache_path("descriptions").glob("*.json"))  # failures are not cached

    project.write(
        "pipeline.py", "from aeromancy import task\n\n@task()\ndef fixed(ctx):\n    pass\n"
    )
    assert project.cli("list", "--dev").exit_code == 0


def test_a_missing_module_names_the_project_root(local_project: Project) -> None:
    result = local_project.cli("list", "--dev", "nothere.py")
    assert result.exit_code == 2
    assert f"task module nothere.py not found under {local_project.root.resolve()}" in (
        result.stderr
    )


def test_debug_shows_the_traceback_from_the_child(local_project_with: ProjectFactory) -> None:
    project = local_project_with("def fail():\n    raise RuntimeError('deep')\n\nfail()\n")
    done = subprocess.run(
        [AEROMANCY, "--store", project.store_url, "--debug", "list", "--dev"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" in done.stderr
    assert "in fail" in done.stderr
    assert "error: cannot load task module pipeline.py: RuntimeError: deep" in done.stderr


def test_what_the_module_prints_at_import_does_not_break_the_description(
    local_project_with: ProjectFactory,
) -> None:
    project = local_project_with(
        'print("hello from import")\n'
        "from aeromancy import task\n\n@task()\ndef quiet(ctx):\n    pass\n"
    )
    result = project.cli("run", "--dev")
    assert result.exit_code == 0, result.output


ANNOTATED = """
from aeromancy import task


@task()
def fit(ctx, lr: float | None = None, n: float = 1.5, depth: "int | str" = 3):
    pass
"""


def test_annotations_reach_planning_through_the_description(
    local_project_with: ProjectFactory,
) -> None:
    project = local_project_with(ANNOTATED)
    result = project.cli(
        "run", "--dev", "--set", "fit.lr=0.5", "--set", "fit.n=2", "--set", "fit.depth=deep"
    )
    assert result.exit_code == 0, result.output
    (record,) = project.records_of("fit")
    assert record["config"] == {"lr": 0.5, "n": 2, "depth": "deep"}
    assert isinstance(record["config"]["n"], int)
    refused = project.cli("run", "--dev", "--set", "fit.n=wide")
    assert refused.exit_code == 2
    assert "--set fit.n=wide: not a valid float | int" in refused.stderr


def test_the_describing_child_needs_only_the_standard_library(tmp_path: Path) -> None:
    # As tests/execution/test_child_imports.py does for the task runtime: no site-packages
    # at all (-I -S), Aeromancy through a directory holding only a link to it.
    (tmp_path / "aeromancy").symlink_to(Path(aeromancy.__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
        "import aeromancy.execution.child.describe, json; print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    top = {name.partition(".")[0] for name in json.loads(done.stdout)}
    assert top - set(sys.stdlib_module_names) == {"aeromancy", "__main__"}


def test_a_dotted_module_under_src_is_described_and_cached(
    local_project_with: ProjectFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "imports.log"
    project = local_project_with("")
    project.write("src/flows/__init__.py", "")
    project.write("src/flows/helpers.py", "N = 1\n")
    project.write(
        "src/flows/main.py",
        MARKED.format(marker=str(marker)).replace("import helpers", "from flows import helpers"),
    )
    assert project.cli("run", "--dev", "flows.main").exit_code == 0
    first = imports(marker)
    assert project.cli("run", "--dev", "flows.main").exit_code == 0
    assert imports(marker) == first
    project.write("src/flows/helpers.py", "N = 5\n")
    result = project.cli("run", "--dev", "flows.main")
    assert result.exit_code == 0, result.output
    assert sorted(r["config"]["n"] for r in project.records_of("first")) == [1, 5]
