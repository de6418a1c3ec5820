"""Unreadable input and click's own usage errors: exit 2, one line, nothing written.

Permission bits do not stop root, and the suite usually runs as root. So the CLI
runs as a real subprocess that is still uid 0 but has lost the two capabilities that
let root ignore them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), dropped from its
bounding and inheritable sets by util-linux's ``setpriv``; a non-root user runs it
unchanged. Where neither works, the tests are skipped and say why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner

from aeromancy.cli import main


class RawAccess(Protocol):
    def keys(self, prefix: str = "") -> list[str]: ...


AEROMANCY = Path(sys.executable).with_name("aeromancy")
DROP = "-dac_override,-dac_read_search"


def _unprivileged_prefix() -> list[str]:
    """Return the command prefix that makes permission bits apply to what follows."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is missing: root reads every file")
    return [setpriv, "--bounding-set", DROP, "--inh-caps", DROP, "--"]


@pytest.fixture
def unprivileged(tmp_path: Path) -> list[str]:
    """Return the prefix, after checking that a mode-000 file is really unreadable with it."""
    prefix = _unprivileged_prefix()
    probe = tmp_path / "probe"
    probe.write_text("secret")
    probe.chmod(0)
    try:
        seen = subprocess.run([*prefix, "cat", str(probe)], capture_output=True, check=False)
    finally:
        probe.chmod(0o644)
        probe.unlink()
    if seen.returncode == 0:
        pytest.skip("cannot drop the capability to read any file here (no CAP_SETPCAP?)")
    return prefix


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project folder; every mode the test takes away is given back afterwards."""
    root = tmp_path / "proj"
    (root / "data" / "sub").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "demo"\n')
    (root / "pipeline.py").write_text(
        "from aeromancy import task\n\n@task(outputs=['x'])\ndef t(ctx):\n    pass\n"
    )
    for name in ("data/a.txt", "data/z.txt", "data/sub/b.txt"):
        (root / name).write_text(name)
    yield root
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def refused(prefix: list[str], store_url: str, cwd: Path, *args: str) -> str:
    """Run the CLI; assert exit 2 and a single stderr line; return that line."""
    result = subprocess.run(
        [*prefix, str(AEROMANCY), "--store", store_url, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in result.stderr
    return lines[0]


# (what is made unreadable, mode, what is pushed, the line's gist)
CASES = {
    "subdirectory": ("data/sub", 0, "data", "cannot read the directory data/sub"),
    "file-in-directory": ("data/z.txt", 0, "data", "cannot read z.txt: permission denied"),
    "path-itself": ("data", 0, "data", "Path 'data' is not readable"),
    "path-in-unsearchable-folder": ("data", 0o644, "data/a.txt", "cannot read data/a.txt"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unreadable_push_exits_2_on_one_line_and_writes_nothing(
    unprivileged: list[str], store_url: str, raw: RawAccess, project: Path, case: str
) -> None:
    target, mode, pushed, gist = CASES[case]
    (project / target).chmod(mode)

    line = refused(unprivileged, store_url, project, "push", "data", pushed)

    assert gist in line
    assert line.startswith("error: ")
    assert raw.keys("") == []  # no blob, no manifest, no temp file


@pytest.mark.parametrize("command", [["run", "--dev"], ["list", "--dev"]])
def test_an_unreadable_task_module_exits_2_on_one_line_and_writes_nothing(
    unprivileged: list[str], store_url: str, raw: RawAccess, project: Path, command: list[str]
) -> None:
    (project / "pipeline.py").chmod(0)

    line = refused(unprivileged, store_url, project, *command)

    assert "pipeline.py" in line
    assert raw.keys("") == []


@pytest.mark.parametrize(
    ("args", "gist"),
    [
        (["push", "data"], "Missing argument 'PATH'. (see `aeromancy push --help`)"),
        (["push", "--colour", "x", "data", "data"], "No such option '--colour'"),
        (["gc", "--keep-last", "0"], "Invalid value for '--keep-last'"),
        (["--bogus", "runs"], "No such option '--bogus'. (see `aeromancy --help`)"),
        (["nosuch"], "No such command 'nosuch'"),
    ],
    ids=["missing-argument", "unknown-option", "bad-value", "unknown-group-option", "command"],
)
def test_clicks_usage_errors_are_one_line(
    *,
    store_url: str,
    raw: RawAccess,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    gist: str,
) -> None:
    monkeypatch.chdir(project)

    result = CliRunner().invoke(main, ["--store", store_url, *args], prog_name="aeromancy")

    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert gist in line
    assert raw.keys("") == []


def test_help_without_a_command_is_still_the_whole_help() -> None:
    result = CliRunner().invoke(main, [])

    assert "Commands:" in result.output
    assert "push" in result.output
