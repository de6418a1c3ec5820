"""Identical bytes are not a new version: publishing the newest version's files again reuses it."""

from __future__ import annotations

from pathlib import Path

from aeromancy.store import Store


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


FILES = {"a.txt": b"alpha", "sub/b.bin": b"\x00\x01"}


def test_identical_output_returns_the_newest_version(store: Store, tmp_path: Path) -> None:
    first = store.publish("proj", "data", tree(tmp_path / "one", FILES), run_id="run-1")
    again = store.publish("proj", "data", tree(tmp_path / "two", FILES), run_id="run-2")

    assert again == first
    assert again.run_id == "run-1"  # the version keeps its producer
    assert [v.label for v in store.list_versions("proj", "data")] == ["v1"]
    assert store.resolve("data", "proj").label == "v1"


def test_different_bytes_type_or_metadata_make_a_new_version(store: Store, tmp_path: Path) -> None:
    store.publish("proj", "data", tree(tmp_path / "one", FILES))
    changed = store.publish("proj", "data", tree(tmp_path / "two", {**FILES, "a.txt": b"beta"}))
    typed = store.publish("proj", "data", tree(tmp_path / "three", FILES), type="dataset")
    tagged = store.publish(
        "proj", "data", tree(tmp_path / "four", FILES), type="dataset", metadata={"rows": 1}
    )
    renamed = store.publish("proj", "data", tree(tmp_path / "five", {"c.txt": b"alpha"}))

    labels = [changed.label, typed.label, tagged.label, renamed.label]
    assert labels == ["v2", "v3", "v4", "v5"]


def test_only_the_newest_version_is_compared(store: Store, tmp_path: Path) -> None:
    store.publish("proj", "data", tree(tmp_path / "one", FILES))
    store.publish("proj", "data", tree(tmp_path / "two", {"a.txt": b"other"}))
    back = store.publish("proj", "data", tree(tmp_path / "three", FILES))
    # Going back to v1's bytes is a change from v2: latest must move to them.
    assert back.label == "v3"
    assert store.resolve("data", "proj").label == "v3"


def test_dev_and_tracked_versions_are_not_mixed(store: Store, tmp_path: Path) -> None:
    tracked = store.publish("proj", "data", tree(tmp_path / "one", FILES))
    dev = store.publish("proj", "data", tree(tmp_path / "two", FILES), namespace="dev")
    assert (tracked.label, dev.label) == ("v1", "dev1")
