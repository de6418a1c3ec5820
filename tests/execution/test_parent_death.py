"""``aeromancy run`` killed outright (SIGKILL: no handler runs) leaves no task running.

The task processes die with their parent: a forked one with the fork server, which
kills them and their process groups when ``aeromancy run`` is gone; a spawned one
(``AEROMANCY_FORK_SERVER=0``) by the kernel's parent-death signal.
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
    from collections.abc import Callable

    from conftest import ProjectFactory

AEROMANCY = Path(sys.executable).with_name("aeromancy")

PIPELINE = """
import os
import subprocess
import time
from pathlib import Path

from aeromancy import task


@task(outputs=["out"])
def linger(ctx):
    sleeper = subprocess.Popen(["sleep", "600"])
    pids = f"{os.getpid()} {os.getppid()} {sleeper.pid}"
    Path(os.environ["STARTED_FILE"]).write_text(pids)
    time.sleep(600)
"""


@pytest.mark.parametrize("fork_server", ["1", "0"], ids=["forked", "spawned"])
def test_sigkill_of_the_run_leaves_no_task_process(
    local_project_with: ProjectFactory, tmp_path: Path, fork_server: str
) -> None:
    project = local_project_with(PIPELINE)
    started = tmp_path / "started"
    env = {**os.environ, "STARTED_FILE": str(started), "AEROMANCY_FORK_SERVER": fork_server}
    run = subprocess.Popen(
        [str(AEROMANCY), "--store", project.store_url, "run", "--dev"],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: started.exists() and len(started.read_text().split()) == 3)
        task, parent, sleeper = (int(pid) for pid in started.read_text().split())
        assert (parent != run.pid) == (fork_server == "1")  # forked by the fork server

        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)

        wait_for(lambda: not alive(task) and not alive(parent), seconds=5)
        if fork_server == "1":  # the fork server kills the task's process group too
            wait_for(lambda: not alive(sleeper), seconds=5)
    finally:
        with_leftovers_killed(started)


def alive(pid: int) -> bool:
    """Return True while ``pid`` runs (a zombie waiting for its reaper has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not so after {seconds} s")


def with_leftovers_killed(started: Path) -> None:
    """Kill what a failed assertion may have left running (this test's own processes)."""
    if not started.exists():
        return
    for pid in (int(p) for p in started.read_text().split()[::2]):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
