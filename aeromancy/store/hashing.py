"""Streaming sha256 of files: fixed buffers, never the whole file in memory."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from io import BufferedIOBase, RawIOBase
from pathlib import Path

#: 1 MiB reads: large enough that hashlib releases the GIL and threads overlap.
CHUNK_SIZE = 1 << 20
#: From this size on, a copy hashes in a second thread while it reads and writes. Below
#: it, a push of many files already keeps every core busy and the hand-offs only cost.
PIPELINE_FROM = 32 << 20


_buffers = threading.local()


def _chunk_buffer(chunk_size: int) -> bytearray:
    """Return this thread's read buffer of ``chunk_size`` bytes, made once per thread.

    A fresh 1 MiB buffer per file cost more than hashing a small file; each thread
    reuses one instead (its contents are never read before being overwritten).
    """
    buffer: bytearray | None = getattr(_buffers, "chunk", None)
    if buffer is None or len(buffer) != chunk_size:
        buffer = bytearray(chunk_size)
        _buffers.chunk = buffer
    return buffer


def sha256_file(path: str | Path, chunk_size: int = CHUNK_SIZE) -> str:
    """Return the sha256 hex digest of the file at ``path``."""
    digest = hashlib.sha256()
    buffer = _chunk_buffer(chunk_size)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def sha256_fd(fd: int, chunk_size: int = CHUNK_SIZE) -> str:
    """Return the sha256 hex digest of the whole file open at ``fd`` (read from offset 0)."""
    digest = hashlib.sha256()
    buffer = _chunk_buffer(chunk_size)
    view = memoryview(buffer)
    position = 0
    while count := os.preadv(fd, [buffer], position):
        digest.update(view[:count])
        position += count
    return digest.hexdigest()


def copy_hashing(
    reader: RawIOBase,
    writer: RawIOBase | BufferedIOBase,
    size: int,
    chunk_size: int = CHUNK_SIZE,
    pipeline_from: int = PIPELINE_FROM,
) -> str:
    """Copy ``reader`` to ``writer`` in one pass; return the sha256 hex of the bytes written.

    The digest is taken of the very buffers handed to ``writer``, so it names what
    was written even if the source changes meanwhile. A file smaller than one chunk
    is read in one call into a buffer of its size; larger ones go through this
    thread's reused chunk buffer. From ``pipeline_from`` bytes on, the hash of one
    chunk runs in a helper thread while the next is read and this one written
    (hashlib and file I/O release the GIL), so a copy costs about as long as hashing
    alone. ``size`` (the expected size) only picks the strategy: reading goes on to
    the end of the file whatever it is.
    """
    digest = hashlib.sha256()
    if size < pipeline_from:
        if size < chunk_size:
            # One read of the whole file; a short read of a regular file is its end.
            # The extra byte asked for shows a file that grew: the loop copies the rest.
            first = reader.read(size + 1) or b""
            digest.update(first)
            write_all(writer, memoryview(first))
            if len(first) <= size:
                return digest.hexdigest()
        buffer = _chunk_buffer(chunk_size)
        view = memoryview(buffer)
        while count := reader.readinto(buffer):
            digest.update(view[:count])
            write_all(writer, view[:count])
        return digest.hexdigest()
    with ThreadPoolExecutor(1, thread_name_prefix="aeromancy-hash") as hasher:
        _copy_pipelined(reader, writer, digest, hasher, chunk_size)
    return digest.hexdigest()


def write_all_fd(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` to the file open at ``fd`` (a write may take fewer);
    raise OSError if a write takes none, rather than loop for ever."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if not written:
            raise OSError(errno.EIO, f"no bytes written to file descriptor {fd}")
        view = view[written:]


def write_all(writer: RawIOBase | BufferedIOBase, data: memoryview) -> None:
    """Write every byte of ``data`` (a raw file may take fewer per call)."""
    while data:
        written = writer.write(data)
        if not written:
            raise OSError(f"no bytes written to {writer}")
        data = data[written:]


def _copy_pipelined(
    reader: RawIOBase,
    writer: RawIOBase | BufferedIOBase,
    digest: hashlib._Hash,
    hasher: ThreadPoolExecutor,
    chunk_size: int,
) -> None:
    """Two buffers take turns: one is read into while the other is hashed and written."""
    buffers = (bytearray(chunk_size), bytearray(chunk_size))
    hashing: Future[None] | None = None
    turn = 0
    try:
        while count := reader.readinto(buffers[turn]):
            chunk = memoryview(buffers[turn])[:count]
            if hashing is not None:
                hashing.result()  # chunks enter the digest in order, one at a time
            hashing = hasher.submit(digest.update, chunk)
            write_all(writer, chunk)
            turn = 1 - turn
    finally:
        if hashing is not None:
            hashing.result()
