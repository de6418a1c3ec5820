"""A pull through the read cache (S3 here, against moto on loopback) places each file
as its blob arrives, and still leaves nothing under DEST when any blob is bad."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest

from aeromancy.errors import StoreDamaged
from aeromancy.store import open_store
from aeromancy.store.cache import BlobCache
from aeromancy.store.layout import blob_key

FILES = 12


def make_data(folder: Path) -> dict[str, bytes]:
    contents = {f"part-{index:02}.txt": f"part {index}\n".encode() * 50 for index in range(FILES)}
    folder.mkdir()
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return contents


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def delete_object(store_url: str, key: str) -> None:
    """Delete one object of the store behind its back (it goes missing)."""
    parsed = urlparse(store_url)
    boto3.session.Session().client("s3").delete_object(
        Bucket=parsed.netloc, Key=f"{parsed.path.strip('/')}/{key}"
    )


@pytest.mark.s3
def test_files_are_placed_while_blobs_are_still_being_fetched(
    s3_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = make_data(tmp_path / "data")
    store = open_store(s3_store_url, cache_dir=tmp_path / "cache")
    store.workers = 1  # one fetching thread: the blobs come in sorted order
    version = store.publish("proj", "data", tmp_path / "data")
    last = max(hashlib.sha256(data).hexdigest() for data in contents.values())
    dest = tmp_path / "out"
    real_fetch = BlobCache.fetch
    seen_before_last: list[str] = []

    def fetch_last_once_some_file_is_placed(cache: BlobCache, digest: str, *args: object) -> Path:
        if digest == last:  # the last blob waits for a file under DEST (at most 10 s)
            deadline = time.monotonic() + 10
            while not files_under(dest) and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_before_last.extend(files_under(dest))
        return real_fetch(cache, digest, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(BlobCache, "fetch", fetch_last_once_some_file_is_placed)
    store.materialize(version, dest)

    assert seen_before_last, "no file was placed before the last blob was fetched"
    assert not any(name.startswith(".") for name in seen_before_last)  # named ones only
    assert {name: (dest / name).read_bytes() for name in files_under(dest)} == contents


@pytest.mark.s3
def test_a_missing_blob_late_in_the_pull_leaves_nothing_under_dest(
    s3_store_url: str, tmp_path: Path
) -> None:
    contents = make_data(tmp_path / "data")
    store = open_store(s3_store_url, cache_dir=tmp_path / "cache")
    store.workers = 1
    version = store.publish("proj", "data", tmp_path / "data")
    last = max(hashlib.sha256(data).hexdigest() for data in contents.values())
    delete_object(s3_store_url, blob_key(last))  # fetched last: the others are placed by then
    dest = tmp_path / "out"

    with pytest.raises(StoreDamaged, match=f"blob {last} is missing") as info:
        store.materialize(version, dest)

    assert info.value.exit_code == 3
    assert not dest.exists()  # the placed files and the directory the pull made are gone
    assert [t.name for t in threading.enumerate() if t.name.startswith("aeromancy-fetch")] == []
