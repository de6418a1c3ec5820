"""``aeromancy results``: rows from real run records in a real store, in every format."""

from __future__ import annotations

import csv
import io
import json
import statistics
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

import aeromancy
from aeromancy.experiments.flatten import flatten
from aeromancy.experiments.table import parse_cell

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project


def csv_rows(text: str) -> list[dict[str, Any]]:
    return [{k: parse_cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def run_twice(project: Project) -> None:
    project.ok("run", "--dev", "--tracker", "none")
    project.ok("run", "--dev", "--tracker", "none", "--set", "train.lr=0.2")


def test_csv_parsed_back_equals_the_records(project: Project) -> None:
    run_twice(project)
    rows = csv_rows(project.ok("results", "--all", "--format", "csv").stdout)
    records = project.records()
    assert [row["run"] for row in rows] == [r["run_id"] for r in records]
    for row, record in zip(rows, records, strict=True):
        assert row["task"] == record["task"]
        assert row["status"] == record["status"] == "succeeded"
        assert row["invocation"] == record["group"]
        for key, value in flatten(record["config"]).items():
            assert row[key] == value
        for name, value in record["metrics"].items():
            assert row[name] == value
        outputs = " ".join(f"{o['name']}:{o['label']}" for o in record["outputs"])
        assert row["outputs"] == outputs
        assert isinstance(row["duration"], float)
    [train] = [r for r in records if r["task"] == "train" and r["config"]["lr"] == 0.2]
    assert train["metric_summary"]["loss"] == {
        "last": 0.2,
        "min": 0.2,
        "max": 0.6000000000000001,
        "count": 3,
    }


def test_default_is_the_newest_invocation_and_group_picks_another(project: Project) -> None:
    run_twice(project)
    newest = json.loads(project.ok("results", "--format", "json").stdout)
    # The second run re-ran train (new lr) and report; prepare and baseline were skipped.
    assert sorted(row["task"] for row in newest) == ["report", "train"]
    first_group = project.records_of("prepare")[0]["group"]
    first = json.loads(project.ok("results", "--group", first_group, "--format", "json").stdout)
    assert sorted(row["task"] for row in first) == ["baseline", "prepare", "report", "train"]
    since = json.loads(project.ok("results", "--since", "1h", "--format", "json").stdout)
    assert len(since) == 6
    unknown = project.cli("results", "--group", "nope")
    assert unknown.exit_code == 2
    assert first_group in unknown.output


def test_where_sort_and_metric_statistics(project: Project) -> None:
    run_twice(project)
    args = ("results", "train", "--all", "--format", "json")
    rows = json.loads(project.ok(*args, "--where", "lr=0.2").stdout)
    assert [row["lr"] for row in rows] == [0.2]
    rows = json.loads(project.ok(*args, "--sort", "-accuracy.max", "--metrics", "min,max").stdout)
    assert [row["lr"] for row in rows] == [0.2, 0.1]
    assert "accuracy" not in rows[0]
    assert rows[0]["accuracy.min"] == pytest.approx(0.7)
    assert rows[0]["accuracy.max"] == pytest.approx(0.9)
    rows = json.loads(project.ok(*args, "--where", "accuracy>0.85").stdout)
    assert [row["lr"] for row in rows] == [0.2]
    assert json.loads(project.ok(*args, "--where", "optimizer.name=adam").output) == []


def test_group_by_config_means_over_repeats(project: Project) -> None:
    for lr in ("0.1", "0.2", "0.1", "0.2", "0.1"):
        # --force makes each a new run of the same config, as repeats are.
        project.ok(
            "run",
            "--dev",
            "--tracker",
            "none",
            "--only",
            "prepare,train",
            "--force",
            "--set",
            f"train.lr={lr}",
        )
    rows = json.loads(
        project.ok("results", "train", "--all", "--group-by-config", "--format", "json").output
    )
    by_lr = {row["lr"]: row for row in rows}
    assert by_lr[0.1]["n"] == 3
    assert by_lr[0.2]["n"] == 2
    accuracies = [
        r["metrics"]["accuracy"] for r in project.records_of("train") if r["config"]["lr"] == 0.1
    ]
    assert by_lr[0.1]["accuracy.mean"] == pytest.approx(statistics.fmean(accuracies))
    assert by_lr[0.1]["accuracy.std"] == pytest.approx(statistics.stdev(accuracies))


def test_table_and_markdown_show_every_run(project: Project) -> None:
    run_twice(project)
    table = project.ok("results", "--all").output
    markdown = project.ok("results", "--all", "--format", "markdown").output
    for record in project.records():
        assert record["run_id"] in table
        assert record["run_id"] in markdown
    assert markdown.splitlines()[0].startswith("| run | task | status |")
    assert project.ok("results", "nosuchtask").output.strip() == "no runs match"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--where", "nope=1"), "no column 'nope'"),
        (("--where", "lr"), "expected KEY=VALUE"),
        (("--sort", "nope"), "no column 'nope'"),
        (("--metrics", "median"), "unknown statistic median"),
        (("--since", "yesterday"), "not a time"),
        (("--all", "--since", "1h"), "both choose runs"),
        (("--where", "lr>high"), "needs a number"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    project: Project, args: tuple[str, ...], message: str
) -> None:
    project.ok("run", "--dev", "--tracker", "none")
    result = project.cli("results", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_python_api_returns_a_dataframe(project: Project) -> None:
    run_twice(project)
    frame = aeromancy.results("train", all_runs=True, store=project.store_url, root=project.root)
    assert list(frame["lr"]) == [0.1, 0.2]
    assert list(frame["run"]) == [r["run_id"] for r in project.records_of("train")]
    grouped = aeromancy.results(
        all_runs=True, group_by_config=True, store=project.store_url, root=project.root
    )
    assert set(grouped["task"]) == {"prepare", "train", "baseline", "report"}


def test_a_corrupt_record_is_named_and_skipped(project: Project) -> None:
    project.ok("run", "--dev", "--tracker", "none")
    runs = project.root.parent / "store"
    [path] = [p for p in runs.rglob("*.json") if "runs" in p.parts and "prepare" in p.read_text()]
    path.chmod(0o644)
    path.write_text("{not json")
    result = project.cli("results", "--all", "--format", "csv")
    assert result.exit_code == 0
    assert f"skipping unreadable run record {path.stem}" in result.output
    assert len(csv_rows(result.stdout)) == 3


def test_results_from_s3_then_from_the_cache(s3_project: Project) -> None:
    run_twice(s3_project)
    cold = csv_rows(s3_project.ok("results", "--all", "--format", "csv").stdout)
    warm = csv_rows(s3_project.ok("results", "--all", "--format", "csv").stdout)
    assert cold == warm
    assert len(cold) == 6


def test_without_pandas_the_api_says_which_extra_to_install(project: Project) -> None:
    # pandas is installed in the test environment; a None entry in sys.modules makes
    # ``import pandas`` fail exactly as it does where pandas is not installed.
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "import aeromancy\n"
        "try:\n"
        f"    aeromancy.results(store={project.store_url!r}, root={str(project.root)!r})\n"
        "except aeromancy.UsageError as exc:\n"
        "    print(exc.exit_code, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("2 aeromancy.results() needs pandas")
    assert "aeromancy[pandas]" in done.stdout


def test_cpu_and_memory_come_from_the_record() -> None:
    from aeromancy.experiments.results import Query, results_table

    record = {
        "run_id": "r1",
        "task": "t",
        "status": "succeeded",
        "group": "g",
        "started": "2026-12-01T10:00:00+00:00",
        "ended": "2026-12-01T10:00:02.5+00:00",
        "cpu_user_s": 1.25,
        "cpu_system_s": 0.5,
        "max_rss_bytes": 1024,
    }
    [row] = results_table(
        [record, {**record, "run_id": "r0", "cpu_user_s": None}], Query(all_runs=True)
    ).rows[:1]
    assert (row["duration"], row["cpu"], row["memory"]) == (2.5, 1.75, 1024)


@pytest.mark.parametrize(
    "value",
    [0, -7, 10**20, 0.1, 1e-300, 1e300, -0.0, 2.5, True, False, [1, 2.5], {"b": 1, "a": [True]}],
)
def test_csv_cells_are_json_of_the_value(value: Any) -> None:
    from aeromancy.experiments.table import exact_text

    assert exact_text(value) == json.dumps(value, sort_keys=True)
    assert parse_cell(exact_text(value)) == value


def test_a_long_table_is_laid_out_as_plain_aligned_text(project: Project) -> None:
    from aeromancy.cli.results import RICH_ROWS

    store = project.store()
    count = RICH_ROWS + 1
    for index in range(count):
        run_id = f"20261201-{index:06d}-long"
        record = {
            "run_id": run_id,
            "task": "t",
            "status": "succeeded",
            "group": "g",
            "started": f"2026-12-01T10:{index // 60:02d}:{index % 60:02d}+00:00",
            "ended": f"2026-12-01T10:{index // 60:02d}:{index % 60:02d}.5+00:00",
            "config": {"n": index, "name": f"x{index}"},
            "metrics": {"loss": 1 / (index + 1)},
        }
        store.put_run_record("exp", run_id, record, namespace="dev")
    lines = project.ok("results").stdout.splitlines()
    assert len(lines) == count + 2
    header, rule, first, *_, last = lines
    run_id = f"20261201-{count - 1:06d}-long"
    assert header.split(" │ ")[:3] == ["run".ljust(len(run_id)), "task", "status   "]
    assert set(rule) <= {"─", "┼"}
    cells = [cell.strip() for cell in last.split("│")]
    assert cells[:3] == [run_id, "t", "succeeded"]
    assert cells[4:6] == ["2026-12-01 10:03:20", "0.5s"]
    # Numbers right-aligned, text left-aligned, every row the same layout.
    n_column = header.split(" │ ").index(next(h for h in header.split(" │ ") if h.strip() == "n"))
    assert first.split(" │ ")[n_column] == "  0"
    assert first.split(" │ ")[n_column + 1].startswith("x0 ")
    assert len({line.index("│") for line in lines if line != rule}) == 1
