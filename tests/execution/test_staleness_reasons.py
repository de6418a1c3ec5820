"""Why a task runs: `aeromancy list` and the run summary name what changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project


def why_ran(output: str) -> dict[str, str]:
    """Return task -> the `why` cell of the run summary."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 5 and cells[0] in ("ingest", "train", "evaluate"):
            rows[cells[0]] = cells[4]
    return rows


def list_reasons(project: Project) -> dict[str, str]:
    result = project.cli("list", "--dev")
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 4 and cells[0] in ("ingest", "train", "evaluate"):
            rows[cells[0]] = cells[3]
    return rows


def test_first_run_says_never_ran_and_force_says_forced(local_project: Project) -> None:
    first = local_project.cli("run", "--dev")
    assert first.exit_code == 0, first.output
    assert set(why_ran(first.stdout).values()) == {"never ran"}
    assert len(why_ran(first.stdout)) == 3
    forced = local_project.cli("run", "--dev", "--force", "--only", "train")
    assert why_ran(forced.stdout) == {"train": "forced"}


def test_config_change_names_the_key_and_input_change_names_the_versions(
    local_project: Project,
) -> None:
    assert local_project.cli("run", "--dev").exit_code == 0
    result = local_project.cli("run", "--dev", "--set", "train.scale=2.5")
    assert result.exit_code == 0, result.output
    reasons = why_ran(result.stdout)
    assert reasons["ingest"] == "-"  # skipped
    assert reasons["train"] == "config scale 1.0 -> 2.5"
    assert reasons["evaluate"] == "input model dev1 -> dev2"


def test_comment_only_edit_names_code_only_against_the_run_with_the_same_config(
    local_project: Project,
) -> None:
    assert local_project.cli("run", "--dev").exit_code == 0
    assert local_project.cli("run", "--dev", "--set", "train.scale=2.5").exit_code == 0
    pipeline = local_project.root / "pipeline.py"
    pipeline.write_text("# a comment\n" + pipeline.read_text())
    reasons = list_reasons(local_project)
    assert reasons["ingest"] == "code pipeline.py changed"
    assert reasons["train"] == "upstream ingest will run"
    # The run compares train (scale 1.0) with the first run, not the newer scale 2.5 one.
    result = local_project.cli("run", "--dev")
    assert result.exit_code == 0, result.output
    assert why_ran(result.stdout)["train"] == "code pipeline.py changed"


def test_helper_edit_names_the_helper_file(local_project: Project) -> None:
    assert local_project.cli("run", "--dev").exit_code == 0
    local_project.write("helpers.py", "def weight(values):\n    return min(values)\n")
    assert list_reasons(local_project)["ingest"] == "code helpers.py changed"
    assert list_reasons(local_project)["train"] == "upstream ingest will run"


def test_environment_change_is_named(local_project: Project) -> None:
    assert local_project.cli("run", "--dev").exit_code == 0
    assert set(list_reasons(local_project).values()) == {"up to date"}
    local_project.write("pdm.lock", "# a new lockfile: another environment\n")
    assert list_reasons(local_project)["ingest"] == "environment changed"
