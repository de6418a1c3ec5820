"""Fixtures for the store suites: an opened store and raw access behind its back."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest

from aeromancy.store import Store, open_store


class RawStore:
    """Reads, writes and deletes store objects directly, bypassing Aeromancy (to corrupt)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.is_s3 = parsed.scheme == "s3"
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.root = Path(url)

    def keys(self, prefix: str = "") -> list[str]:
        """Return every key under ``prefix`` (relative to the store root), sorted."""
        if self.is_s3:
            client = boto3.session.Session().client("s3")
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/{prefix}"
            )
            strip = len(self.prefix) + 1
            return sorted(o["Key"][strip:] for p in pages for o in p.get("Contents", []))
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(
            str(path.relative_to(self.root)) for path in base.rglob("*") if path.is_file()
        )

    def write(self, key: str, data: bytes) -> None:
        """Overwrite the object at ``key``."""
        if self.is_s3:
            client = boto3.session.Session().client("s3")
            client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=data)
            return
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)
        path.write_bytes(data)

    def delete(self, key: str) -> None:
        """Remove the object at ``key``."""
        if self.is_s3:
            client = boto3.session.Session().client("s3")
            client.delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")
        else:
            (self.root / key).unlink()


@pytest.fixture
def store(store_url: str) -> Store:
    """Return the store at ``store_url`` (each backend in turn)."""
    return open_store(store_url)


@pytest.fixture
def raw(store_url: str) -> RawStore:
    """Return direct access to the objects of ``store``."""
    return RawStore(store_url)
