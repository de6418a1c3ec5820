"""How a verified cached blob becomes a user's or a task's file: a new inode, always.

A reflink (the ``FICLONE`` ioctl: btrfs, XFS, bcachefs...) shares the blocks
copy-on-write, so it is as cheap as a hard link and as safe as a copy; elsewhere
the bytes are copied. A hard link would hand out the cache's own inode, so that a
write to a pulled file (``chmod u+w``, or any write as root) changes the cache and
every other pull; it is used only when ``AEROMANCY_LINK=hardlink`` asks for it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading

from aeromancy.errors import UsageError
from aeromancy.store.hashing import (
    CHUNK_SIZE,
    PIPELINE_FROM,
    copy_hashing,
    sha256_fd,
    write_all_fd,
)

LINK_ENV = "AEROMANCY_LINK"
#: ``_IOW(0x94, 9, int)`` from linux/fs.h: make the destination share the source's blocks.
FICLONE = 0x40049409
#: Errors that mean "this filesystem or pair of files cannot share blocks": copy instead.
_CANNOT_CLONE = {
    errno.EOPNOTSUPP,
    errno.ENOTTY,
    errno.EXDEV,
    errno.EINVAL,
    errno.ENOSYS,
    errno.EPERM,
    errno.EBADF,
}
#: Errors of copy_file_range that mean "use read and write instead".
_CANNOT_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}
_CHUNK = 1 << 20
#: Bytes per copy_file_range call while a reader hashes behind the copy.
_STEP = 8 << 20


def hard_links_wanted() -> bool:
    """Return True when ``AEROMANCY_LINK=hardlink``; raise UsageError for an unknown mode."""
    mode = os.environ.get(LINK_ENV, "").strip().lower()
    if mode in ("", "copy", "reflink"):
        return False
    if mode == "hardlink":
        return True
    raise UsageError(
        f"{LINK_ENV}={mode!r} is not a link mode",
        "unset it (reflink or copy, the safe default) or set hardlink (shares the cache's files)",
    )


def clone_or_copy(source_fd: int, dest_fd: int) -> None:
    """Fill the empty file ``dest_fd`` with the bytes of ``source_fd``: a reflink, else a copy."""
    if not _cloned(source_fd, dest_fd):
        copy_bytes(source_fd, dest_fd)


def copy_bytes(source_fd: int, dest_fd: int) -> None:
    """Copy every byte from ``source_fd`` to ``dest_fd`` (in the kernel where it can)."""
    try:
        while os.copy_file_range(source_fd, dest_fd, _CHUNK << 4):
            pass
        return
    except OSError as exc:
        if exc.errno not in _CANNOT_COPY_RANGE:
            raise
    os.lseek(source_fd, 0, os.SEEK_SET)
    os.lseek(dest_fd, 0, os.SEEK_SET)
    os.ftruncate(dest_fd, 0)
    while chunk := os.read(source_fd, _CHUNK):
        write_all_fd(dest_fd, chunk)


def copy_verifying(source_fd: int, dest_fd: int, size: int) -> str:
    """Fill the empty file ``dest_fd`` (open for reading and writing) from ``source_fd``.

    Returns the sha256 hex of the bytes ``dest_fd`` received, so that a caller can
    check them before giving the file a name. One read of the source: a file under
    :data:`~.hashing.PIPELINE_FROM` bytes is read once and the very bytes written are
    hashed; a larger one is reflinked where the filesystem can (then only hashed), or
    else copied by the kernel in a helper thread while this one hashes, from
    ``dest_fd`` itself, the part already copied: copy and hash overlap on two cores.
    ``size`` (the expected size) only picks the strategy.
    """
    if size < CHUNK_SIZE:
        found = _copy_small(source_fd, dest_fd, size)
        if found is not None:
            return found
    elif size >= PIPELINE_FROM:
        if _cloned(source_fd, dest_fd):
            return sha256_fd(dest_fd)
        found = _copy_hashing_behind(source_fd, dest_fd)
        if found is not None:
            return found
        os.lseek(source_fd, 0, os.SEEK_SET)
        os.lseek(dest_fd, 0, os.SEEK_SET)
        os.ftruncate(dest_fd, 0)
    with (
        open(source_fd, "rb", buffering=0, closefd=False) as reader,
        open(dest_fd, "wb", buffering=0, closefd=False) as writer,
    ):
        return copy_hashing(reader, writer, size)


def _copy_small(source_fd: int, dest_fd: int, size: int) -> str | None:
    """Copy a file of about ``size`` bytes in one read and return the digest of what was
    written; None, having written nothing, when the file holds more than ``size``."""
    data = os.read(source_fd, size + 1)  # a short read of a regular file is its end
    if len(data) > size:
        os.lseek(source_fd, 0, os.SEEK_SET)
        return None
    write_all_fd(dest_fd, data)
    return hashlib.sha256(data).hexdigest()


def _cloned(source_fd: int, dest_fd: int) -> bool:
    try:
        fcntl.ioctl(dest_fd, FICLONE, source_fd)
        return True
    except OSError as exc:
        if exc.errno not in _CANNOT_CLONE:
            raise
        return False


def _copy_hashing_behind(source_fd: int, dest_fd: int) -> str | None:
    """Copy with copy_file_range in a thread, hashing ``dest_fd`` behind it; None if refused.

    None means copy_file_range cannot copy between these two files and copied nothing.
    """
    copier = _Copier(source_fd, dest_fd)
    thread = threading.Thread(target=copier.run, name="aeromancy-copy", daemon=True)
    thread.start()
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    position = 0
    try:
        while (end := copier.wait_beyond(position)) > position:
            while position < end:
                count = os.preadv(dest_fd, [view[: min(CHUNK_SIZE, end - position)]], position)
                if not count:
                    raise OSError(errno.EIO, "the copy shrank while it was being hashed")
                digest.update(view[:count])
                position += count
    finally:
        copier.stop()
        thread.join()
    if copier.error is not None:
        if copier.copied == 0 and copier.error.errno in _CANNOT_COPY_RANGE:
            return None
        raise copier.error
    return digest.hexdigest()


class _Copier:
    """copy_file_range in steps, telling a waiting reader how far the copy has got."""

    def __init__(self, source_fd: int, dest_fd: int) -> None:
        self.source_fd, self.dest_fd = source_fd, dest_fd
        self.copied = 0
        self.done = False
        self.stopped = False
        self.error: OSError | None = None
        self._changed = threading.Condition()

    def run(self) -> None:
        try:
            while not self.stopped:
                count = os.copy_file_range(self.source_fd, self.dest_fd, _STEP)
                with self._changed:
                    self.copied += count
                    self.done = count == 0
                    self._changed.notify_all()
                if self.done:
                    return
        except OSError as exc:
            self.error = exc
        finally:
            with self._changed:
                self.done = True
                self._changed.notify_all()

    def wait_beyond(self, position: int) -> int:
        """Return how many bytes are copied, once more than ``position`` are or it is over."""
        with self._changed:
            while self.copied <= position and not self.done:
                self._changed.wait()
            return self.copied

    def stop(self) -> None:
        self.stopped = True
