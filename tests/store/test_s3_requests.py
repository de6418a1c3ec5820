"""What an S3 push and pull of many small files send: one request per blob, no more.

Counted on the wire by the ``s3_proxy`` fixture (tests/store/conftest.py) between
the store and moto's S3 server: a push lists the blobs once and PUTs each missing
blob (no HEAD per file); a cold pull sends one plain GET per blob (no HEAD for its
size, no ranges). Fewer requests must not mean less checking: a blob the listing
shows present but damaged is still refused on pull.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from aeromancy.errors import StoreDamaged
from aeromancy.store import open_store
from aeromancy.store.layout import blob_key
from aeromancy.store.s3 import S3Backend

pytestmark = pytest.mark.s3

FILES = 40


def small_files(root: Path, count: int, salt: str = "") -> Path:
    """Write ``count`` distinct small files under ``root``; return it."""
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (root / f"f{index:03d}.bin").write_text(f"file {index} {salt}")
    return root


def behind_its_back(url: str) -> S3Backend:
    """Return a raw backend on the store at ``url`` (to delete or overwrite objects)."""
    backend = open_store(url).backend
    assert isinstance(backend, S3Backend)
    return backend


def through_proxy(s3_proxy: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    relay = s3_proxy(lambda request: "forward")
    monkeypatch.setenv("AWS_ENDPOINT_URL", relay.url)
    return relay


def on_blobs(relay: Any, method: str) -> list[Any]:
    """Return the requests ``relay`` saw with ``method`` on one blob's key."""
    return [r for r in relay.seen if r.method == method and "/blobs/sha256/" in r.path]


def listings(relay: Any) -> list[Any]:
    return [r for r in relay.seen if r.method == "GET" and "list-type=2" in r.path]


def test_a_push_of_many_files_lists_once_and_puts_each_blob_without_a_head(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    relay = through_proxy(s3_proxy, monkeypatch)
    store = open_store(s3_store_url, cache_dir=tmp_path / "cache")

    store.publish("proj", "data", small_files(tmp_path / "data", FILES))

    assert len(on_blobs(relay, "PUT")) == FILES
    assert on_blobs(relay, "HEAD") == []
    assert [r for r in listings(relay) if "blobs%2Fsha256" in r.path] != []


def test_a_push_finding_blobs_by_listing_still_uploads_the_missing_ones(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = small_files(tmp_path / "data", FILES)
    open_store(s3_store_url, cache_dir=tmp_path / "cache").publish("proj", "data", data)
    raw = behind_its_back(s3_store_url)
    first = open_store(s3_store_url).resolve("proj/data", "proj")
    gone = sorted({entry.sha256 for entry in first.files})[:3]
    for digest in gone:  # as if a gc had removed them
        raw.delete(blob_key(digest))
    (data / "new.bin").write_text("a file the store has never seen")
    relay = through_proxy(s3_proxy, monkeypatch)

    second = open_store(s3_store_url, cache_dir=tmp_path / "cache2").publish("proj", "data", data)

    sent = {r.path.rsplit("/", 1)[-1] for r in on_blobs(relay, "PUT")}
    new = {entry.sha256 for entry in second.files} - {entry.sha256 for entry in first.files}
    assert sent == set(gone) | new
    assert on_blobs(relay, "HEAD") == []
    assert open_store(s3_store_url).has_content(second)


def test_a_cold_pull_sends_one_plain_get_per_blob(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    version = open_store(s3_store_url, cache_dir=tmp_path / "c1").publish(
        "proj", "data", small_files(tmp_path / "data", FILES)
    )
    relay = through_proxy(s3_proxy, monkeypatch)

    out = open_store(s3_store_url, cache_dir=tmp_path / "c2").materialize(version, tmp_path / "o")

    gets = on_blobs(relay, "GET")
    assert len(gets) == FILES
    assert {r.path.rsplit("/", 1)[-1] for r in gets} == {e.sha256 for e in version.files}
    assert all(r.header("Range") is None for r in gets)
    assert on_blobs(relay, "HEAD") == []
    assert sorted(os.listdir(out)) == sorted(entry.path for entry in version.files)


def test_a_blob_present_in_the_listing_but_damaged_is_refused_on_pull(
    s3_store_url: str, tmp_path: Path
) -> None:
    data = small_files(tmp_path / "data", FILES)
    version = open_store(s3_store_url, cache_dir=tmp_path / "c1").publish("proj", "data", data)
    victim = version.files[7]
    raw = behind_its_back(s3_store_url)
    damaged = f"{raw.prefix}/{blob_key(victim.sha256)}"
    raw.client.put_object(Bucket=raw.bucket, Key=damaged, Body=b"not the bytes it names")
    # Pushing again finds every blob by the listing and sends nothing: same version.
    again = open_store(s3_store_url, cache_dir=tmp_path / "c2").publish("proj", "data", data)
    assert again == version

    with pytest.raises(StoreDamaged, match=victim.sha256):
        open_store(s3_store_url, cache_dir=tmp_path / "c3").materialize(version, tmp_path / "o")
    assert not (tmp_path / "o" / victim.path).exists()


def test_a_push_into_a_store_of_more_blobs_than_the_cap_lists_when_the_push_is_large(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The cap on listing grows with the push: a store holding more blobs than
    MAX_LISTED_BLOBS but under LISTED_BLOBS_PER_FILE per file pushed is listed, not
    probed file by file; a store far larger than the push is probed."""
    from aeromancy.store import blobs

    monkeypatch.setattr(blobs, "MAX_LISTED_BLOBS", FILES // 2)  # the store holds more
    open_store(s3_store_url).publish("proj", "old", small_files(tmp_path / "old", FILES))
    relay = through_proxy(s3_proxy, monkeypatch)

    new = small_files(tmp_path / "new", FILES, salt="new")
    open_store(s3_store_url, cache_dir=tmp_path / "cache").publish("proj", "new", new)
    assert on_blobs(relay, "HEAD") == []
    assert len(on_blobs(relay, "PUT")) == FILES

    relay.seen.clear()
    few = small_files(tmp_path / "few", 17, salt="few")  # 4 x 17 < the 80 blobs held
    open_store(s3_store_url, cache_dir=tmp_path / "cache2").publish("proj", "few", few)
    assert len(on_blobs(relay, "HEAD")) == 17
