"""A task's stdout and stderr: shown as written, stored as a log blob with its record,
and the resources its process used recorded alongside."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import ProjectFactory

PIPELINE = """
import sys

from aeromancy import task


@task(outputs=["loud"])
def loud(ctx):
    print("loud says hello on stdout")
    print("loud complains on stderr", file=sys.stderr)
    ballast = bytearray(200 << 20)  # 200 MiB, touched: peak RSS must show it
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    sum(range(3_000_000))  # some CPU time
    (ctx.workdir / "out.txt").write_text("x")
    ctx.save("loud", ctx.workdir / "out.txt")


@task(outputs=["quiet"])
def quiet(ctx):
    (ctx.workdir / "out.txt").write_text("y")
    ctx.save("quiet", ctx.workdir / "out.txt")
"""


def blob_text(store_url: str, record: dict[str, Any]) -> str:
    sha = str(record["log"])
    data = Path(store_url, "blobs", "sha256", sha[:2], sha).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha
    assert len(data) == record["log_bytes"]
    return data.decode()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_output_is_shown_and_stored_with_the_record(
    local_project_with: ProjectFactory, local_store_url: str, jobs: str
) -> None:
    project = local_project_with(PIPELINE)
    result = project.cli("run", "--dev", "-j", jobs)
    assert result.exit_code == 0, result.output

    prefix = "[loud] " if jobs == "2" else ""
    assert f"{prefix}loud says hello on stdout\n" in result.stdout
    assert f"{prefix}loud complains on stderr\n" in result.stderr
    assert "complains" not in result.stdout

    [record] = project.records_of("loud")
    log = blob_text(local_store_url, record)
    assert "loud says hello on stdout\n" in log
    assert "loud complains on stderr\n" in log
    assert "[loud]" not in log

    [silent] = project.records_of("quiet")
    assert silent["log"] is None
    assert silent["log_bytes"] == 0


def test_the_record_carries_the_resources_of_the_task_process(
    local_project_with: ProjectFactory,
) -> None:
    project = local_project_with(PIPELINE)
    # A parent of 300 MiB: Linux counts the parent's footprint at the fork in a child's
    # wait4 ru_maxrss, so the record must take the child's own peak, not that figure.
    ballast = b"x" * (300 << 20)
    assert project.cli("run", "--dev").exit_code == 0
    del ballast
    [loud] = project.records_of("loud")
    [quiet] = project.records_of("quiet")
    assert loud["exit_code"] == 0
    assert loud["max_rss_bytes"] >= 200 << 20
    assert quiet["max_rss_bytes"] < 200 << 20
    assert loud["cpu_user_s"] > 0
    assert loud["cpu_system_s"] >= 0
    assert loud["wall_s"] > 0
    assert loud["cpu_user_s"] > quiet["cpu_user_s"]
