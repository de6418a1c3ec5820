"""``aeromancy list`` on large graphs: plain lines above RICH_ROWS tasks; above
FULL_TABLE_LIMIT a summary, and --all as plain lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aeromancy.cli import inspect, main
from aeromancy.cli.inspect import FULL_TABLE_LIMIT, RICH_ROWS

SIZE = FULL_TABLE_LIMIT + 5


def make_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int) -> Path:
    root = tmp_path / "big"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "big"\n')
    lines = ["from aeromancy import task", ""]
    for i in range(size):
        inputs = [f"a{i - 1}"] if i else []
        lines += [f"@task(inputs={inputs!r}, outputs=['a{i}'])", f"def t{i}(ctx): ...", ""]
    (root / "pipeline.py").write_text("\n".join(lines))
    monkeypatch.chdir(root)
    monkeypatch.setenv("AEROMANCY_STORE", str(tmp_path / "store"))
    return root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_project(tmp_path, monkeypatch, SIZE)


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


def assert_plain_lines(lines: list[str], size: int) -> None:
    """Check a header, a rule and one plain line per task, in plan order."""
    assert [cell.strip() for cell in lines[0].split("│")] == ["task", "inputs", "outputs", "status"]
    assert set(lines[1]) <= {"─", "┼"}
    body = lines[2:]
    assert [line.split(" │ ")[0].strip() for line in body] == [f"t{i}" for i in range(size)]
    first = [cell.strip() for cell in body[0].split("│")]
    assert first == ["t0", "-", "a0 (artifact)", "never ran"]
    assert body[1].endswith("upstream t0 will run")
    assert "[" not in "".join(body)  # no rich markup leaks into plain lines
    assert all(line == line.rstrip() for line in body)


@pytest.mark.parametrize("size", [RICH_ROWS, RICH_ROWS + 1])
def test_above_rich_rows_tasks_the_table_is_plain_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    make_project(tmp_path, monkeypatch, size)
    tables: list[object] = []  # what rich was handed to measure (seconds for a big table)
    monkeypatch.setattr(inspect, "print_table", lambda console, rows: tables.append(rows))
    lines = list_tasks()
    if size <= RICH_ROWS:
        assert len(tables) == 1
        assert not lines
    else:
        assert not tables
        assert_plain_lines(lines, size)


def test_all_lists_every_task_as_one_plain_line(project: Path) -> None:
    assert_plain_lines(list_tasks("--all"), SIZE)
