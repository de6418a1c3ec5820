"""End to end through the CLI on a real git repo, with the store on each backend."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import git

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project


def outcome_lines(output: str) -> dict[str, str]:
    """Return task -> its summary row, from the run summary table."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) >= 3 and cells[0] in ("ingest", "train", "evaluate", "side", "slow_a"):
            rows[cells[0]] = cells[1]
    return rows


def test_first_run_runs_all_and_second_skips_all(project: Project) -> None:
    first = project.cli("run", "--dev")
    assert first.exit_code == 0, first.output
    assert outcome_lines(first.stdout) == {"ingest": "ran", "train": "ran", "evaluate": "ran"}
    assert len(project.records()) == 3
    assert project.labels("report") == ["dev1"]

    second = project.cli("run", "--dev")
    assert second.exit_code == 0, second.output
    assert set(outcome_lines(second.stdout).values()) == {"skipped (up to date)"}
    assert len(project.records()) == 3
    assert project.labels("report") == ["dev1"]


def test_set_reruns_the_task_and_its_consumers_only(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    result = project.cli("run", "--dev", "--set", "train.scale=2.5")
    assert result.exit_code == 0, result.output
    assert outcome_lines(result.stdout) == {
        "ingest": "skipped (up to date)",
        "train": "ran",
        "evaluate": "ran",
    }
    assert project.labels("raw") == ["dev1"]
    assert project.labels("model") == ["dev1", "dev2"]
    assert project.labels("report") == ["dev1", "dev2"]
    newest = project.records_of("train")
    assert sorted(r["config"]["scale"] for r in newest) == [1.0, 2.5]

    # The old version is still readable, with its own content.
    store = project.store()
    old = store.resolve("model:dev1", "demo", namespace="dev")
    new = store.resolve("model:dev2", "demo", namespace="dev")
    old_w = json.loads(
        (store.materialize(old, project.root.parent / "old") / "model.json").read_text()
    )
    new_w = json.loads(
        (store.materialize(new, project.root.parent / "new") / "model.json").read_text()
    )
    assert new_w["w"] == old_w["w"] * 2.5

    # Back to the default: the first runs are reused, nothing new is made.
    again = project.cli("run", "--dev")
    assert set(outcome_lines(again.stdout).values()) == {"skipped (up to date)"}
    assert "model:dev1" in again.stdout
    assert project.labels("model") == ["dev1", "dev2"]


def test_editing_an_imported_helper_makes_tasks_stale_but_readme_does_not(
    project: Project,
) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    project.write("README.md", "# demo, now with more words\n")
    project.commit("docs")
    unchanged = project.cli("run", "--dev")
    assert set(outcome_lines(unchanged.stdout).values()) == {"skipped (up to date)"}

    project.write("helpers.py", "def weight(values):\n    return max(values)\n")
    changed = project.cli("run", "--dev")
    assert changed.exit_code == 0, changed.output
    assert outcome_lines(changed.stdout)["train"] == "ran"
    assert project.labels("model") == ["dev1", "dev2"]
    records = project.records_of("train")
    assert all("helpers.py" in r["code"]["files"] for r in records)


def test_force_reruns_up_to_date_tasks(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    forced = project.cli("run", "--dev", "--force")
    assert forced.exit_code == 0, forced.output
    assert set(outcome_lines(forced.stdout).values()) == {"ran"}
    assert len(project.records()) == 6


def test_only_runs_selected_tasks_with_stored_inputs(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    assert project.cli("run", "--dev", "--set", "train.scale=3").exit_code == 0
    # Pin the older model: evaluate runs again against model:dev1 (its dev1 run used it
    # with raw:dev1, so that run is reused: same fingerprint).
    pinned = project.cli("run", "--dev", "--only", "evaluate", "--artifact-override", "model:dev1")
    assert pinned.exit_code == 0, pinned.output
    assert outcome_lines(pinned.stdout) == {"evaluate": "skipped (up to date)"}
    assert "report:dev1" in pinned.stdout
    forced = project.cli(
        "run", "--dev", "--only", "evaluate", "--artifact-override", "model:dev1", "--force"
    )
    assert forced.exit_code == 0, forced.output
    newest = max(project.records_of("evaluate"), key=lambda r: r["started"])
    assert {i["name"]: i["label"] for i in newest["inputs"]} == {"raw": "dev1", "model": "dev1"}


def test_run_record_holds_the_design_fields(project: Project) -> None:
    result = project.cli("run", "--dev", env={"AEROMANCY_INVOCATION": "inv-123"})
    assert result.exit_code == 0, result.output
    record = project.records_of("train")[0]
    assert record["status"] == "succeeded"
    assert record["group"] == "inv-123"
    assert record["namespace"] == "dev"
    assert record["config"] == {"scale": 1.0}
    assert record["metrics"] == {"loss": 1.0 / 3.0}
    assert [(i["name"], i["label"], i["project"]) for i in record["inputs"]] == [
        ("raw", "dev1", "demo")
    ]
    assert record["inputs"][0]["digest"].startswith("sha256:")
    assert [(o["name"], o["label"]) for o in record["outputs"]] == [("model", "dev1")]
    assert record["fingerprint"].startswith("sha256:")
    assert record["git_commit"] == git.Repo(project.root).head.commit.hexsha
    assert record["git_message"] == "initial"
    assert record["git_dirty"] is False
    assert record["lockfile_hash"] == ""
    assert record["environment_key"].startswith("no-lockfile;python=")
    assert "python" in record["environment"]
    assert record["environment"]["git"]["commit"] == record["git_commit"]
    assert record["wandb_run"] is None
    assert record["aeromancy_version"]
    assert record["started"] <= record["ended"]
    assert record["error"] is None


def test_lineage_of_the_report_names_model_and_dataset_versions(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    assert project.cli("run", "--dev", "--set", "train.scale=2").exit_code == 0
    up = project.cli("lineage", "report")
    assert up.exit_code == 0, up.output
    assert "demo/report:dev2" in up.stdout
    assert "demo/model:dev2" in up.stdout
    assert "demo/raw:dev1" in up.stdout
    assert "made by train" in up.stdout
    assert "demo/model:dev1" not in up.stdout

    old = project.cli("lineage", "report:dev1")
    assert "demo/model:dev1" in old.stdout

    down = project.cli("lineage", "raw:dev1", "--down")
    assert down.exit_code == 0, down.output
    for ref in ("model:dev1", "model:dev2", "report:dev1", "report:dev2"):
        assert f"demo/{ref}" in down.stdout


def test_runs_lists_newest_first_and_filters_by_task(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    listing = project.cli("runs")
    assert listing.exit_code == 0, listing.output
    order = [
        name
        for line in listing.stdout.splitlines()
        for name in ("ingest", "train", "evaluate")
        if f" {name} " in line
    ]
    assert order == ["evaluate", "train", "ingest"]
    only = project.cli("runs", "--task", "train")
    assert " train " in only.stdout
    assert " ingest " not in only.stdout


def test_list_shows_up_to_date_status_and_why_stale(project: Project) -> None:
    before = project.cli("list", "--dev")
    assert before.exit_code == 0, before.output
    assert before.stdout.count("never ran") == 1
    assert before.stdout.count("upstream") == 2
    assert project.cli("run", "--dev").exit_code == 0
    after = project.cli("list", "--dev")
    assert after.stdout.count("up to date") == 3
    project.write("helpers.py", "def weight(values):\n    return min(values)\n")
    edited = project.cli("list", "--dev")
    assert "code helpers.py changed" in edited.stdout
