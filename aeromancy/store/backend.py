"""The raw backend protocol: the few primitives every store location provides.

Keys are POSIX paths relative to the store root (``blobs/sha256/ab/ab12...``).
Everything above this layer (blobs, manifests, cache, run records) is written
once against these primitives, so a local directory and S3 behave the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, Protocol

from aeromancy.errors import UsageError
from aeromancy.store.statcache import FileStat

#: A file on this machine: a str where a Path per file would cost (a push of many
#: files, see :func:`.paths.collect_files`), else a Path.
FilePath = str | Path
#: Called with a number of bytes just transferred; drives progress bars.
ProgressCallback = Callable[[int], None]
#: Given the sha256 hex of a file's bytes: the key to store them at, or None when stored.
Destination = Callable[[str], "str | None"]


class ObjectInfo(NamedTuple):
    """One listed object: its key, size in bytes and last modification (Unix time)."""

    key: str
    size: int
    modified: float


class StoredBlob(NamedTuple):
    """What :meth:`Backend.store_file` read: the bytes' sha256 hex and their count."""

    sha256: str
    size: int
    #: The file's state when it is the state given as ``before`` both before and after
    #: the bytes were read and stored (what the stat cache may record); else None.
    state: FileStat | None = None


class Backend(Protocol):
    """A flat key -> bytes space with atomic create-if-absent."""

    #: True when each request is a network round trip (worth overlapping in threads);
    #: False for a local directory, where a request is a system call.
    remote: bool

    def read_bytes(self, key: str) -> bytes | None:
        """Return the object's bytes, or None when there is no object at ``key``."""
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Write ``data`` at ``key`` only if nothing is there; return False if something was.

        Atomic: of concurrent creators exactly one wins, and readers never see a
        partial object. When the object already there holds exactly ``data``, this
        returns True: it is this very write, retried after its answer was lost.
        Callers make ``data`` unique (a manifest's nonce, a run id) so that the bytes
        of two writers never coincide.
        """
        ...

    def store_file(
        self,
        path: FilePath,
        destination: Destination,
        progress: ProgressCallback,
        before: FileStat | None = None,
    ) -> StoredBlob:
        """Store the bytes of the file at ``path`` at the key their sha256 names.

        The backend reads the file (once where it can), hashes it and asks
        ``destination(sha256_hex)`` for the key; ``None`` means those bytes are stored
        already and nothing is written. The object at the key holds exactly the bytes
        hashed. ``before`` is the file's state taken before any of it was read (by
        default the backend takes it): a file whose size or mtime is no longer that
        before its object becomes visible raises :func:`changed_while_pushed`'s error
        and leaves nothing at the key. ``progress`` receives the file's bytes, sent or
        skipped.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object at ``key``; nothing happens when there is none."""
        ...

    def download_file(
        self,
        key: str,
        dest: Path,
        progress: ProgressCallback | None = None,
        size: int | None = None,
    ) -> str:
        """Write the object at ``key`` to ``dest``; return the sha256 hex of the bytes written.

        The digest is taken of the very bytes written, in the same pass where the
        backend can. ``size``, when known (from a manifest), saves asking the store
        for it: a small object is then one request. Raises NotFound when it is missing.
        """
        ...

    def exists(self, key: str) -> bool:
        """Return True when an object exists at ``key``."""
        ...

    def list_prefix(self, prefix: str, limit: int | None = None) -> list[str]:
        """Return the keys under ``prefix`` (a folder path ending in '/'); [] when none.

        With ``limit``, stops after that many: fewer than ``limit`` means complete.
        """
        ...

    def list_objects(self, prefix: str, start_after: str = "") -> list[ObjectInfo]:
        """Return every object under ``prefix`` with its size and age, sorted by key.

        With ``start_after`` (a key), only the objects whose keys sort after it: on S3
        the listing itself starts there, so the keys before it cost nothing.
        """
        ...

    def uri(self, key: str) -> str:
        """Return a URI that names the object at ``key`` outside Aeromancy."""
        ...

    def describe(self) -> str:
        """Return the store location as a user would write it (for messages)."""
        ...


@contextmanager
def reading_source(path: FilePath) -> Iterator[None]:
    """Turn a failure to read a file being pushed into a UsageError (exit 2) naming it."""
    try:
        yield
    except OSError as exc:
        raise unreadable(path, exc) from exc


def unreadable(path: FilePath, exc: OSError) -> UsageError:
    """Return the error for a file being pushed that cannot be read (exit 2)."""
    return UsageError(
        f"cannot read {path}: {exc.strerror or exc}",
        "check that the file exists and is readable, then push again",
    )


def state_before(path: FilePath, before: FileStat | None) -> FileStat:
    """Return ``before``, or the file's state now when the caller took none."""
    if before is not None:
        return before
    with reading_source(path):
        return FileStat.of(path)


def state_after(path: FilePath, before: FileStat) -> FileStat | None:
    """Raise :func:`changed_while_pushed`'s error unless ``path`` still has the size and
    mtime of ``before``; return ``before`` when nothing ``stat`` says has changed.

    Called once the bytes are read and before they become visible: a file rewritten
    meanwhile is a torn snapshot. A change of ctime or inode alone (a ``chmod``, the
    same bytes put back by a copy keeping times) is no error, but its digest is not
    for the stat cache to keep.
    """
    try:
        now = FileStat.of(path)
    except FileNotFoundError as exc:
        raise changed_while_pushed(path) from exc
    if now == before:
        return before
    if now.size != before.size or now.mtime_ns != before.mtime_ns:
        raise changed_while_pushed(path)
    return None


def read_small(path: FilePath, size: int) -> bytes:
    """Return the bytes of the file at ``path``, expected to be ``size`` long, in one read.

    One byte more than ``size`` is asked for: a file that grew is seen as longer (and
    :func:`state_after` refuses it), never cut to its old size. A short read is read
    on from until the end of the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, size + 1)
            while len(data) < size and (more := os.read(fd, size + 1 - len(data))):
                data += more
            return data
        finally:
            os.close(fd)
    except OSError as exc:
        raise unreadable(path, exc) from exc


def changed_while_pushed(path: FilePath) -> UsageError:
    """Return the error for a file whose bytes changed between hashing and storing."""
    return UsageError(
        f"{path} changed while it was being pushed", "push again once nothing writes to it"
    )
