"""A dev run's environment identity names the Python the tasks run in (the project's
interpreter), not the one running Aeromancy: a project on another Python version is a
different environment, so its tasks are stale after the switch."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from aeromancy.execution.interpreter import PROJECT_PYTHON_ENV, python_version
from aeromancy.identity import dev_environment_key

#: pyenv's real interpreter, not its shim (a shim refuses a version pyenv has not selected).
OTHER_PYTHON = next(
    (str(p) for p in sorted(Path("/root/.pyenv/versions").glob("3.12.*/bin/python3.12"))),
    shutil.which("python3.12") or "python3.12",
)
needs_other_python = pytest.mark.skipif(
    not Path(OTHER_PYTHON).exists(), reason="no second Python version (3.12) on this machine"
)


@needs_other_python
def test_the_key_names_the_project_venvs_python(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    subprocess.run([OTHER_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    expected = subprocess.run(
        [OTHER_PYTHON, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert expected.startswith("3.12.")
    assert dev_environment_key(tmp_path) == f"no-lockfile;python={expected}"


@needs_other_python
def test_an_interpreter_outside_a_venv_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROJECT_PYTHON_ENV, OTHER_PYTHON)
    assert not (Path(OTHER_PYTHON).parent.parent / "pyvenv.cfg").exists()
    assert dev_environment_key(tmp_path).startswith("no-lockfile;python=3.12.")


def test_a_venv_is_read_without_starting_it(tmp_path: Path) -> None:
    """pyvenv.cfg is trusted: the interpreter here is a script that would print nonsense."""
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho 9.9.9\n")
    python.chmod(0o755)
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /x\nversion = 3.9.18\n")
    assert python_version(str(python)) == "3.9.18"
    (tmp_path / "venv" / "pyvenv.cfg").unlink()
    assert python_version(str(python)) == "9.9.9"
