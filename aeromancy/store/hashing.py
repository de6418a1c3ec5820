"""Streaming sha256 of files: a fixed buffer, never the whole file in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: 1 MiB reads: large enough that hashlib releases the GIL and threads overlap.
CHUNK_SIZE = 1 << 20


def sha256_file(path: Path, chunk_size: int = CHUNK_SIZE) -> str:
    """Return the sha256 hex digest of the file at ``path``."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
    return digest.hexdigest()
