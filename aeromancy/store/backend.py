"""The raw backend protocol: the few primitives every store location provides.

Keys are POSIX paths relative to the store root (``blobs/sha256/ab/ab12...``).
Everything above this layer (blobs, manifests, cache, run records) is written
once against these primitives, so a local directory and S3 behave the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from aeromancy.errors import UsageError

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


@dataclass(frozen=True)
class FileState:
    """A file's size and modification time: if both are unchanged, so (we trust) is it."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileState:
        """Return the current state of the file at ``path``."""
        info = os.stat(path)
        return cls(info.st_size, info.st_mtime_ns)

    def check(self, path: Path) -> None:
        """Raise :func:`changed_while_pushed`'s error unless ``path`` is still in this state."""
        try:
            now = FileState.of(path)
        except FileNotFoundError as exc:
            raise changed_while_pushed(path) from exc
        if now != self:
            raise changed_while_pushed(path)


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
        self, path: Path, destination: Destination, progress: ProgressCallback
    ) -> StoredBlob:
        """Store the bytes of the file at ``path`` at the key their sha256 names.

        The backend reads the file (once where it can), hashes it and asks
        ``destination(sha256_hex)`` for the key; ``None`` means those bytes are stored
        already and nothing is written. The object at the key holds exactly the bytes
        hashed. A file whose size or mtime changes before its object becomes visible
        raises :func:`changed_while_pushed`'s error and leaves nothing at the key.
        ``progress`` receives the file's bytes, sent or skipped.
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
def reading_source(path: Path) -> Iterator[None]:
    """Turn a failure to read a file being pushed into a UsageError (exit 2) naming it."""
    try:
        yield
    except OSError as exc:
        raise UsageError(
            f"cannot read {path}: {exc.strerror or exc}",
            "check that the file exists and is readable, then push again",
        ) from exc


def changed_while_pushed(path: Path) -> UsageError:
    """Return the error for a file whose bytes changed between hashing and storing."""
    return UsageError(
        f"{path} changed while it was being pushed", "push again once nothing writes to it"
    )
