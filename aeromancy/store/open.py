"""Opening a store from its URL: a path or ``file://`` is local, ``s3://bucket/prefix`` is S3."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from aeromancy.errors import UsageError
from aeromancy.store.local import LocalBackend
from aeromancy.store.store import Store

#: Local transfers are disk- and CPU-bound; more threads than cores only thrash.
LOCAL_WORKERS = max(2, min(8, os.cpu_count() or 2))
#: S3 transfers wait on the network; more requests in flight hide latency.
S3_WORKERS = 8


def open_store(url: str | Path, cache_dir: Path | None = None) -> Store:
    """Return the store at ``url``; raise UsageError for a scheme Aeromancy cannot use."""
    text = str(url)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        from aeromancy.store.s3 import S3Backend

        if not parsed.netloc:
            raise UsageError(f"store URL {text!r} names no bucket", "use s3://bucket/prefix")
        backend = S3Backend(parsed.netloc, parsed.path.strip("/"))
        return Store(backend, cache_dir, S3_WORKERS)
    if parsed.scheme == "file":
        return Store(LocalBackend(Path(unquote(parsed.path))), cache_dir, LOCAL_WORKERS)
    if parsed.scheme in ("http", "https"):
        raise UsageError(
            f"unsupported store URL {text!r}: an S3-compatible server is named by its bucket",
            f"use --store s3://BUCKET/PREFIX and set AWS_ENDPOINT_URL={parsed.scheme}://"
            f"{parsed.netloc}",
        )
    if parsed.scheme and len(parsed.scheme) > 1:
        raise UsageError(
            f"unsupported store URL {text!r}", "use a directory path, file:///path or s3://bucket"
        )
    return Store(LocalBackend(Path(text)), cache_dir, LOCAL_WORKERS)
