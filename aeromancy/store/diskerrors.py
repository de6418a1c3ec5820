"""Failed writes to a local disk (full, read-only, not ours) as one-line errors, exit 3."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from aeromancy.errors import InfrastructureError

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_DENIED = {errno.EROFS, errno.EACCES, errno.EPERM}


@contextmanager
def writing(what: str, elsewhere: str) -> Iterator[None]:
    """Turn an OSError inside the block into InfrastructureError (exit 3): ``what: reason``.

    ``elsewhere`` says how to write somewhere else instead (the fix's second half).
    """
    try:
        yield
    except OSError as exc:
        raise write_failed(what, elsewhere, exc) from exc


def write_failed(what: str, elsewhere: str, exc: OSError) -> InfrastructureError:
    """Return :func:`writing`'s error for ``exc`` (where a ``with`` per write costs too much)."""
    return InfrastructureError(f"{what}: {exc.strerror or exc}", _hint(exc, elsewhere))


def _hint(exc: OSError, elsewhere: str) -> str:
    if exc.errno in _FULL:
        return f"free some space on that disk, or {elsewhere}"
    if exc.errno in _DENIED:
        return f"check that you may write there, or {elsewhere}"
    return f"check that disk, or {elsewhere}"
