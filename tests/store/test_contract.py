"""The contract every store backend passes: run once on a local directory, once on S3.

The S3 runs talk to moto's standalone server over loopback HTTP (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import threading
from pathlib import Path
from typing import Protocol

import pytest

from aeromancy.errors import InfrastructureError, InvalidName, NotFound, StoreDamaged, UsageError
from aeromancy.store import FileEntry, Store, open_store
from aeromancy.store.backend import (
    Backend,
    Destination,
    FilePath,
    ProgressCallback,
    StoredBlob,
)
from aeromancy.store.blobs import SMALL_FILE
from aeromancy.store.local import LocalBackend
from aeromancy.store.statcache import FileStat


class RawAccess(Protocol):
    """Direct object access behind the store's back (see tests/store/conftest.py)."""

    def keys(self, prefix: str = "") -> list[str]: ...
    def write(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (relative path -> bytes) under ``root`` and return ``root``."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    """Return every file under ``root`` as relative POSIX path -> bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


TREE = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 64, "sub/deep/c": b""}


# -- publish and resolve --------------------------------------------------------------


def test_publish_records_every_file_with_size_and_digest(store: Store, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", TREE)
    (source / "empty-dir").mkdir()

    version = store.publish("proj", "data", source, type="dataset", metadata={"rows": 3})

    assert version.ref == "proj/data:v1"
    assert version.type == "dataset"
    assert version.metadata == {"rows": 3}
    assert version.created
    assert [(f.path, f.size, f.sha256) for f in version.files] == [
        (path, len(data), sha(data)) for path, data in sorted(TREE.items())
    ]


def test_every_reference_form_resolves(store: Store, tmp_path: Path) -> None:
    v1 = store.publish("proj", "data", make_tree(tmp_path / "one", {"f": b"1"}))
    v2 = store.publish("proj", "data", make_tree(tmp_path / "two", {"f": b"2"}))

    assert store.resolve("data", "proj") == v2
    assert store.resolve("data:latest", "proj") == v2
    assert store.resolve("data:v1", "proj") == v1
    assert store.resolve("proj/data:v1", "other") == v1
    assert store.resolve("proj/data", "other") == v2


def test_single_file_is_one_entry_named_by_basename(store: Store, tmp_path: Path) -> None:
    model = tmp_path / "nested" / "model.txt"
    model.parent.mkdir()
    model.write_bytes(b"weights")

    version = store.publish("proj", "model", model)

    assert [f.path for f in version.files] == ["model.txt"]
    out = store.materialize(version, tmp_path / "out")
    assert read_tree(out) == {"model.txt": b"weights"}


def test_versions_count_up_and_listing_shows_newest(store: Store, tmp_path: Path) -> None:
    for index in range(3):
        store.publish("proj", "data", make_tree(tmp_path / f"d{index}", {"f": bytes([index])}))
    store.publish("proj", "model", make_tree(tmp_path / "m", {"w": b"w"}))
    store.publish("elsewhere", "data", make_tree(tmp_path / "e", {"x": b"x"}))

    assert [v.label for v in store.list_versions("proj", "data")] == ["v1", "v2", "v3"]
    assert [v.ref for v in store.list_artifacts("proj")] == ["proj/data:v3", "proj/model:v1"]
    assert store.list_versions("proj", "missing") == []
    assert store.list_artifacts("nobody") == []


# -- not found and bad references -----------------------------------------------------


def test_unknown_version_names_the_versions_that_exist(store: Store, tmp_path: Path) -> None:
    store.publish("proj", "data", make_tree(tmp_path / "s", {"f": b"1"}))
    store.publish("proj", "data", make_tree(tmp_path / "t", {"f": b"2"}))

    with pytest.raises(NotFound, match=r"no artifact version proj/data:v7; .* has v1, v2"):
        store.resolve("data:v7", "proj")


def test_unknown_name_names_the_artifacts_that_exist(store: Store, tmp_path: Path) -> None:
    store.publish("proj", "data", make_tree(tmp_path / "s", {"f": b"1"}))
    store.publish("proj", "model", make_tree(tmp_path / "m", {"f": b"1"}))

    with pytest.raises(NotFound, match=r"no artifact proj/dta; project proj has data, model"):
        store.resolve("dta", "proj")


def test_empty_project_says_so(store: Store) -> None:
    with pytest.raises(NotFound, match="project proj has no artifacts") as caught:
        store.resolve("data", "proj")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "ref", ["", "data:", "data:v0", "data:3", "data:v1x", "a/b/c", "-data", "data:latest:v1"]
)
def test_malformed_reference_is_invalid(store: Store, ref: str) -> None:
    with pytest.raises(InvalidName):
        store.resolve(ref, "proj")


# -- materialize and the read cache ---------------------------------------------------


def test_materialize_gives_identical_read_only_files(store: Store, tmp_path: Path) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", TREE))

    out = store.materialize(version, tmp_path / "out")

    assert read_tree(out) == TREE
    for path in out.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, path
            if os.geteuid() != 0:  # root writes through any mode bits
                with pytest.raises(PermissionError):
                    path.open("ab")


def test_materialize_copies_never_the_cache_entry_itself(store: Store, tmp_path: Path) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", {"f": b"payload"}))

    out = store.materialize(version, tmp_path / "out")

    digest = version.files[0].sha256
    if isinstance(store.backend, LocalBackend):  # copied from the store's blob, no cache copy
        source = store.backend.root / "blobs" / "sha256" / digest[:2] / digest
        assert not store.cache.entry_path(digest).exists()
    else:
        source = store.cache.entry_path(digest)
    assert source.read_bytes() == b"payload"
    assert not os.path.samefile(out / "f", source)


def test_materialize_refuses_to_overwrite_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", TREE))
    dest = tmp_path / "out"
    make_tree(dest, {"sub/b.bin": b"mine"})

    with pytest.raises(UsageError, match="already exists"):
        store.materialize(version, dest)

    assert read_tree(dest) == {"sub/b.bin": b"mine"}


def test_corrupt_cache_entry_is_fetched_again(store: Store, tmp_path: Path) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", {"f": b"good bytes"}))
    digest = version.files[0].sha256
    entry = store.cache.fetch(digest)  # what code packages and S3 pulls read
    entry.chmod(0o644)
    entry.write_bytes(b"rotten")

    out = store.materialize(version, tmp_path / "second")

    assert (out / "f").read_bytes() == b"good bytes"
    assert store.cache.fetch(digest).read_bytes() == b"good bytes"
    assert entry.read_bytes() == b"good bytes"


def test_corrupt_blob_in_store_is_refused(store: Store, raw: RawAccess, tmp_path: Path) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", {"f": b"original"}))
    raw.write(f"blobs/sha256/{version.files[0].sha256[:2]}/{version.files[0].sha256}", b"evil")

    with pytest.raises(InfrastructureError, match="does not match its digest"):
        store.materialize(version, tmp_path / "out")
    assert not (tmp_path / "out" / "f").exists()


def test_manifest_with_escaping_path_is_refused_on_read(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", {"f": b"x"}))
    escaping = FileEntry("../escaped", 1, version.files[0].sha256)
    evil = dataclasses.replace(version, version=2, files=(escaping,))
    raw.write("artifacts/proj/data/v2.json", evil.to_json())

    with pytest.raises(StoreDamaged, match=r"the store is damaged: .*contains '\.\.'") as info:
        store.materialize(store.resolve("data:v2", "proj"), tmp_path / "out" / "inner")
    assert info.value.exit_code == 3
    assert not (tmp_path / "out" / "escaped").exists()


# -- blobs: dedup, presence, URIs -----------------------------------------------------


class CountingBackend:
    """Wraps a real backend and counts blob uploads, to see which ones were skipped."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.uploads: list[str] = []

    def __getattr__(self, attribute: str) -> object:
        return getattr(self.inner, attribute)

    def store_file(
        self,
        path: FilePath,
        destination: Destination,
        progress: ProgressCallback,
        before: FileStat | None = None,
    ) -> StoredBlob:
        def counted(sha256_hex: str) -> str | None:
            key = destination(sha256_hex)
            if key is not None:
                self.uploads.append(key)
            return key

        return self.inner.store_file(path, counted, progress, before)


class ThreadRecordingBackend(CountingBackend):
    """Wraps a real backend and records which thread stored each file, by size."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.threads: dict[int, set[int]] = {}

    def store_file(
        self,
        path: FilePath,
        destination: Destination,
        progress: ProgressCallback,
        before: FileStat | None = None,
    ) -> StoredBlob:
        self.threads.setdefault(os.stat(path).st_size, set()).add(threading.get_ident())
        return super().store_file(path, destination, progress, before)


def test_small_files_go_on_the_calling_thread_locally_and_to_threads_remotely(
    store_url: str, tmp_path: Path
) -> None:
    # Into a local store a small file's work holds the GIL: threads only take turns
    # at it. Large files (hashing lets the GIL go) and every file sent over a network
    # (round trips) are spread over the workers.
    plain = open_store(store_url)
    recording = ThreadRecordingBackend(plain.backend)
    store = Store(recording, plain.cache.root, workers=4)  # type: ignore[arg-type]
    big = SMALL_FILE + 1
    files = {f"small{index:02d}": f"{index}".encode() * 10 for index in range(40)}
    files |= {f"big{index}": os.urandom(big) for index in range(4)}

    version = store.publish("proj", "data", make_tree(tmp_path / "tree", files))

    assert len(version.files) == 44
    small_threads = set().union(*(t for size, t in recording.threads.items() if size < big))
    if plain.backend.remote:
        assert threading.get_ident() not in small_threads
        assert len(small_threads | recording.threads[big]) > 1
    else:
        assert small_threads == {threading.get_ident()}
        assert threading.get_ident() not in recording.threads[big]
    assert (
        store.materialize(version, tmp_path / "out").joinpath("big3").read_bytes() == files["big3"]
    )


def test_blob_already_present_is_not_uploaded_again(
    store_url: str, raw: RawAccess, tmp_path: Path
) -> None:
    plain = open_store(store_url)
    counting = CountingBackend(plain.backend)
    store = Store(counting, plain.cache.root, plain.workers)  # type: ignore[arg-type]
    first = store.publish("proj", "data", make_tree(tmp_path / "a", {"x": b"same", "y": b"1"}))
    assert len(counting.uploads) == 2

    second = store.publish("proj", "other", make_tree(tmp_path / "b", {"z": b"same", "w": b"2"}))

    assert len(counting.uploads) == 3
    assert counting.uploads[-1].endswith(sha(b"2"))
    assert len(raw.keys("blobs/")) == 3
    assert {f.sha256 for f in first.files} & {f.sha256 for f in second.files} == {sha(b"same")}


@pytest.mark.parametrize("listing_limit", [10_000, 5], ids=["listed", "probed"])
def test_many_files_upload_only_the_new_blobs(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listing_limit: int
) -> None:
    # Pushes of many files list the blobs once; with a store too big to list (here
    # a tiny limit) they probe each blob instead. Either way only new blobs go up.
    monkeypatch.setattr("aeromancy.store.blobs.MAX_LISTED_BLOBS", listing_limit)
    plain = open_store(store_url)
    counting = CountingBackend(plain.backend)
    store = Store(counting, plain.cache.root, plain.workers)  # type: ignore[arg-type]
    files = {f"part{index:02d}": f"content {index}".encode() for index in range(20)}
    store.publish("proj", "data", make_tree(tmp_path / "one", files))
    assert len(counting.uploads) == 20

    changed = make_tree(tmp_path / "two", {**files, "part07": b"new"})
    version = store.publish("proj", "data", changed)

    assert counting.uploads[20:] == [f"blobs/sha256/{sha(b'new')[:2]}/{sha(b'new')}"]
    assert read_tree(store.materialize(version, tmp_path / "out"))["part07"] == b"new"


def test_identical_files_in_one_push_share_a_blob(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    version = store.publish("proj", "d", make_tree(tmp_path / "s", {"a": b"dup", "b/c": b"dup"}))

    assert len(version.files) == 2
    assert raw.keys("blobs/") == [f"blobs/sha256/{sha(b'dup')[:2]}/{sha(b'dup')}"]
    assert read_tree(store.materialize(version, tmp_path / "out")) == {"a": b"dup", "b/c": b"dup"}


def test_has_content_notices_a_missing_blob(store: Store, raw: RawAccess, tmp_path: Path) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", TREE))
    assert store.has_content(version)

    digest = version.files[0].sha256
    raw.delete(f"blobs/sha256/{digest[:2]}/{digest}")

    assert not store.has_content(version)


@pytest.mark.parametrize("count", [1, 12], ids=["one", "many"])
def test_has_blobs_checks_many_digests_at_once(
    store: Store, raw: RawAccess, tmp_path: Path, count: int
) -> None:
    # A local store probes blobs one by one; S3 probes one alone, more in a pool.
    files = {f"f{index}": f"content {index}".encode() for index in range(count)}
    version = store.publish("proj", "data", make_tree(tmp_path / "src", files))
    digests = [entry.sha256 for entry in version.files]

    assert store.has_blobs([])
    assert store.has_blobs(iter(digests + digests))
    assert not store.has_blobs([*digests, sha(b"never pushed")])
    raw.delete(f"blobs/sha256/{digests[0][:2]}/{digests[0]}")
    assert not store.has_blobs(digests)
    with pytest.raises(InvalidName, match="not a sha256 digest"):
        store.has_blobs(["not-a-digest"])


def test_blob_uri_names_the_blob_in_place(store: Store, store_url: str) -> None:
    digest = sha(b"x")
    uri = store.blob_uri(digest)

    if store_url.startswith("s3://"):
        assert uri == f"{store_url}/blobs/sha256/{digest[:2]}/{digest}"
    else:
        assert uri == (Path(store_url) / "blobs" / "sha256" / digest[:2] / digest).as_uri()
    with pytest.raises(InvalidName):
        store.blob_uri("not-a-digest")


# -- path safety and bad input: refused, nothing written ------------------------------


def test_symlink_outside_the_directory_is_refused(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    source = make_tree(tmp_path / "src", {"ok": b"fine"})
    (tmp_path / "secret").write_bytes(b"outside")
    (source / "link").symlink_to(tmp_path / "secret")

    with pytest.raises(InvalidName, match="points outside the pushed directory"):
        store.publish("proj", "data", source)

    assert raw.keys() == []


def test_symlink_inside_the_directory_is_stored_as_its_target(store: Store, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", {"real/file": b"content"})
    (source / "alias").symlink_to(source / "real" / "file")
    (source / "dir-alias").symlink_to(source / "real")

    version = store.publish("proj", "data", source)

    assert read_tree(store.materialize(version, tmp_path / "out")) == {
        "alias": b"content",
        "dir-alias/file": b"content",
        "real/file": b"content",
    }


def test_symlink_loop_is_refused(store: Store, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", {"sub/f": b"x"})
    (source / "sub" / "up").symlink_to(source)

    with pytest.raises(InvalidName, match="loop"):
        store.publish("proj", "data", source)


@pytest.mark.parametrize(
    ("name", "kind"), [("bad name", InvalidName), ("../up", InvalidName), ("", InvalidName)]
)
def test_bad_artifact_name_writes_nothing(
    store: Store, raw: RawAccess, tmp_path: Path, name: str, kind: type[Exception]
) -> None:
    source = make_tree(tmp_path / "src", {"f": b"x"})

    with pytest.raises(kind):
        store.publish("proj", name, source)

    assert raw.keys() == []


def test_metadata_json_cannot_hold_writes_nothing(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    source = make_tree(tmp_path / "src", {"f": b"x"})

    with pytest.raises(UsageError, match="metadata is not JSON"):
        store.publish("proj", "data", source, metadata={"when": object()})

    assert raw.keys() == []


def test_missing_or_empty_source_writes_nothing(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        store.publish("proj", "data", tmp_path / "nope")
    (tmp_path / "empty" / "only-dirs").mkdir(parents=True)
    with pytest.raises(UsageError, match="holds no files"):
        store.publish("proj", "data", tmp_path / "empty")

    assert raw.keys() == []


# -- namespaces -----------------------------------------------------------------------


def test_dev_versions_stay_out_of_tracked_resolution(store: Store, tmp_path: Path) -> None:
    tracked = store.publish("proj", "data", make_tree(tmp_path / "t", {"f": b"t"}))
    dev = store.publish("proj", "data", make_tree(tmp_path / "d", {"f": b"d"}), namespace="dev")

    assert dev.label == "dev1"
    assert store.resolve("data", "proj") == tracked
    assert store.list_artifacts("proj") == [tracked]
    with pytest.raises(UsageError, match="dev version"):
        store.resolve("data:dev1", "proj")


def test_dev_resolution_takes_the_newest_of_both(store: Store, tmp_path: Path) -> None:
    store.publish("proj", "data", make_tree(tmp_path / "t1", {"f": b"1"}))
    dev = store.publish("proj", "data", make_tree(tmp_path / "d", {"f": b"d"}), namespace="dev")
    assert store.resolve("data", "proj", namespace="dev") == dev

    newer = store.publish("proj", "data", make_tree(tmp_path / "t2", {"f": b"2"}))

    assert store.resolve("data:latest", "proj", namespace="dev") == newer
    assert store.resolve("data:dev1", "proj", namespace="dev") == dev
    assert store.resolve("data:v1", "proj", namespace="dev").label == "v1"
    assert [v.label for v in store.list_versions("proj", "data", "dev")] == ["v1", "dev1", "v2"]
    assert store.list_artifacts("proj", "dev") == [newer]
    with pytest.raises(NotFound, match="has v1, dev1, v2"):
        store.resolve("data:dev5", "proj", namespace="dev")


def test_tracked_view_of_a_dev_only_artifact_says_so(store: Store, tmp_path: Path) -> None:
    store.publish("proj", "data", make_tree(tmp_path / "d", {"f": b"d"}), namespace="dev")

    with pytest.raises(NotFound, match=r"no tracked version of proj/data; .* dev versions dev1"):
        store.resolve("data", "proj")


def test_unknown_namespace_is_refused(store: Store) -> None:
    with pytest.raises(InvalidName, match="namespace"):
        store.list_artifacts("proj", namespace="staging")


# -- run records ----------------------------------------------------------------------


def test_run_records_round_trip_and_are_written_once(store: Store) -> None:
    record = {"task": "train", "config": {"lr": 0.1}, "status": "succeeded"}
    store.put_run_record("proj", "run-1", record)
    store.put_run_record("proj", "run-2", {**record, "task": "eval"})

    assert store.get_run_record("proj", "run-1") == record
    assert [r["task"] for r in store.list_run_records("proj")] == ["train", "eval"]
    with pytest.raises(UsageError, match="already exists"):
        store.put_run_record("proj", "run-1", {"task": "overwrite"})
    assert store.get_run_record("proj", "run-1") == record


def test_run_records_keep_namespaces_apart(store: Store) -> None:
    store.put_run_record("proj", "run-1", {"task": "tracked"})
    store.put_run_record("proj", "run-1", {"task": "dev"}, namespace="dev")

    assert store.get_run_record("proj", "run-1", namespace="dev") == {"task": "dev"}
    assert store.list_run_records("proj") == [{"task": "tracked"}]
    assert store.list_run_records("other") == []


def test_run_ids_are_listed_sorted_per_namespace(store: Store, raw: RawAccess) -> None:
    assert store.list_run_ids("proj") == []
    for run_id in ("run-b", "run-a", "run-c"):
        store.put_run_record("proj", run_id, {"task": run_id})
    store.put_run_record("proj", "run-d", {"task": "dev"}, namespace="dev")
    # Not a run record: a nested key and a foreign file under the runs folder.
    raw.write("runs/proj/nested/run-x.json", b"{}")
    raw.write("runs/proj/notes.txt", b"")

    assert store.list_run_ids("proj") == ["run-a", "run-b", "run-c"]
    assert store.list_run_ids("proj", namespace="dev") == ["run-d"]
    assert store.list_run_ids("other") == []
    assert [record["task"] for record in store.list_run_records("proj")] == [
        "run-a",
        "run-b",
        "run-c",
    ]


def test_unknown_run_record_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no run run-9 in project proj"):
        store.get_run_record("proj", "run-9")
    with pytest.raises(InvalidName):
        store.get_run_record("proj", "../escape")
