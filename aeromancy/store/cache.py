"""The local read cache: verified copies of blobs, handed out read-only.

Layout: ``<cache>/blobs/sha256/<2 hex>/<64 hex>``, each entry mode 0444. Every
entry is hashed again before use, so a corrupted entry is noticed, dropped and
fetched again rather than handed to a task. Entries are never handed out
themselves: :mod:`.placing` writes copies (or reflinks) of them.
"""

from __future__ import annotations

import itertools
import os
import secrets
from contextlib import AbstractContextManager
from pathlib import Path

from aeromancy.errors import NotFound, StoreDamaged
from aeromancy.leftovers import owner, sweep_files
from aeromancy.settings import CACHE_ENV
from aeromancy.store.backend import Backend, ProgressCallback
from aeromancy.store.diskerrors import writing
from aeromancy.store.hashing import sha256_file
from aeromancy.store.layout import blob_key

READ_ONLY = 0o444


class BlobCache:
    """Verified local copies of the blobs of one store."""

    def __init__(self, root: Path, backend: Backend) -> None:
        self.root = root
        self.backend = backend
        self._swept = False
        self._tmp_ready = False
        # Temporary names: unique in this process by the counter, across processes by
        # owner (pid and host) and a random token.
        self._prefix = f"{owner()}-{secrets.token_hex(6)}-"
        self._counter = itertools.count()

    def entry_path(self, sha256_hex: str) -> Path:
        """Return where the cache keeps a blob (it may not be there)."""
        return self.root / blob_key(sha256_hex)

    def fetch(
        self, sha256_hex: str, progress: ProgressCallback | None = None, size: int | None = None
    ) -> Path:
        """Return the path of a verified, read-only cached copy of the blob.

        Downloads it when absent or corrupt (``size``, the manifest's, saves a size
        request); raises StoreDamaged when the store lacks it or its copy does not
        match its digest.
        """
        entry = self.entry_path(sha256_hex)
        if entry.is_file():
            if sha256_file(entry) == sha256_hex:
                if progress is not None:
                    progress(entry.stat().st_size)
                return entry
            entry.unlink(missing_ok=True)  # corrupt: fall through and fetch it again
        return self._download(sha256_hex, entry, progress, size)

    def _download(
        self, sha256_hex: str, entry: Path, progress: ProgressCallback | None, size: int | None
    ) -> Path:
        tmp_dir = self.root / "tmp"
        temp = tmp_dir / f"{self._prefix}{next(self._counter)}.part"
        try:
            with self._writing():
                if not self._tmp_ready:
                    tmp_dir.mkdir(parents=True, exist_ok=True)
                    self._sweep_once(tmp_dir)
                    self._tmp_ready = True
                # The digest of the bytes as they were written: no second read of them.
                written = self._download_to(sha256_hex, temp, progress, size)
            if written != sha256_hex:
                raise blob_damaged(sha256_hex, self.backend)
            with self._writing():
                os.chmod(temp, READ_ONLY)
                _replace(temp, entry)
        finally:
            temp.unlink(missing_ok=True)
        return entry

    def _sweep_once(self, tmp_dir: Path) -> None:
        """Remove partial downloads of processes that died (on the first download)."""
        if not self._swept:
            self._swept = True
            sweep_files(tmp_dir, ".part")

    def _download_to(
        self, sha256_hex: str, temp: Path, progress: ProgressCallback | None, size: int | None
    ) -> str:
        """Download one blob, returning the digest of what was written.

        A blob a manifest names but the store lacks is damage (exit 3).
        """
        try:
            return self.backend.download_file(blob_key(sha256_hex), temp, progress, size)
        except NotFound as exc:
            raise blob_missing(sha256_hex, self.backend) from exc

    def _writing(self) -> AbstractContextManager[None]:
        return writing(
            f"cannot write to the cache at {self.root}",
            f"point {CACHE_ENV} at a directory on another disk",
        )


def _replace(temp: Path, entry: Path) -> None:
    """Move ``temp`` to ``entry``, making its directory only when it is missing."""
    try:
        os.replace(temp, entry)
    except FileNotFoundError:
        if not temp.exists():
            raise
        entry.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, entry)


def blob_damaged(sha256_hex: str, backend: Backend) -> StoreDamaged:
    """Return the error for a blob whose bytes do not hash to its name (exit 3)."""
    return StoreDamaged(
        f"the store is damaged: blob {sha256_hex} in {backend.describe()} "
        "does not match its digest",
        "push the artifact again",
    )


def blob_missing(sha256_hex: str, backend: Backend) -> StoreDamaged:
    """Return the error for a blob a manifest names but the store lacks (exit 3)."""
    return StoreDamaged(
        f"the store is damaged: blob {sha256_hex} is missing from {backend.describe()}",
        "push the artifact again, or restore the blob from a backup",
    )
