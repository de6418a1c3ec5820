"""Renaming a file to a name nothing has yet, in one system call (Linux ``renameat2``).

``rename(2)`` replaces what has the new name; ``link(2)`` then ``unlink(2)`` does not,
but costs two calls and leaves a second name for a moment. ``renameat2`` with
``RENAME_NOREPLACE`` (Linux 3.15, glibc 2.28) does it in one, refusing with EEXIST.
Python's ``os`` has no binding for it, so it is called through ctypes; where the C
library, the kernel or the filesystem lacks it, :func:`rename_noreplace` says so and
the caller links instead.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from collections.abc import Callable

RENAME_NOREPLACE = 1
#: What renameat2 answers where it (or the flag) is not there.
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


def rename_noreplace(source: str, target: str, dir_fd: int) -> bool:
    """Rename ``source`` to ``target``, both in the directory open at ``dir_fd``, unless
    ``target`` exists (FileExistsError). Return False, having done nothing, where no
    such rename is available here."""
    call = _renameat2()
    if call is None:
        return False
    if call(dir_fd, os.fsencode(source), dir_fd, os.fsencode(target), RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), source, None, target)


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call
