"""Task processes forked by the run's fork server: each its own process, as a spawned one.

The fork server (``execution/child/zygote.py``) is one process of the project's Python
per run; it imported the child runtime, never the task module, so every task process
imports the task module afresh. ``AEROMANCY_FORK_SERVER=0`` spawns every task process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Project, ProjectFactory

PIPELINE = """
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from aeromancy import task

print("task module imported")


def describe(ctx, name):
    parent = os.getppid()
    cmdline = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\\0")
    facts = {"pid": os.getpid(), "ppid": parent, "cmdline": [c.decode() for c in cmdline]}
    (ctx.workdir / "facts.json").write_text(json.dumps(facts))
    ctx.save(name, ctx.workdir / "facts.json")


@task(outputs=["a"])
def first(ctx):
    describe(ctx, "a")


@task(outputs=["b"])
def second(ctx):
    describe(ctx, "b")
"""


def facts(project: Project, name: str, tmp_path: Path) -> dict[str, Any]:
    store = project.store()
    version = store.resolve(name, "demo", namespace="dev")
    found: dict[str, Any] = json.loads(
        (store.materialize(version, tmp_path / name) / "facts.json").read_text()
    )
    return found


def log_of(project: Project, record: dict[str, Any]) -> str:
    sha = record["log"]
    return Path(project.store_url, "blobs", "sha256", sha[:2], sha).read_text()


def test_every_task_process_is_forked_by_one_fork_server(
    local_project_with: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AEROMANCY_FORK_SERVER", raising=False)
    project = local_project_with(PIPELINE)

    result = project.cli("run", "--dev")

    assert result.exit_code == 0, result.output
    a, b = facts(project, "a", tmp_path), facts(project, "b", tmp_path)
    assert a["ppid"] == b["ppid"] != os.getpid()
    assert a["pid"] != b["pid"]
    assert a["cmdline"][-4:-2] == ["aeromancy.execution.child", "zygote"]
    assert not Path(f"/proc/{a['ppid']}").exists()  # the run ended its fork server
    # The fork server never imports the task module: each task process does, as a
    # fresh one would, so import-time output lands in each task's log.
    for record in project.records():
        assert "task module imported" in log_of(project, record)


def test_with_the_fork_server_off_every_task_process_is_spawned(
    local_project_with: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AEROMANCY_FORK_SERVER", "0")
    project = local_project_with(PIPELINE)

    result = project.cli("run", "--dev")

    assert result.exit_code == 0, result.output
    a = facts(project, "a", tmp_path)
    assert a["ppid"] == os.getpid()  # the CLI runs in this process


KILLER = """
import os
import signal

from aeromancy import task


@task(outputs=["a"])
def first(ctx):
    os.kill(os.getppid(), signal.SIGKILL)  # the fork server, which takes this task along
    os.kill(os.getpid(), signal.SIGSTOP)  # never reached: killed with the fork server


@task(outputs=["b"])
def second(ctx):
    (ctx.workdir / "ppid").write_text(str(os.getppid()))
    ctx.save("b", ctx.workdir / "ppid")
"""


def test_a_dead_fork_server_fails_its_task_and_the_rest_are_spawned(
    local_project_with: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AEROMANCY_FORK_SERVER", raising=False)
    project = local_project_with(KILLER)

    result = project.cli("run", "--dev", "-j", "1")

    assert result.exit_code == 1, result.output
    [first] = project.records_of("first")
    assert "task first killed by SIGKILL" in first["error"]
    store = project.store()
    b = store.materialize(store.resolve("b", "demo", namespace="dev"), tmp_path / "b")
    assert int((b / "ppid").read_text()) == os.getpid()


MEMORY = """
from aeromancy import task


@task(outputs=["small"])
def small(ctx):
    (ctx.workdir / "x").write_text("x")
    ctx.save("small", ctx.workdir / "x")


@task(outputs=["big"])
def big(ctx):
    block = bytearray(300 << 20)  # zero-filled: every page is touched
    (ctx.workdir / "x").write_text(str(len(block)))
    ctx.save("big", ctx.workdir / "x")
"""


@pytest.mark.parametrize("fork_server", ["1", "0"], ids=["forked", "spawned"])
def test_the_recorded_peak_rss_is_the_tasks_own(
    local_project_with: ProjectFactory, monkeypatch: pytest.MonkeyPatch, fork_server: str
) -> None:
    monkeypatch.setenv("AEROMANCY_FORK_SERVER", fork_server)
    project = local_project_with(MEMORY)

    result = project.cli("run", "--dev")

    assert result.exit_code == 0, result.output
    [small], [big] = project.records_of("small"), project.records_of("big")
    mib = 1 << 20
    # An interpreter with the child runtime and the task module: tens of MiB, not the
    # test process's footprint (which holds pandas, mlflow, moto, ...).
    assert 5 * mib < small["max_rss_bytes"] < 80 * mib
    assert big["max_rss_bytes"] - small["max_rss_bytes"] > 290 * mib
    assert big["cpu_user_s"] + big["cpu_system_s"] > 0


def test_the_fork_servers_thread_check_sees_native_threads() -> None:
    # The fork server forks only while native_threads() is 1; the check must see threads.
    # In a fresh interpreter, so no thread left by an earlier test can exit in between.
    check = (
        "import threading\n"
        "from aeromancy.execution.child.zygote import native_threads\n"
        "before = native_threads()\n"
        "stop = threading.Event()\n"
        "thread = threading.Thread(target=stop.wait)\n"
        "thread.start()\n"
        "during = native_threads()\n"
        "stop.set()\n"
        "thread.join()\n"
        "print(before, during)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["1", "2"]
