"""The raw backend protocol: the few primitives every store location provides.

Keys are POSIX paths relative to the store root (``blobs/sha256/ab/ab12...``).
Everything above this layer (blobs, manifests, cache, run records) is written
once against these primitives, so a local directory and S3 behave the same.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

#: Called with a number of bytes just transferred; drives progress bars.
ProgressCallback = Callable[[int], None]


class Backend(Protocol):
    """A flat key -> bytes space with atomic create-if-absent."""

    def read_bytes(self, key: str) -> bytes | None:
        """Return the object's bytes, or None when there is no object at ``key``."""
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Write ``data`` at ``key`` only if nothing is there; return False if something was.

        Atomic: of concurrent creators exactly one wins, and readers never see a
        partial object.
        """
        ...

    def upload_file(self, key: str, path: Path, progress: ProgressCallback | None = None) -> None:
        """Store the file at ``path`` under ``key`` (replacing identical content is fine)."""
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
