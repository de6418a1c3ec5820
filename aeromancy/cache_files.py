"""Small derived files under the local cache directory (import scans, run record digests).

Everything here can be rebuilt from the store and the sources, so a cache file that
cannot be read or written only costs speed, never correctness.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from aeromancy.settings import default_cache_dir


def cache_path(*parts: str) -> Path:
    """Return a path under the local cache directory (``AEROMANCY_CACHE`` overrides it)."""
    return default_cache_dir().joinpath(*parts)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` so that readers see all of it or nothing; OS errors are ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError:
        pass
