"""Streaming sha256 and the one-pass copy the local store uses, on real files."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from aeromancy.store.copying import copy_verifying
from aeromancy.store.hashing import PIPELINE_FROM, copy_hashing, sha256_file

CHUNK = 4096
#: The copy hashes in a second thread from 4 chunks on (in these tests).
PIPELINED = 4 * CHUNK


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK - 1, CHUNK, PIPELINED - 1, PIPELINED,
     50 * CHUNK + 123],
    ids=["empty", "one-byte", "under-a-chunk", "one-chunk", "just-serial", "just-pipelined",
         "many-chunks"],
)  # fmt: skip
def test_copy_hashing_writes_every_byte_and_returns_their_digest(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.write_bytes(data)

    with open(source, "rb", buffering=0) as reader, open(dest, "wb") as writer:
        digest = copy_hashing(reader, writer, size, CHUNK, PIPELINED)

    assert dest.read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
    assert sha256_file(source, CHUNK) == digest


def test_copy_hashing_digest_names_what_was_written_when_the_source_grows(
    tmp_path: Path,
) -> None:
    # The size given is stale: the file grew after it was measured. Whatever was
    # copied, the digest must be the digest of the copy.
    data = os.urandom(10 * CHUNK)
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.write_bytes(data)

    with open(source, "rb", buffering=0) as reader, open(dest, "wb") as writer:
        digest = copy_hashing(reader, writer, CHUNK, CHUNK, PIPELINED)

    assert digest == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert dest.read_bytes() == data


@pytest.mark.parametrize("grown_to", [CHUNK // 2, 3 * CHUNK, PIPELINED + 7])
def test_a_small_file_that_grew_is_copied_to_its_end(tmp_path: Path, grown_to: int) -> None:
    # Measured at 100 bytes, the file is larger when read: the one-read path for small
    # files must notice and copy (and hash) the rest.
    data = os.urandom(grown_to)
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.write_bytes(data)

    with open(source, "rb", buffering=0) as reader, open(dest, "wb", buffering=0) as writer:
        digest = copy_hashing(reader, writer, 100, CHUNK, PIPELINED)

    assert dest.read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()


def _copy_verifying(tmp_path: Path, data: bytes) -> tuple[str, bytes]:
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.write_bytes(data)
    src = os.open(source, os.O_RDONLY)
    out = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        digest = copy_verifying(src, out, len(data))
    finally:
        os.close(src)
        os.close(out)
    return digest, dest.read_bytes()


@pytest.mark.parametrize(
    "size", [0, 3000, PIPELINE_FROM - 1, PIPELINE_FROM, PIPELINE_FROM + (9 << 20) + 7]
)
def test_copy_verifying_copies_every_byte_and_hashes_them(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    digest, copied = _copy_verifying(tmp_path, data)
    assert copied == data
    assert digest == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("refused", [errno.EXDEV, errno.EOPNOTSUPP])
def test_copy_verifying_falls_back_where_the_kernel_will_not_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: int
) -> None:
    def no_copy_range(*_args: object) -> int:
        raise OSError(refused, os.strerror(refused))

    monkeypatch.setattr(os, "copy_file_range", no_copy_range)
    data = os.urandom(PIPELINE_FROM + 5)
    digest, copied = _copy_verifying(tmp_path, data)
    assert copied == data
    assert digest == hashlib.sha256(data).hexdigest()


def test_copy_verifying_hashes_the_copy_not_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above PIPELINE_FROM the digest is read back from the copy: a bad copy shows."""
    real = os.copy_file_range

    def copy_range_flipping_a_byte(src: int, dst: int, count: int) -> int:
        start = os.lseek(dst, 0, os.SEEK_CUR)
        copied = real(src, dst, count)
        if start == 0 and copied:
            os.pwrite(dst, b"\x00" if os.pread(dst, 1, 0) != b"\x00" else b"\x01", 0)
        return copied

    monkeypatch.setattr(os, "copy_file_range", copy_range_flipping_a_byte)
    data = os.urandom(PIPELINE_FROM + 5)
    digest, copied = _copy_verifying(tmp_path, data)
    assert copied != data
    assert digest == hashlib.sha256(copied).hexdigest() != hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("expected", [0, 10, 4095])
def test_copy_verifying_copies_a_file_larger_than_expected_whole(
    tmp_path: Path, expected: int
) -> None:
    """The expected size only picks the strategy: the digest names every byte copied."""
    data = os.urandom(5000)
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.write_bytes(data)
    src = os.open(source, os.O_RDONLY)
    out = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        digest = copy_verifying(src, out, expected)
    finally:
        os.close(src)
        os.close(out)
    assert dest.read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
