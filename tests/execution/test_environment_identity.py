"""The environment part of a fingerprint: the recipe of the image, not the image's id."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from aeromancy.cli.run import run_graph
from aeromancy.cli.state import CliState
from aeromancy.identity import RunIdentity
from aeromancy.run_options import RunOptions

if TYPE_CHECKING:
    from conftest import Project

BUILT = RunIdentity(
    git_commit="c" * 40,
    image_id="sha256:" + "1" * 64,
    environment_image_id="sha256:" + "4" * 64,
    environment_recipe="recipe:" + "5" * 64,
    base_image_id="sha256:" + "2" * 64,
    lockfile_hash="sha256:" + "3" * 64,
)
# The same recipe built again (another machine, after `docker image prune`): new image ids.
REBUILT = replace(BUILT, image_id="sha256:" + "6" * 64, environment_image_id="sha256:" + "7" * 64)
OTHER_RECIPE = replace(REBUILT, environment_recipe="recipe:" + "8" * 64)


def run_tracked(project: Project, identity: RunIdentity) -> None:
    """Run as the container does: the identity arrives in AEROMANCY_RUN_* variables."""
    project.monkeypatch.chdir(project.root)
    passed = RunIdentity.from_environ(identity.to_environ())
    state = CliState(store_override=project.store_url)
    options = RunOptions(tasks="pipeline.py", tracker="none")
    run_graph(state, options, "tracked", passed, passed.environment_key())


def test_same_recipe_rebuilt_is_up_to_date(local_project: Project) -> None:
    run_tracked(local_project, BUILT)
    assert len(local_project.records(namespace="tracked")) == 3
    run_tracked(local_project, REBUILT)
    assert len(local_project.records(namespace="tracked")) == 3  # every task skipped
    [record] = local_project.records_of("train", namespace="tracked")
    assert record["environment_key"] == BUILT.environment_recipe


def test_another_recipe_reruns_and_says_environment_changed(
    local_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    run_tracked(local_project, BUILT)
    capsys.readouterr()
    run_tracked(local_project, OTHER_RECIPE)
    # The outputs are byte-identical, so each consumer sees the same inputs: all three say so.
    assert capsys.readouterr().out.count("environment changed") == 3
    assert len(local_project.records(namespace="tracked")) == 6
    # Byte-identical outputs: the rebuilt environment made no new versions.
    assert local_project.labels("report", namespace="tracked") == ["v1"]
