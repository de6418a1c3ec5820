"""The executor's tracked mode, as the container runs it (the launcher is not involved).

Inside the launcher's container `aeromancy run` calls `run_graph` with the identity the
launcher passed in `AEROMANCY_RUN_*`; this calls it the same way on the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from aeromancy.cli.run import run_graph
from aeromancy.cli.state import CliState
from aeromancy.errors import GraphError
from aeromancy.identity import RunIdentity
from aeromancy.run_options import RunOptions

if TYPE_CHECKING:
    from conftest import Project

IDENTITY = RunIdentity(
    git_commit="c" * 40,
    git_branch="main",
    git_message="train better",
    image_id="sha256:" + "1" * 64,
    base_image_id="sha256:" + "2" * 64,
    lockfile_hash="sha256:" + "3" * 64,
    dockerfile="FROM python:3.11-slim\n",
)


def run_tracked(project: Project, **options: object) -> None:
    project.monkeypatch.chdir(project.root)
    identity = RunIdentity.from_environ(IDENTITY.to_environ())
    state = CliState(store_override=project.store_url)
    run_options = RunOptions(tasks="pipeline.py", tracker="none", **options)  # type: ignore[arg-type]
    run_graph(state, run_options, "tracked", identity, identity.environment_key())


def test_tracked_run_publishes_v_versions_with_the_launcher_identity(project: Project) -> None:
    run_tracked(project)
    assert project.labels("report", namespace="tracked") == ["v1"]
    assert project.labels("report", namespace="dev") == ["v1"]  # dev runs see tracked ones
    [record] = project.records_of("train", namespace="tracked")
    assert record["namespace"] == "tracked"
    assert record["image_id"] == IDENTITY.image_id
    assert record["environment_key"] == IDENTITY.image_id
    assert record["dockerfile"] == IDENTITY.dockerfile
    assert record["git_message"] == "train better"
    assert project.records() == []  # nothing in the dev namespace

    run_tracked(project)
    assert len(project.records(namespace="tracked")) == 3


def test_dev_runs_do_not_make_tracked_runs_up_to_date(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    run_tracked(project)
    assert len(project.records(namespace="tracked")) == 3
    # And a dev run after it reuses its own dev runs, not the tracked ones.
    again = project.cli("run", "--dev")
    assert again.stdout.count("skipped (up to date)") == 3
    assert "report:dev1" in again.stdout


def test_tracked_run_never_consumes_a_dev_version(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    with pytest.raises(GraphError, match="no task produces and the store lacks: raw"):
        run_tracked(project, only=("train",))
