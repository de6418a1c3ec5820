"""A launcher that is terminated or killed leaves no secrets on disk and no container running.

Real ``aeromancy run`` (tracked) processes on the real Docker engine, real signals.
Only containers carrying this test's own label are looked at (others share the engine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

pytestmark = pytest.mark.docker

AEROMANCY = str(Path(sys.executable).with_name("aeromancy"))
SLOW_PIPELINE = """\
import time

from aeromancy import Context, task


@task(outputs=["slow"])
def crawl(ctx: Context) -> None:
    out = ctx.workdir / "slow.txt"
    out.write_text("started")
    print("task started", flush=True)
    time.sleep(300)
    ctx.save("slow", out)
"""
SECRET = "s3cr3t-" + uuid.uuid4().hex


def start_slow_run(
    make_project: Callable[..., Path], store: str, scratch: Path
) -> tuple[subprocess.Popen[str], str]:
    """Start a tracked run whose task sleeps; return it once the task runs, and its label."""
    marker = f"aeromancy-test={uuid.uuid4().hex}"
    root = make_project(
        pipeline=SLOW_PIPELINE,
        extra=f'docker_run_args = ["--label", "{marker}"]\nenv_passthrough = ["MY_TOKEN"]\n',
    )
    process = subprocess.Popen(
        [AEROMANCY, "--store", store, "run", "--tracker", "none"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch), "MY_TOKEN": SECRET},
        start_new_session=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # the container's output comes through the launcher
        if "task started" in line:
            break
    return process, marker


def secret_files(scratch: Path) -> list[Path]:
    found = []
    for path in scratch.rglob("*"):
        if path.is_file() and SECRET.encode() in path.read_bytes():
            found.append(path)
    return found


def containers(marker: str) -> list[object]:
    return docker.from_env().containers.list(all=True, filters={"label": marker})


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "tmpdir"
    path.mkdir()
    return path


def test_sigterm_to_the_launcher_stops_its_container_and_leaves_no_env_file(
    make_project: Callable[..., Path], local_store_url: str, scratch: Path
) -> None:
    process, marker = start_slow_run(make_project, local_store_url, scratch)
    assert len(containers(marker)) == 1
    assert secret_files(scratch) == []  # gone once the container was created

    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=120)
    finally:
        process.kill()

    assert code == 130
    assert containers(marker) == []
    assert secret_files(scratch) == []


def test_a_killed_launchers_container_is_stopped_by_the_next_run(
    make_project: Callable[..., Path], local_store_url: str, scratch: Path
) -> None:
    process, marker = start_slow_run(make_project, local_store_url, scratch)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert len(containers(marker)) == 1  # orphaned, still running
    assert secret_files(scratch) == []

    from aeromancy.launcher.container import stop_abandoned_containers

    stop_abandoned_containers()  # what the next `aeromancy run` does first

    deadline = time.monotonic() + 60
    while containers(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers(marker) == []
