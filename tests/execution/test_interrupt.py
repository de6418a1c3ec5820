"""Ctrl-C of ``aeromancy run`` stops every task's process, exits 130, publishes nothing.

Each test runs with task processes forked by the fork server and spawned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ProjectFactory

AEROMANCY = Path(sys.executable).with_name("aeromancy")

PIPELINE = """
import os
import time
from pathlib import Path

from aeromancy import task


def sleep_forever(ctx, name):
    (ctx.workdir / "out.txt").write_text(name)
    ctx.save(name, ctx.workdir / "out.txt")
    Path(os.environ["STARTED_DIR"], name).write_text(str(os.getpid()))
    time.sleep(600)


@task(outputs=["one"])
def one(ctx):
    sleep_forever(ctx, "one")


@task(outputs=["two"])
def two(ctx):
    sleep_forever(ctx, "two")


@task(inputs=["one"], outputs=["three"])
def three(ctx):
    (ctx.workdir / "out.txt").write_text("three")
    ctx.save("three", ctx.workdir / "out.txt")
"""


@pytest.fixture(autouse=True, params=["1", "0"], ids=["forked", "spawned"])
def start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AEROMANCY_FORK_SERVER", request.param)
    return str(request.param)


def alive(pid: int) -> bool:
    """Return True while ``pid`` runs (a zombie waiting for its reaper has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def wait_for(condition: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_ctrl_c_stops_every_task_and_exits_130(
    local_project_with: ProjectFactory, tmp_path: Path
) -> None:
    project = local_project_with(PIPELINE)
    started = tmp_path / "started"
    started.mkdir()
    process = subprocess.Popen(
        [str(AEROMANCY), "--store", project.store_url, "run", "--dev", "-j", "2"],
        cwd=project.root,
        env={**os.environ, "STARTED_DIR": str(started)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_for(lambda: len(list(started.iterdir())) == 2)
    pids = [int(path.read_text()) for path in started.iterdir()]

    # As a terminal's Ctrl-C does: SIGINT to the whole foreground process group.
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert not any(alive(pid) for pid in pids)
    assert project.store_is_empty()


SWEPT = """
import os
import time
from pathlib import Path

from aeromancy import task


@task(outputs=["model"])
def train(ctx, lr: float = 0.1):
    (ctx.workdir / "out.txt").write_text(str(lr))
    ctx.save("model", ctx.workdir / "out.txt")
    Path(os.environ["STARTED_DIR"], str(lr)).write_text(str(os.getpid()))
    time.sleep(600)
"""


def test_ctrl_c_during_a_sweep_stops_every_variant_and_exits_130(
    local_project_with: ProjectFactory, tmp_path: Path
) -> None:
    project = local_project_with(SWEPT)
    started = tmp_path / "started"
    started.mkdir()
    sweep = ["--sweep", "train.lr=0.1,0.2,0.3,0.4"]
    process = subprocess.Popen(
        [str(AEROMANCY), "--store", project.store_url, "run", "--dev", "-j", "2", *sweep],
        cwd=project.root,
        env={**os.environ, "STARTED_DIR": str(started)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_for(lambda: len(list(started.iterdir())) == 2)  # two variants at a time
    pids = [int(path.read_text()) for path in started.iterdir()]

    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert not any(alive(pid) for pid in pids)
    assert len(list(started.iterdir())) == 2  # the variants not started never start
    assert project.store_is_empty()
