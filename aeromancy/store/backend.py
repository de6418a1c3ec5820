"""The raw backend protocol: the few primitives every store location provides.

Keys are POSIX paths relative to the store root (``blobs/sha256/ab/ab12...``).
Everything above this layer (blobs, manifests, cache, run records) is written
once against these primitives, so a local directory and S3 behave the same.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aeromancy.errors import UsageError

#: Called with a number of bytes just transferred; drives progress bars.
ProgressCallback = Callable[[int], None]


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
        partial object.
        """
        ...

    def upload_file(
        self, key: str, path: Path, sha256_hex: str, progress: ProgressCallback | None = None
    ) -> bool:
        """Store the file at ``path`` under ``key``, whose bytes must hash to ``sha256_hex``.

        Replacing identical content is fine. Return True when the bytes stored were
        checked against ``sha256_hex`` (a mismatch raises :func:`changed_while_pushed`'s
        error and leaves nothing at ``key``); False when this upload could not check
        them, and the caller must check the file itself and :meth:`delete` on doubt.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object at ``key``; nothing happens when there is none."""
        ...

    def download_file(self, key: str, dest: Path, progress: ProgressCallback | None = None) -> None:
        """Write the object at ``key`` to ``dest``; raise NotFound when it is missing."""
        ...

    def exists(self, key: str) -> bool:
        """Return True when an object exists at ``key``."""
        ...

    def list_prefix(self, prefix: str, limit: int | None = None) -> list[str]:
        """Return the keys under ``prefix`` (a folder path ending in '/'); [] when none.

        With ``limit``, stops after that many: fewer than ``limit`` means complete.
        """
        ...

    def uri(self, key: str) -> str:
        """Return a URI that names the object at ``key`` outside Aeromancy."""
        ...

    def describe(self) -> str:
        """Return the store location as a user would write it (for messages)."""
        ...


def changed_while_pushed(path: Path) -> UsageError:
    """Return the error for a file whose bytes changed between hashing and storing."""
    return UsageError(
        f"{path} changed while it was being pushed", "push again once nothing writes to it"
    )
