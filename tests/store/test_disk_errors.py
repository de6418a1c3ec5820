"""A disk that refuses writes gives one line and exit 3, and leaves nothing behind.

The failures are real: the aeromancy command runs in a child process whose file size
limit (RLIMIT_FSIZE) makes the kernel refuse any write past 1 MiB with EFBIG, and,
where this test may mount one, a 1 MiB tmpfs really fills up (ENOSPC).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aeromancy.errors import UsageError
from aeromancy.store import open_store

AEROMANCY = Path(sys.executable).with_name("aeromancy")
LIMIT = 1 << 20
BIG = os.urandom(3 * LIMIT)


def limit_file_size() -> None:
    """In the child: writes past LIMIT fail with EFBIG instead of killing it (SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def aeromancy(project: Path, *args: str, limited: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AEROMANCY), *args],
        cwd=project,
        capture_output=True,
        text=True,
        preexec_fn=limit_file_size if limited else None,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "demo"\n')
    (root / "big.bin").write_bytes(BIG)
    return root


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # error + hint
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_push_that_cannot_write_the_store_exits_3_and_leaves_nothing(
    project: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"

    result = aeromancy(project, "--store", str(store), "push", "data", "big.bin", limited=True)

    assert_one_line_error(result, "cannot copy", "File too large", "--store")
    assert files_under(store) == []
    # The same push with room to write succeeds.
    assert aeromancy(project, "--store", str(store), "push", "data", "big.bin").returncode == 0


def test_pull_that_cannot_write_the_cache_exits_3_and_leaves_nothing(
    project: Path, store_url: str
) -> None:
    assert aeromancy(project, "--store", store_url, "push", "data", "big.bin").returncode == 0
    cache = Path(os.environ["AEROMANCY_CACHE"])
    # The push may have left the stat cache there (files_under lists only what exists).
    before = files_under(cache) if cache.exists() else []

    result = aeromancy(project, "--store", store_url, "pull", "data", "out", limited=True)

    if store_url.startswith("s3://"):
        assert_one_line_error(result, "cannot write to the cache", "AEROMANCY_CACHE")
    else:  # a local store's blob is copied straight into DEST, with no cache copy
        assert_one_line_error(result, "cannot write out/big.bin", "File too large")
    assert (files_under(cache) if cache.exists() else []) == before
    assert not (project / "out").exists()  # no file, no temporary file, no directory


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs, mounted for the test; skipped where mounting is not allowed."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_pull_onto_a_full_disk_removes_the_files_it_placed(
    project: Path, tmp_path: Path, full_disk: Path
) -> None:
    # Two files: the small one fits and is placed first, the big one does not fit.
    data = project / "data"
    (data / "b" / "deep").mkdir(parents=True)
    (data / "a-small.txt").write_text("fits\n")
    (data / "b" / "deep" / "big.bin").write_bytes(BIG)
    store = tmp_path / "store"
    assert aeromancy(project, "--store", str(store), "push", "data", "data").returncode == 0

    result = aeromancy(project, "--store", str(store), "pull", "data", str(full_disk / "out"))

    assert_one_line_error(result, "No space left on device")
    assert list(full_disk.iterdir()) == []  # no file, and no directory it made


def test_push_onto_a_full_disk_exits_3_and_leaves_nothing(project: Path, full_disk: Path) -> None:
    store = full_disk / "store"

    result = aeromancy(project, "--store", str(store), "push", "data", "big.bin")

    assert_one_line_error(result, "No space left on device", "free some space")
    assert files_under(full_disk) == []


def test_a_vanished_file_is_a_usage_error(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    gone = tmp_path / "gone.bin"

    with pytest.raises(UsageError, match=r"cannot read .*gone\.bin") as info:
        store.backend.store_file(gone, lambda digest: f"blobs/{digest}", lambda _: None)

    assert info.value.exit_code == 2
