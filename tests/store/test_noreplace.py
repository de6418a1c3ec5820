"""Naming pulled files: a rename that never replaces, and a name taken meanwhile.

On real directories in tmp_path (this machine's filesystem has ``renameat2``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aeromancy.errors import UsageError
from aeromancy.store.noreplace import rename_noreplace
from aeromancy.store.placing import PART_SUFFIX, FillFile, write_files


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield tmp_path, fd
    finally:
        os.close(fd)


def test_rename_noreplace_renames_to_a_free_name(folder: tuple[Path, int]) -> None:
    path, fd = folder
    (path / "temp").write_bytes(b"complete")
    assert rename_noreplace("temp", "name", fd) is True
    assert (path / "name").read_bytes() == b"complete"
    assert not (path / "temp").exists()


def test_rename_noreplace_refuses_a_taken_name_and_keeps_both(folder: tuple[Path, int]) -> None:
    path, fd = folder
    (path / "temp").write_bytes(b"ours")
    (path / "name").write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        rename_noreplace("temp", "name", fd)
    assert (path / "name").read_bytes() == b"theirs"
    assert (path / "temp").read_bytes() == b"ours"


def test_a_name_taken_during_the_pull_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    rival = dest / "sub" / "b.txt"

    def fill_with(data: bytes, then: Path | None = None) -> FillFile:
        def fill(fd: int) -> None:
            os.write(fd, data)
            if then is not None:  # someone else writes the name meanwhile
                then.write_bytes(b"someone else's")

        return fill

    fills = [
        (fill_with(b"a"), "a.txt"),
        (fill_with(b"b", then=rival), "sub/b.txt"),
        (fill_with(b"c"), "sub/c.txt"),
    ]
    with pytest.raises(UsageError, match=r"b\.txt appeared while it was being pulled") as info:
        write_files(dest, fills, [relative for _fill, relative in fills])

    assert info.value.exit_code == 2
    assert rival.read_bytes() == b"someone else's"  # never replaced
    left = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert left == ["sub/b.txt"]  # no other file named, no temporary file left
    assert not any(p.name.endswith(PART_SUFFIX) for p in dest.rglob("*"))
