"""The child runtime and ``from aeromancy import task, Context`` need only the standard library.

The child runs in the project's environment, where none of Aeromancy's dependencies
are installed. Each check imports in a fresh ``python -I -S`` (no site-packages at all,
so a third-party import would fail) through the same one-link import path the executor
gives its children, and compares what got imported against the standard library.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import aeromancy

SCRIPT = """
import json, sys
{imports}
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(tmp_path: Path, imports: str) -> list[str]:
    link_dir = tmp_path / "path"
    link_dir.mkdir()
    (link_dir / "aeromancy").symlink_to(Path(aeromancy.__file__).parent)
    code = f"import sys; sys.path.insert(0, {str(link_dir)!r})\n" + SCRIPT.format(imports=imports)
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def not_stdlib(modules: list[str]) -> list[str]:
    return [
        name
        for name in modules
        if name.partition(".")[0] not in sys.stdlib_module_names
        and name.partition(".")[0] not in ("aeromancy", "__main__")
    ]


@pytest.mark.parametrize(
    "imports",
    [
        "import aeromancy.execution.child.runtime",
        "import aeromancy.execution.child.zygote",
        "from aeromancy import task, Context",
    ],
    ids=["child-runtime", "fork-server", "public-api"],
)
def test_only_the_standard_library_is_imported(tmp_path: Path, imports: str) -> None:
    modules = imported_by(tmp_path, imports)
    assert not_stdlib(modules) == []
    assert "aeromancy" in modules


@pytest.mark.parametrize("entry", ["runtime", "zygote"])
def test_the_child_imports_no_aeromancy_module_that_needs_dependencies(
    tmp_path: Path, entry: str
) -> None:
    modules = imported_by(tmp_path, f"import aeromancy.execution.child.{entry}")
    ours = {name for name in modules if name.startswith("aeromancy")}
    assert ours <= {
        "aeromancy",
        "aeromancy._version",
        "aeromancy.cache_files",
        # @task(resources=) checks its names and amounts there (standard library only).
        "aeromancy.cluster",
        "aeromancy.cluster.resources",
        "aeromancy.settings",
        "aeromancy.context",
        "aeromancy.errors",
        "aeromancy.names",
        "aeromancy.tasks",
        "aeromancy.execution",
        "aeromancy.execution.child",
        "aeromancy.execution.child.lifetime",
        "aeromancy.execution.child.protocol",
        "aeromancy.execution.child.reads",
        "aeromancy.execution.child.runtime",
        "aeromancy.execution.child.zygote",
    }


def test_the_check_sees_a_third_party_import(tmp_path: Path) -> None:
    # The allow-list check itself must be able to fail.
    assert not_stdlib(["json", "aeromancy.tasks", "click", "botocore.client"]) == [
        "click",
        "botocore.client",
    ]
