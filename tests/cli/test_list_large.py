"""``aeromancy list`` on a graph too large for a table: a summary, and --all as plain lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.cli.inspect import FULL_TABLE_LIMIT

SIZE = FULL_TABLE_LIMIT + 5


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "big"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "big"\n')
    lines = ["from aeromancy import task", ""]
    for i in range(SIZE):
        inputs = [f"a{i - 1}"] if i else []
        lines += [f"@task(inputs={inputs!r}, outputs=['a{i}'])", f"def t{i}(ctx): ...", ""]
    (root / "pipeline.py").write_text("\n".join(lines))
    monkeypatch.chdir(root)
    monkeypatch.setenv("AEROMANCY_STORE", str(tmp_path / "store"))
    return root


def list_tasks(*args: str) -> list[str]:
    result = CliRunner().invoke(main, ["list", "pipeline.py", "--dev", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_a_large_graph_is_summed_up_with_each_task_that_would_run(project: Path) -> None:
    lines = list_tasks()
    assert lines[0] == f"{SIZE} tasks: 0 up to date, {SIZE} would run (--all lists every task)"
    rows = {line.split(" │ ")[0].strip(): line for line in lines[3:]}
    assert len(rows) == SIZE
    assert rows["t0"].endswith("never ran")
    assert rows["t1"].endswith("upstream t0 will run")


def test_all_lists_every_task_as_one_plain_line(project: Path) -> None:
    lines = list_tasks("--all")
    assert [cell.strip() for cell in lines[0].split("│")] == ["task", "inputs", "outputs", "status"]
    assert set(lines[1]) <= {"─", "┼"}
    body = lines[2:]
    assert len(body) == SIZE
    first = [cell.strip() for cell in body[0].split("│")]
    assert first == ["t0", "-", "a0 (artifact)", "never ran"]
    assert "[" not in "".join(body)  # no rich markup leaks into plain lines
    assert all(line == line.rstrip() for line in body)
