"""Whatever a task does to its process is that task's failure, never the run's.

Each task runs in a real child process. The task ``doomed`` meets one fate; ``side``
is independent of it and must still publish; the run exits 1 and ``doomed``'s failed
record names the cause. Every test runs twice: task processes forked by the fork
server, and spawned (``AEROMANCY_FORK_SERVER=0``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Project, ProjectFactory

PIPELINE = """
import os
import signal
import sys

from aeromancy import task


@task(outputs=["doomed_out"])
def doomed(ctx):
    (ctx.workdir / "out.txt").write_text("never published")
    ctx.save("doomed_out", ctx.workdir / "out.txt")
{fate}


@task(outputs=["side"])
def side(ctx):
    (ctx.workdir / "side.txt").write_text("independent")
    ctx.save("side", ctx.workdir / "side.txt")
"""

FATES = {
    "sys-exit-3": ("sys.exit(3)", "task doomed exited with code 3"),
    "sys-exit-0": ("sys.exit(0)", "task doomed exited with code 0"),
    "os-exit": ("os._exit(4)", "task doomed exited with code 4"),
    "segfault": ("import ctypes; ctypes.string_at(0)", "task doomed killed by SIGSEGV"),
    "signal": ("os.kill(os.getpid(), signal.SIGKILL)", "task doomed killed by SIGKILL"),
    "sigterm": ("os.kill(os.getpid(), signal.SIGTERM)", "task doomed killed by SIGTERM"),
    "keyboard-interrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    "sigint": ("os.kill(os.getpid(), signal.SIGINT)", "KeyboardInterrupt"),
}


@pytest.fixture(autouse=True, params=["1", "0"], ids=["forked", "spawned"])
def start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AEROMANCY_FORK_SERVER", request.param)
    return str(request.param)


def fated_project(make: ProjectFactory, fate: str) -> Project:
    return make(textwrap.dedent(PIPELINE).format(fate=textwrap.indent(fate, "    ")))


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("fate", list(FATES), ids=list(FATES))
def test_a_task_ending_its_process_fails_alone(
    local_project_with: ProjectFactory, fate: str, jobs: str
) -> None:
    code, cause = FATES[fate]
    project = fated_project(local_project_with, code)

    result = project.cli("run", "--dev", "-j", jobs)

    assert result.exit_code == 1, result.output
    assert "error: task doomed failed" in result.stderr
    assert cause in result.stderr
    [record] = project.records_of("doomed")
    assert record["status"] == "failed"
    assert cause in record["error"]
    assert record["outputs"] == []
    assert project.labels("doomed_out") == []
    assert project.labels("side") == ["dev1"]
    [side] = project.records_of("side")
    assert side["status"] == "succeeded"
    assert side["exit_code"] == 0


def test_a_crash_leaves_its_python_traceback_in_the_log(
    local_project_with: ProjectFactory, local_store_url: str
) -> None:
    project = fated_project(local_project_with, "import ctypes; ctypes.string_at(0)")
    result = project.cli("run", "--dev")
    assert result.exit_code == 1
    [record] = project.records_of("doomed")
    assert record["exit_code"] == -11
    log = Path(local_store_url, "blobs", "sha256", record["log"][:2], record["log"]).read_text()
    assert "Fatal Python error: Segmentation fault" in log
    assert "in doomed" in log


LEAKY = """
import os
import subprocess
import threading
import time

import helpers

from aeromancy import task


@task(outputs=["first"])
def wander(ctx):
    out = ctx.workdir / "first.txt"
    os.chdir("/")
    helpers.STATE["touched"] = True
    threading.Thread(target=time.sleep, args=(3600,)).start()  # never joined, not a daemon
    sleeper = subprocess.Popen(["sleep", "600"])  # holds the task's stdout and stderr
    out.write_text(str(sleeper.pid))
    ctx.save("first", out)


@task(inputs=["first"], outputs=["second"])
def check(ctx):
    out = ctx.workdir / "second.txt"
    out.write_text(repr((os.getcwd(), dict(helpers.STATE), threading.active_count())))
    ctx.save("second", out)
"""


def test_chdir_module_state_and_threads_stay_in_their_task(
    local_project_with: ProjectFactory, tmp_path: Path
) -> None:
    project = local_project_with(LEAKY)
    project.write("helpers.py", "STATE = {}\n")
    project.commit("helpers with state")

    result = project.cli("run", "--dev")

    assert result.exit_code == 0, result.output
    store = project.store()
    second = store.resolve("second", "demo", namespace="dev")
    seen = (store.materialize(second, tmp_path / "seen") / "second.txt").read_text()
    assert seen == repr((str(project.root), {}, 1))
    [wander] = project.records_of("wander")
    assert wander["status"] == "succeeded"
    first = store.resolve("first", "demo", namespace="dev")
    sleeper = int((store.materialize(first, tmp_path / "first") / "first.txt").read_text())
    assert not alive(sleeper)


def alive(pid: int) -> bool:
    """Return True while ``pid`` runs (a zombie waiting for its reaper has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"
