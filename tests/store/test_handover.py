"""Pulled files and task inputs are the user's own: no shared inodes, no writes outside DEST.

Real stores on both backends (a directory, moto's S3 server on loopback); the
attacks are real writes, links and manifests edited behind the store's back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.errors import InvalidName, StoreDamaged, UsageError
from aeromancy.store import ArtifactVersion, FileEntry, Store, open_store
from aeromancy.store.copying import FICLONE, clone_or_copy
from aeromancy.store.local import LocalBackend


class RawAccess(Protocol):
    """Direct object access behind the store's back (see tests/store/conftest.py)."""

    def keys(self, prefix: str = "") -> list[str]: ...
    def write(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob(data: bytes) -> str:
    return f"blobs/sha256/{sha(data)[:2]}/{sha(data)}"


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def scribble(path: Path) -> None:
    """Make a read-only pulled file writable and change it, as a user (or root) might."""
    path.chmod(0o644)
    with path.open("r+b") as handle:
        handle.write(b"CHANGED")


TREE = {"a.txt": b"alpha bytes", "sub/b.bin": b"beta bytes"}

# -- no shared inodes -----------------------------------------------------------------


def test_two_pulls_and_the_cache_are_three_inodes(store: Store, tmp_path: Path) -> None:
    # From S3 the pulls are copies of the cache entry; from a local store, of the
    # store's own blob (no cache copy is made): either way, three inodes.
    version = store.publish("proj", "data", make_tree(tmp_path / "src", TREE))
    first = store.materialize(version, tmp_path / "d0")
    second = store.materialize(version, tmp_path / "d1")

    root = store.backend.root if isinstance(store.backend, LocalBackend) else None
    for rel, data in TREE.items():
        entry = root / blob(data) if root else store.cache.entry_path(sha(data))
        assert len({os.stat(p).st_ino for p in (first / rel, second / rel, entry)}) == 3
        assert os.stat(first / rel).st_nlink == 1
        assert stat.S_IMODE(os.stat(second / rel).st_mode) == 0o444
    scribble(second / "a.txt")

    assert read_tree(first) == TREE
    if root:
        assert (root / blob(b"alpha bytes")).read_bytes() == b"alpha bytes"
        assert not store.cache.entry_path(sha(b"alpha bytes")).exists()
    else:
        assert store.cache.entry_path(sha(b"alpha bytes")).read_bytes() == b"alpha bytes"
    again = store.materialize(store.resolve("data", "proj"), tmp_path / "d2")
    assert read_tree(again) == TREE


def test_cache_inside_the_store_never_hands_out_the_stores_blob(tmp_path: Path) -> None:
    # The cache's layout is the store's, so with one directory for both the cache
    # entry *is* the store's blob: a pulled file must still be a file of its own.
    root = tmp_path / "store"
    store = open_store(root, cache_dir=root)
    version = store.publish("proj", "data", make_tree(tmp_path / "src", TREE))

    out = store.materialize(version, tmp_path / "out")
    scribble(out / "a.txt")

    assert (root / blob(b"alpha bytes")).read_bytes() == b"alpha bytes"
    fresh = open_store(root, cache_dir=tmp_path / "other-cache")
    assert read_tree(fresh.materialize(fresh.resolve("data", "proj"), tmp_path / "again")) == TREE


def test_hard_links_only_when_asked_for(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", TREE))
    monkeypatch.setenv("AEROMANCY_LINK", "hardlink")

    out = store.materialize(version, tmp_path / "linked")

    assert os.path.samefile(out / "a.txt", store.cache.entry_path(sha(b"alpha bytes")))
    monkeypatch.setenv("AEROMANCY_LINK", "symlink")
    with pytest.raises(UsageError, match="AEROMANCY_LINK='symlink' is not a link mode"):
        store.materialize(version, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_clone_or_copy_copies_every_byte_where_reflinks_are_refused(tmp_path: Path) -> None:
    data = os.urandom(3 << 20) + b"tail"
    (tmp_path / "src").write_bytes(data)
    source = os.open(tmp_path / "src", os.O_RDONLY)
    dest = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        clone_or_copy(source, dest)
    finally:
        os.close(source)
        os.close(dest)
    assert (tmp_path / "dst").read_bytes() == data
    assert os.stat(tmp_path / "src").st_ino != os.stat(tmp_path / "dst").st_ino
    assert FICLONE == 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


# -- manifests are checked against their key and content ------------------------------


def _lies(version: ArtifactVersion) -> dict[str, bytes]:
    """Manifests that contradict their key or themselves, each as stored bytes."""
    doc = json.loads(version.to_json())
    f = doc["files"][0]

    def edited(**changes: object) -> bytes:
        return json.dumps({**doc, **changes}).encode()

    return {
        "v1 stored as v2": version.to_json(),
        "another artifact's manifest": dataclasses.replace(version, name="other").to_json(),
        "dev manifest under tracked": dataclasses.replace(version, namespace="dev").to_json(),
        "negative size": edited(files=[{**f, "size": -1}]),
        "size as text": edited(files=[{**f, "size": "11"}]),
        "sha256 not hex": edited(files=[{**f, "sha256": "zz" * 32}]),
        "path twice": edited(files=[f, f]),
        "digest of other files": edited(files=[{**f, "size": f["size"] + 1}]),
        "not json": b"{not json",
        "json list": b"[]",
        "no files": edited(files=None),
    }


@pytest.mark.parametrize(
    "lie",
    [
        "v1 stored as v2",
        "another artifact's manifest",
        "dev manifest under tracked",
        "negative size",
        "size as text",
        "sha256 not hex",
        "path twice",
        "digest of other files",
        "not json",
        "json list",
        "no files",
    ],
)
def test_a_manifest_that_lies_is_damage_exit_3(
    store: Store, raw: RawAccess, tmp_path: Path, lie: str
) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", {"f": b"the bytes"}))
    raw.write("artifacts/proj/data/v2.json", _lies(version)[lie])

    with pytest.raises(
        StoreDamaged, match="the store is damaged: manifest artifacts/proj/data/v2"
    ) as info:
        store.resolve("data:v2", "proj")
    assert info.value.exit_code == 3
    assert "\n" not in str(info.value)


def _republish(raw: RawAccess, version: ArtifactVersion, files: tuple[FileEntry, ...]) -> None:
    """Store v2 with other file entries and a digest that matches them (a careful liar)."""
    raw.write(
        "artifacts/proj/data/v2.json",
        dataclasses.replace(version, version=2, files=files).to_json(),
    )


def test_a_lying_sha256_is_found_when_the_blob_is_verified(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    version = store.publish(
        "proj", "data", make_tree(tmp_path / "src", {"f": b"honest", "g": b"other"})
    )
    honest, other = version.files
    # f claims g's digest: the blob holds other bytes than f's, its size betrays it.
    _republish(raw, version, (dataclasses.replace(honest, sha256=other.sha256), other))

    with pytest.raises(StoreDamaged, match="gives f 6 bytes, but its blob holds 5"):
        store.materialize(store.resolve("data:v2", "proj"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_lying_size_is_damage(store: Store, raw: RawAccess, tmp_path: Path) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", {"f": b"twelve bytes"}))
    _republish(raw, version, (dataclasses.replace(version.files[0], size=99),))

    with pytest.raises(StoreDamaged, match="gives f 99 bytes, but its blob holds 12"):
        store.materialize(store.resolve("data:v2", "proj"), tmp_path / "out")


def test_a_blob_that_does_not_hash_to_its_name_is_damage(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", {"f": b"the bytes"}))
    raw.write(blob(b"the bytes"), b"not them!")

    with pytest.raises(StoreDamaged, match="does not match its digest") as info:
        store.materialize(version, tmp_path / "out")
    assert info.value.exit_code == 3


def test_pull_of_a_version_whose_blob_is_missing_exits_3_on_one_line(
    store_url: str, raw: RawAccess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(
        make_tree(
            tmp_path / "proj",
            {"pyproject.toml": b'[tool.aeromancy]\nproject = "demo"\n', "data/f": b"x"},
        )
    )
    runner = CliRunner()
    assert runner.invoke(main, ["--store", store_url, "push", "data", "data"]).exit_code == 0
    raw.delete(blob(b"x"))

    result = runner.invoke(main, ["--store", store_url, "pull", "data", "out"])

    assert result.exit_code == 3, result.output
    assert "the store is damaged: blob" in result.stderr
    assert "is missing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "proj" / "out").exists()


# -- nothing is written through a link inside DEST ------------------------------------


def test_a_symlinked_directory_in_dest_is_refused_and_nothing_leaves_dest(
    store: Store, tmp_path: Path
) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", TREE))
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "sub").symlink_to(outside)

    with pytest.raises(UsageError, match=r"dest/sub is a symbolic link; a pull never writes"):
        store.materialize(version, tmp_path / "dest")

    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["sub"]


def test_a_symlink_at_a_files_name_is_refused(store: Store, tmp_path: Path) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", TREE))
    (tmp_path / "victim").write_bytes(b"precious")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "a.txt").symlink_to(tmp_path / "victim")

    with pytest.raises(UsageError, match=r"a\.txt is a symbolic link"):
        store.materialize(version, tmp_path / "dest")
    assert (tmp_path / "victim").read_bytes() == b"precious"


def test_dest_itself_may_be_a_link_to_a_directory(store: Store, tmp_path: Path) -> None:
    version = store.publish("proj", "data", make_tree(tmp_path / "src", TREE))
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")

    store.materialize(version, tmp_path / "alias")

    assert read_tree(tmp_path / "real") == TREE


# -- a saved link that points outside what was saved is refused -----------------------


def test_pushing_a_link_to_a_file_outside_is_refused(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_bytes(b"root:x:0:0")
    (tmp_path / "model.bin").symlink_to(tmp_path / "secret")

    with pytest.raises(InvalidName, match=r"model\.bin is a symbolic link") as info:
        store.publish("proj", "model", tmp_path / "model.bin")
    assert info.value.exit_code == 2
    assert raw.keys() == []


@pytest.mark.parametrize("kind", ["loop", "mutual"])
def test_a_symlink_loop_in_a_pushed_directory_is_refused(
    store: Store, raw: RawAccess, tmp_path: Path, kind: str
) -> None:
    source = make_tree(tmp_path / "src", {"f": b"x"})
    if kind == "loop":
        (source / "self").symlink_to(source / "self")
    else:
        (source / "a").symlink_to(source / "b")
        (source / "b").symlink_to(source / "a")

    with pytest.raises(
        UsageError, match=r"cannot read (self|a|b): Too many levels of symbolic links"
    ):
        store.publish("proj", "data", source)
    assert raw.keys() == []
