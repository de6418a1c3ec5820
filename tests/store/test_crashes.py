"""A process killed with SIGKILL leaves nothing visible, and the next one cleans up after it.

Each test runs the real ``aeromancy`` command in a child process, waits until it has
a temporary file (or folder) on disk, kills it with SIGKILL, and then checks what a
reader sees and what the next command leaves behind.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aeromancy.leftovers import owner
from aeromancy.store import open_store
from aeromancy.store.local import LocalBackend

AEROMANCY = Path(sys.executable).with_name("aeromancy")
#: How long to wait for the child to reach the moment it is killed at (not a timing test).
WAIT_SECONDS = 120
PYPROJECT = '[tool.aeromancy]\nproject = "demo"\n'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def big_files(root: Path, count: int, size: int) -> dict[str, bytes]:
    """Write ``count`` distinct files of ``size`` bytes under ``root``; return them."""
    root.mkdir(parents=True)
    files = {}
    pattern = bytes(range(256)) * (size // 256)
    for index in range(count):
        data = index.to_bytes(4, "big") + pattern
        (root / f"part-{index:02d}.bin").write_bytes(data)
        files[f"part-{index:02d}.bin"] = data
    return files


def start(store_url: str, cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(AEROMANCY), "--store", store_url, *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill_when(process: subprocess.Popen[bytes], seen: Callable[[], bool]) -> bool:
    """SIGKILL ``process`` (and its group) as soon as ``seen()``; False if it ended first."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        if seen():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
    process.wait()
    return False


def parts(directory: Path, suffix: str) -> list[Path]:
    return [p for p in directory.rglob(f"*{suffix}")] if directory.exists() else []


def run(store_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AEROMANCY), "--store", store_url, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "small.txt").write_text("small")
    return root


def test_a_killed_push_leaves_no_version_and_the_next_push_removes_its_temp_files(
    local_store_url: str, project: Path
) -> None:
    big_files(project / "data", 4, 64 << 20)
    tmp = Path(local_store_url) / "tmp"
    for _attempt in range(5):
        push = start(local_store_url, project, "push", "data", "data")
        if kill_when(push, lambda: bool(parts(tmp, ".part"))):
            break
    else:
        pytest.fail("the push always finished before it could be killed")
    assert parts(tmp, ".part"), "the killed push should have left its temporary copy"
    assert open_store(local_store_url).list_versions("demo", "data") == []
    # A temporary file of a live writer (this test process) must survive the sweep.
    live = tmp / f"{owner()}-{'0' * 32}.part"
    live.write_bytes(b"being written")

    pushed = run(local_store_url, project, "push", "small", "small.txt")

    assert pushed.returncode == 0, pushed.stderr
    assert parts(tmp, ".part") == [live]


def _killed_pull(store_url: str, project: Path, dest: Path, watched: Path, suffix: str) -> None:
    """Start pulls into ``dest`` until one is killed while ``watched`` holds a temp file."""
    for attempt in range(5):
        pull = start(store_url, project, "pull", "data", str(dest))
        if kill_when(pull, lambda: bool(parts(watched, suffix))):
            return
        subprocess.run(["rm", "-rf", str(dest)], check=True)
        assert attempt < 4, "the pull always finished before it could be killed"


def test_a_killed_pull_leaves_no_partial_file_and_a_re_pull_completes_it(
    store_url: str, project: Path
) -> None:
    files = big_files(project / "data", 6, 32 << 20)
    assert run(store_url, project, "push", "data", "data").returncode == 0
    # Warm the cache, so that the killed pull is busy writing DEST.
    assert run(store_url, project, "pull", "data", str(project / "warm")).returncode == 0
    dest = project / "dest"

    _killed_pull(store_url, project, dest, dest, ".aeromancy-part")

    leftovers = parts(dest, ".aeromancy-part")
    assert leftovers, "the killed pull should have left a temporary file"
    complete = {p.name: p for p in dest.iterdir() if not p.name.endswith(".aeromancy-part")}
    for name, path in complete.items():
        assert path.read_bytes() == files[name], f"{name} is visible but not whole"
    inodes = {name: path.stat().st_ino for name, path in complete.items()}

    again = run(store_url, project, "pull", "data", str(dest))

    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)
    for name, data in files.items():
        assert (dest / name).read_bytes() == data
    assert {name: (dest / name).stat().st_ino for name in inodes} == inodes  # kept


def test_a_pull_killed_while_downloading_leaves_the_cache_clean_for_the_next(
    s3_store_url: str, project: Path, tmp_path: Path
) -> None:
    # S3 only: a pull from a local store writes no cache copy (see aeromancy/store/pulling.py);
    # its temporary files in DEST are the previous test's.
    store_url = s3_store_url
    files = big_files(project / "data", 3, 32 << 20)
    assert run(store_url, project, "push", "data", "data").returncode == 0
    cache_tmp = Path(os.environ["AEROMANCY_CACHE"]) / "tmp"

    _killed_pull(store_url, project, project / "dest", cache_tmp, ".part")
    assert parts(cache_tmp, ".part"), "the killed pull should have left a partial download"

    again = run(store_url, project, "pull", "data", str(project / "dest2"))

    assert again.returncode == 0, again.stderr
    assert parts(cache_tmp, ".part") == []
    assert {p.name: p.read_bytes() for p in (project / "dest2").iterdir()} == files


PIPELINE = """\
import time
from aeromancy import task

@task(outputs=["slow"])
def slow(ctx):
    (ctx.workdir / "started").write_text("yes")
    time.sleep(600)

@task(outputs=["quick"])
def quick(ctx):
    path = ctx.workdir / "quick.txt"
    path.write_text("done")
    ctx.save("quick", path)
"""


def test_a_killed_run_leaves_its_task_folder_only_until_the_next_run(
    local_store_url: str, project: Path, tmp_path: Path
) -> None:
    (project / "pipeline.py").write_text(PIPELINE)
    for command in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *command], cwd=project, check=True)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}

    def task_folders() -> list[Path]:
        return [p for p in scratch.glob("aeromancy-task-*") if (p / "work" / "started").exists()]

    run_slow = subprocess.Popen(
        [str(AEROMANCY), "--store", local_store_url, "run", "--dev", "--only", "slow"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert kill_when(run_slow, lambda: bool(task_folders()))
    [left] = task_folders()

    quick = subprocess.run(
        [str(AEROMANCY), "--store", local_store_url, "run", "--dev", "--only", "quick"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert quick.returncode == 0, quick.stderr
    assert not left.exists()
    assert list(scratch.glob("aeromancy-task-*")) == []


@pytest.mark.s3
def test_a_push_killed_mid_multipart_upload_has_its_upload_aborted_by_the_next(
    s3_store_url: str, project: Path
) -> None:
    import boto3

    big_files(project / "data", 1, 64 << 20)
    big_files(project / "more", 1, 40 << 20)
    bucket = s3_store_url.split("/")[2]
    client = boto3.session.Session().client("s3")

    def uploads() -> list[str]:
        listing = client.list_multipart_uploads(Bucket=bucket)
        return [upload["Key"] for upload in listing.get("Uploads", [])]

    for _attempt in range(5):
        push = start(s3_store_url, project, "push", "data", "data")
        if kill_when(push, lambda: bool(uploads())):
            break
    else:
        pytest.fail("the push always finished before it could be killed")
    [left] = uploads()
    assert open_store(s3_store_url).list_versions("demo", "data") == []

    pushed = run(s3_store_url, project, "push", "more", "more")

    assert pushed.returncode == 0, pushed.stderr
    assert left not in uploads()


def test_a_forked_child_names_its_temporary_files_by_its_own_pid(tmp_path: Path) -> None:
    # The sweep keeps the files of live owners only: a child writing under its parent's
    # pid would lose them once the parent exits.
    backend = LocalBackend(tmp_path / "store")
    in_parent = backend._temp_path()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its name and leave at once
        try:
            os.write(write, backend._temp_path().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as reader:
        in_child = reader.read()
    os.waitpid(pid, 0)
    assert Path(in_parent).name.startswith(f"{os.getpid()}@")
    assert Path(in_child).name.startswith(f"{pid}@")
    assert owner().startswith(f"{os.getpid()}@")
