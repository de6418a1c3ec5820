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
import os

from aeromancy.errors import UsageError

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
    try:
        fcntl.ioctl(dest_fd, FICLONE, source_fd)
        return
    except OSError as exc:
        if exc.errno not in _CANNOT_CLONE:
            raise
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
        view = memoryview(chunk)
        while view:
            view = view[os.write(dest_fd, view) :]
