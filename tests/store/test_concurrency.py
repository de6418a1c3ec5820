"""Publishers racing each other, and publishers killed mid-upload, on both backends.

Real processes against a real store (a directory, or moto's S3 server over HTTP).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aeromancy.errors import NotFound
from aeromancy.store import Store, open_store

PUBLISHERS = 8

RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from aeromancy.store import Store, open_store

    url, index, source, go = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    store = open_store(url)
    store.list_versions("proj", "shared")  # warm up: client built, connection open
    Path(f"{go}.ready{index}").touch()
    while not go.exists():  # line up so every publisher lists the same versions
        time.sleep(0.005)
    version = store.publish("proj", "shared", source, metadata={"publisher": int(index)})
    print(version.version)
    """
)

# Publishes a directory whose blobs trickle in slowly (the real backend, slowed down
# after each upload) so the parent can kill it between two blob uploads.
SLOW_PUBLISHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from aeromancy.store import Store, open_store

    store = open_store(sys.argv[1])
    real_store_file = store.backend.store_file

    def slow_store_file(path, destination, progress, before=None):
        stored = real_store_file(path, destination, progress, before)
        time.sleep(0.5)
        return stored

    store.backend.store_file = slow_store_file
    store.blobs.workers = 1
    store.publish("proj", "big", Path(sys.argv[2]))
    """
)


def test_concurrent_publishers_get_distinct_versions(store_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    processes = []
    for index in range(PUBLISHERS):
        source = tmp_path / f"src{index}"
        source.mkdir()
        (source / "payload").write_text(f"publisher {index}\n" * 1000)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", RACER, store_url, str(index), str(source), str(go)],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    _wait_for(lambda: all(Path(f"{go}.ready{i}").exists() for i in range(PUBLISHERS)))
    go.touch()
    numbers = sorted(int(process.communicate(timeout=120)[0]) for process in processes)
    assert all(process.returncode == 0 for process in processes)

    assert numbers == list(range(1, PUBLISHERS + 1))
    store = open_store(store_url)
    versions = store.list_versions("proj", "shared")
    assert [v.version for v in versions] == numbers
    for version in versions:
        index = version.metadata["publisher"]
        out = store.materialize(version, tmp_path / "out" / version.label)
        assert (out / "payload").read_text() == f"publisher {index}\n" * 1000
    assert sorted(v.metadata["publisher"] for v in versions) == list(range(PUBLISHERS))


def test_killed_push_leaves_no_version_and_the_next_push_works(
    store_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "big"
    source.mkdir()
    for index in range(6):
        (source / f"part{index}").write_bytes(os.urandom(256 * 1024))
    store = open_store(store_url)
    process = subprocess.Popen([sys.executable, "-c", SLOW_PUBLISHER, store_url, str(source)])
    try:
        _wait_for_first_blob(store, process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    assert store.list_versions("proj", "big") == []
    with pytest.raises(NotFound, match="no artifact"):
        store.resolve("big", "proj")

    version = store.publish("proj", "big", source)
    assert version.label == "v1"
    out = store.materialize(version, tmp_path / "out")
    assert all((out / p.name).read_bytes() == p.read_bytes() for p in source.iterdir())


def _wait_for(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the publishers never got ready"
        time.sleep(0.01)


def _wait_for_first_blob(store: Store, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the publisher finished before it could be killed"
        if store.backend.list_prefix("blobs/"):
            return
        time.sleep(0.02)
    raise AssertionError("the publisher never uploaded a blob")


def test_temporary_files_of_dead_writers_are_swept(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    stale = store_dir / "tmp" / "123-dead.part"
    fresh = store_dir / "tmp" / "456-alive.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a blob")
    fresh.write_bytes(b"being written")
    os.utime(stale, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    source = tmp_path / "f"
    source.write_bytes(b"x")

    open_store(store_dir).publish("proj", "data", source)

    assert not stale.exists()
    assert fresh.exists()
