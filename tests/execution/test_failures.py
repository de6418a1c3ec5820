"""A failing task: exit 1, traceback shown, nothing published for it or its consumers."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Project, ProjectFactory

AEROMANCY = Path(sys.executable).with_name("aeromancy")

RAISING = """
from aeromancy import task

@task(outputs=["raw"])
def ingest(ctx):
    path = ctx.workdir / "raw.txt"
    path.write_text("1 2 3")
    ctx.save("raw", path)

@task(inputs=["raw"], outputs=["model"])
def train(ctx):
    path = ctx.workdir / "model.txt"
    path.write_text("half-written")
    ctx.save("model", path)
    raise RuntimeError("training diverged")

@task(inputs=["model"], outputs=["report"])
def evaluate(ctx):
    path = ctx.workdir / "report.txt"
    path.write_text("never")
    ctx.save("report", path)

@task(outputs=["side"])
def side(ctx):
    path = ctx.workdir / "side.txt"
    path.write_text("independent")
    ctx.save("side", path)
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_raising_task_publishes_nothing_and_blocks_its_consumers(
    project_with: ProjectFactory, jobs: str
) -> None:
    project = project_with(RAISING)
    result = project.cli("run", "--dev", "-j", jobs)
    assert result.exit_code == 1, result.output
    assert "RuntimeError: training diverged" in result.stderr
    assert 'raise RuntimeError("training diverged")' in result.stderr
    assert "error: task train failed" in result.stderr
    assert "not run (upstream train failed)" in result.stdout

    assert project.labels("raw") == ["dev1"]
    assert project.labels("side") == ["dev1"]
    assert project.labels("model") == []
    assert project.labels("report") == []
    [failed] = project.records_of("train")
    assert failed["status"] == "failed"
    assert failed["outputs"] == []
    assert "training diverged" in failed["error"]
    assert project.records_of("evaluate") == []

    # A failed run is never reused: the next run tries train again.
    again = project.cli("run", "--dev")
    assert again.exit_code == 1
    assert len(project.records_of("train")) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("pass", "task make returned without saving out"),
        ("ctx.save('other', p)", "saves 'other', which is not one of its outputs"),
        ("ctx.save('out', p); ctx.save('out', p)", "saves 'out' twice"),
        ("ctx.load('nothing')", "loads 'nothing', which is not one of its inputs"),
    ],
    ids=["missing-output", "undeclared-output", "second-save", "undeclared-input"],
)
def test_output_contract_violations_fail_the_task(
    project_with: ProjectFactory, body: str, message: str
) -> None:
    project = project_with(
        f"""
        from aeromancy import task

        @task(outputs=["out"])
        def make(ctx):
            p = ctx.workdir / "f.txt"
            p.write_text("x")
            {body}
        """
    )
    result = project.cli("run", "--dev")
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert project.labels("out") == []
    [record] = project.records_of("make")
    assert record["status"] == "failed"


def limit_writes_to_16_kib() -> None:
    """In the child: a file may not grow past 16 KiB (EFBIG, not SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 10, 16 << 10))


def test_a_run_record_the_store_refuses_is_reported_with_exit_3(local_project: Project) -> None:
    # Outputs are a few bytes; run records (with the environment capture) are larger
    # than 16 KiB, so the kernel refuses exactly the record writes.
    result = subprocess.run(
        [str(AEROMANCY), "--store", local_project.store_url, "run", "--dev"],
        cwd=local_project.root,
        capture_output=True,
        text=True,
        preexec_fn=limit_writes_to_16_kib,
        check=False,
    )

    assert result.returncode == 3, result.stderr
    assert "ran (record not saved)" in result.stdout
    assert "cannot write dev/runs/demo/" in result.stderr
    assert "Traceback" not in result.stderr
    assert local_project.records() == []
