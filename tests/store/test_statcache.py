"""The stat cache: unchanged files are not read again; any sign of change re-hashes them.

Bytes read are counted by the kernel (``rchar`` in /proc/self/io), so "reads no bytes"
is measured, not inferred. Entries are only written for files that last changed at
least RACY_SECONDS earlier; the tests that need trusted entries give the cache a clock
running that much ahead rather than sleeping.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from aeromancy.store import Store, open_store
from aeromancy.store.statcache import RACY_SECONDS, FileStat, StatCache

SIZE = 4 << 20
#: Files a local store reads in one call and writes from memory (under one chunk).
SMALL_FILES, SMALL_SIZE = 200, 4096
AHEAD_NS = int((RACY_SECONDS + 1) * 1e9)


def bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def future_clock() -> int:
    return time.time_ns() + AHEAD_NS


@pytest.fixture
def store(local_store_url: str, tmp_path: Path) -> Store:
    opened = open_store(local_store_url)
    assert opened.blobs.stat_cache is not None
    opened.blobs.stat_cache = StatCache(tmp_path / "stat", clock=future_clock)
    return opened


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for index in range(4):
        (folder / f"part-{index}.bin").write_bytes(os.urandom(SIZE))
    return folder


@pytest.fixture
def small_data(tmp_path: Path) -> Path:
    folder = tmp_path / "small"
    for index in range(SMALL_FILES):
        part = folder / f"dir-{index % 10}" / f"part-{index}.bin"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(os.urandom(SMALL_SIZE))
    return folder


def push_reading(store: Store, folder: Path) -> tuple[int, dict[str, str]]:
    """Push ``folder``; return the bytes this process read and the pushed digests by path."""
    before = bytes_read()
    version = store.publish("proj", "data", folder)
    return bytes_read() - before, {entry.path: entry.sha256 for entry in version.files}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_repush_of_unchanged_files_reads_none_of_their_bytes(store: Store, data: Path) -> None:
    first, digests = push_reading(store, data)
    assert first >= 4 * SIZE
    again, same = push_reading(store, data)
    assert again < SIZE // 4
    assert same == digests


def test_repush_of_unchanged_small_files_reads_none_of_their_bytes(
    store: Store, small_data: Path
) -> None:
    total = SMALL_FILES * SMALL_SIZE
    first, digests = push_reading(store, small_data)
    assert first >= total
    again, same = push_reading(store, small_data)
    assert again < total // 4  # the stat cache's own database, no file
    assert same == digests
    touched = small_data / "dir-3" / "part-3.bin"
    touched.write_bytes(os.urandom(SMALL_SIZE))
    read, changed = push_reading(store, small_data)
    assert changed["dir-3/part-3.bin"] == sha256_of(touched) != digests["dir-3/part-3.bin"]
    assert read >= SMALL_SIZE


def test_same_size_new_mtime_is_hashed_again(store: Store, data: Path) -> None:
    push_reading(store, data)
    target = data / "part-0.bin"
    info = target.stat()
    target.write_bytes(os.urandom(SIZE))  # same size, new bytes
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    read, digests = push_reading(store, data)
    assert SIZE <= read < 2 * SIZE
    assert digests["part-0.bin"] == sha256_of(target)


def test_same_mtime_new_size_is_hashed_again(store: Store, data: Path) -> None:
    push_reading(store, data)
    target = data / "part-1.bin"
    info = target.stat()
    target.write_bytes(os.urandom(SIZE + 1))
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))  # the old mtime, put back
    read, digests = push_reading(store, data)
    assert read >= SIZE
    assert digests["part-1.bin"] == sha256_of(target)


def test_replaced_inode_is_hashed_again(store: Store, data: Path, tmp_path: Path) -> None:
    push_reading(store, data)
    target = data / "part-2.bin"
    info = target.stat()
    replacement = tmp_path / "replacement.bin"
    replacement.write_bytes(os.urandom(SIZE))
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(replacement, target)  # same size, same mtime, another inode
    assert target.stat().st_ino != info.st_ino
    read, digests = push_reading(store, data)
    assert read >= SIZE
    assert digests["part-2.bin"] == sha256_of(target)


def test_a_lookup_matches_only_the_exact_state(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "stat", clock=future_clock)
    path = tmp_path / "file"
    path.write_bytes(b"x")
    state = FileStat.of(path)
    cache.record([(path, state, "d" * 64)])
    assert cache.lookup([(path, state)]) == {path: "d" * 64}
    for changed in (
        FileStat(state.size + 1, state.mtime_ns, state.ctime_ns, state.inode, state.device),
        FileStat(state.size, state.mtime_ns + 1, state.ctime_ns, state.inode, state.device),
        FileStat(state.size, state.mtime_ns, state.ctime_ns + 1, state.inode, state.device),
        FileStat(state.size, state.mtime_ns, state.ctime_ns, state.inode + 1, state.device),
        FileStat(state.size, state.mtime_ns, state.ctime_ns, state.inode, state.device + 1),
    ):
        assert cache.lookup([(path, changed)]) == {}


def test_a_file_changed_just_now_gets_no_entry(tmp_path: Path) -> None:
    """Git's racy-clean rule: within one clock tick a write may leave the timestamps as they are."""
    cache = StatCache(tmp_path / "stat")  # the real clock
    path = tmp_path / "file"
    path.write_bytes(b"fresh")
    state = FileStat.of(path)
    cache.record([(path, state, "e" * 64)])
    assert cache.lookup([(path, state)]) == {}


def test_fresh_files_are_hashed_on_every_push(local_store_url: str, data: Path) -> None:
    real = open_store(local_store_url)  # its stat cache uses the real clock
    push_reading(real, data)
    again, _ = push_reading(real, data)
    assert again >= 4 * SIZE


def test_a_corrupt_cache_file_only_costs_time(store: Store, data: Path) -> None:
    push_reading(store, data)
    assert store.blobs.stat_cache is not None
    store.blobs.stat_cache.path.write_bytes(b"not a database" * 100)
    read, digests = push_reading(store, data)
    assert read >= 4 * SIZE
    assert digests == {p.name: sha256_of(p) for p in data.iterdir()}
    again, _ = push_reading(store, data)  # a new database replaced the corrupt one
    assert again < SIZE // 4
