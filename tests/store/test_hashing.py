"""Streaming sha256 and the one-pass copy the local store uses, on real files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from aeromancy.store.hashing import copy_hashing, sha256_file

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
