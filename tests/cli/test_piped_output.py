"""Every listing command, run through CliRunner (not a terminal), prints whole rows.

The environment says COLUMNS=40, far narrower than any row: piped output must ignore
it, so each run id, task name, status and digest appears whole, on its row's one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest
from click.testing import CliRunner, Result

from aeromancy.cli import main
from aeromancy.store import ArtifactVersion, open_store

# Long names on purpose: a row of `runs` is well over 80 columns.
PIPELINE = """\
import json

from aeromancy import Context, task


@task(outputs={"raw_measurements": "dataset"})
def ingest_raw_measurements(ctx: Context) -> None:
    path = ctx.workdir / "raw.txt"
    path.write_text("1\\n2\\n3\\n")
    ctx.save("raw_measurements", path)


@task(inputs=["raw_measurements"], outputs={"fitted_model": "model"})
def fit_regression_model(ctx: Context) -> None:
    values = [int(x) for x in (ctx.load("raw_measurements") / "raw.txt").read_text().split()]
    out = ctx.workdir / "model.json"
    out.write_text(json.dumps({"mean": sum(values) / len(values)}))
    ctx.save("fitted_model", out)


@task(inputs=["raw_measurements", "fitted_model"], outputs={"evaluation_report": "report"})
def evaluate_on_holdout(ctx: Context) -> None:
    model = json.loads((ctx.load("fitted_model") / "model.json").read_text())
    out = ctx.workdir / "report.txt"
    out.write_text(f"mean={model['mean']}")
    (ctx.workdir / "notes.txt").write_text("held out")
    ctx.save("evaluation_report", ctx.workdir)
"""

TASKS = ("ingest_raw_measurements", "fit_regression_model", "evaluate_on_holdout")
ARTIFACTS = ("raw_measurements", "fitted_model", "evaluation_report")


@dataclass
class Ran:
    """A project after one ``run --dev``: how to call the CLI and what the store holds."""

    root: Path
    store_url: str

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--store", self.store_url, *args], env={"COLUMNS": "40"})

    def records(self) -> list[dict[str, Any]]:
        return open_store(self.store_url).list_run_records("demo", namespace="dev")

    def version(self, ref: str) -> ArtifactVersion:
        return open_store(self.store_url).resolve(ref, "demo", namespace="dev")


@pytest.fixture
def ran(tmp_path: Path, local_store_url: str, monkeypatch: pytest.MonkeyPatch) -> Ran:
    """The long-named pipeline in a committed git repository, run once with --dev."""
    root = tmp_path / "demo"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0.1.0"\n\n'
        '[tool.aeromancy]\nproject = "demo"\ntasks = "pipeline.py"\n'
    )
    (root / "pipeline.py").write_text(PIPELINE)
    repo = git.Repo.init(root)
    with repo.config_writer() as config:
        config.set_value("user", "name", "Test")
        config.set_value("user", "email", "test@example.com")
    repo.git.add(A=True)
    repo.index.commit("initial")
    monkeypatch.chdir(root)
    project = Ran(root, local_store_url)
    result = project.cli("run", "--dev")
    assert result.exit_code == 0, result.output
    return project


def line_with(output: str, needle: str) -> str:
    """Return the one line of ``output`` holding ``needle``; fail if none or several do."""
    lines = [line for line in output.splitlines() if needle in line]
    assert len(lines) == 1, f"{needle!r} on {len(lines)} lines of:\n{output}"
    return lines[0]


def test_run_summary_has_one_whole_row_per_task(ran: Ran) -> None:
    again = ran.cli("run", "--dev")
    assert again.exit_code == 0, again.output
    for record in ran.records():
        row = line_with(again.stdout, record["run_id"])
        assert record["task"] in row
        assert "skipped (up to date)" in row


def test_runs_shows_run_id_task_and_status_whole_on_one_line(ran: Ran) -> None:
    result = ran.cli("runs")
    assert result.exit_code == 0, result.output
    records = ran.records()
    assert sorted(r["task"] for r in records) == sorted(TASKS)
    for record in records:
        row = line_with(result.stdout, record["run_id"])
        assert f" {record['task']} " in row
        assert " succeeded " in row
        assert re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", row), row
    assert all(len(line) > 80 for line in result.stdout.splitlines()[2:])


def test_list_shows_each_task_and_status_whole(ran: Ran) -> None:
    result = ran.cli("list", "--dev")
    assert result.exit_code == 0, result.output
    for task in TASKS:
        assert line_with(result.stdout, f"{task} ").rstrip().endswith("up to date")
    row = line_with(result.stdout, "evaluate_on_holdout ")
    assert "raw_measurements, fitted_model" in row
    assert "evaluation_report (report)" in row


def test_artifacts_shows_name_label_and_producing_run_whole(ran: Ran) -> None:
    result = ran.cli("artifacts", "--dev")
    assert result.exit_code == 0, result.output
    producer = {o["name"]: r["run_id"] for r in ran.records() for o in r["outputs"]}
    for name in ARTIFACTS:
        row = line_with(result.stdout, f"{name} ")
        assert row.split()[:3] == [name, "│", "dev1"]
        assert row.rstrip().endswith(producer[name])


def test_show_prints_every_digest_and_the_run_whole(ran: Ran) -> None:
    version = ran.version("evaluation_report:dev1")
    result = ran.cli("show", "evaluation_report:dev1")
    assert result.exit_code == 0, result.output
    assert line_with(result.stdout, version.digest).startswith("digest")
    assert line_with(result.stdout, str(version.run_id)).startswith("run")
    created = line_with(result.stdout, "created")
    assert re.fullmatch(r"created +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", created), created
    assert len(version.files) == 2
    for entry in version.files:
        assert line_with(result.stdout, entry.sha256).startswith(entry.path)


def test_lineage_prints_one_line_per_node(ran: Ran) -> None:
    result = ran.cli("lineage", "evaluation_report")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # report <- raw, model; model <- raw again (shown above): four nodes.
    refs = [re.search(r"demo/\w+:dev1", line) for line in lines]
    assert [m.group(0) if m else None for m in refs] == [
        "demo/evaluation_report:dev1",
        "demo/raw_measurements:dev1",
        "demo/fitted_model:dev1",
        "demo/raw_measurements:dev1",
    ]
    by_task = {r["task"]: r["run_id"] for r in ran.records()}
    assert f"made by evaluate_on_holdout in run {by_task['evaluate_on_holdout']}" in lines[0]
    assert f"made by fit_regression_model in run {by_task['fit_regression_model']}" in lines[2]
    assert lines[3].endswith("(shown above)")


def test_lineage_down_prints_one_line_per_node(ran: Ran) -> None:
    result = ran.cli("lineage", "raw_measurements", "--down")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    assert all(re.search(r"demo/\w+:dev1 sha256:[0-9a-f]{12}", line) for line in lines)


def test_a_long_error_is_one_line_on_stderr(ran: Ran) -> None:
    result = ran.cli("show", "no_such_artifact_with_a_rather_long_name")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: no artifact demo/no_such_artifact_with_a_rather_long")
