"""``aeromancy gc`` on both backends: what it deletes, what it keeps, and publishes at once."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.errors import StoreDamaged
from aeromancy.leftovers import owner
from aeromancy.records import input_entry
from aeromancy.store import Store, open_store
from aeromancy.store.gc import LEASE_PREFIX, GcOptions, collect, launching

AEROMANCY = Path(sys.executable).with_name("aeromancy")
NOW = GcOptions(grace_seconds=0)


class RawAccess(Protocol):
    def keys(self, prefix: str = "") -> list[str]: ...
    def write(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob(data: bytes) -> str:
    return f"blobs/sha256/{sha(data)[:2]}/{sha(data)}"


def tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def orphan(store: Store, raw: RawAccess, tmp_path: Path, data: bytes) -> None:
    """Leave a blob no manifest references (its version's manifest deleted by hand)."""
    store.publish("proj", "gone", tree(tmp_path / f"o-{sha(data)[:8]}", {"f": data}))
    [key] = raw.keys("artifacts/proj/gone/")
    raw.delete(key)


def test_gc_deletes_only_unreferenced_blobs(store: Store, raw: RawAccess, tmp_path: Path) -> None:
    kept = store.publish("proj", "data", tree(tmp_path / "d", {"a": b"keep me", "b": b"shared"}))
    orphan(store, raw, tmp_path, b"nobody needs these 27 bytes")
    orphan(store, raw, tmp_path, b"shared")  # also in data: stays

    dry = collect(store.backend, GcOptions(dry_run=True, grace_seconds=0))
    assert (dry.blobs, dry.blob_bytes) == (1, 27)
    assert blob(b"nobody needs these 27 bytes") in raw.keys("blobs/")

    report = collect(store.backend, NOW)

    assert (report.blobs, report.blob_bytes, report.versions) == (1, 27, [])
    assert sorted(raw.keys("blobs/")) == sorted([blob(b"keep me"), blob(b"shared")])
    assert store.has_content(kept)
    [end, start] = raw.keys("gc/")  # when it ran, for publishers to see
    assert start.endswith(".start.json")
    assert end.endswith(".end.json")


def test_blobs_younger_than_the_grace_period_are_kept(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    orphan(store, raw, tmp_path, b"just uploaded")

    report = collect(store.backend, GcOptions())

    assert (report.blobs, report.kept_young) == (0, 1)
    assert blob(b"just uploaded") in raw.keys("blobs/")


def test_keep_last_deletes_older_versions_and_their_blobs(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    for text in (b"one", b"two", b"three"):
        store.publish("proj", "data", tree(tmp_path / text.decode(), {"f": text, "same": b"s"}))
    assert (
        collect(store.backend, GcOptions(keep_last=1, older_than_days=1, grace_seconds=0)).versions
        == []
    )

    report = collect(store.backend, GcOptions(keep_last=1, grace_seconds=0))

    assert report.versions == ["proj/data:v1", "proj/data:v2"]
    assert report.blobs == 2
    assert [v.label for v in store.list_versions("proj", "data")] == ["v3"]
    out = store.materialize(store.resolve("data", "proj"), tmp_path / "out")
    assert (out / "f").read_bytes() == b"three"


def test_keep_last_never_deletes_a_version_a_run_record_read(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    versions = [
        store.publish("proj", "data", tree(tmp_path / text.decode(), {"f": text}))
        for text in (b"one", b"two", b"three")
    ]
    run_record(store, "r1", inputs=[input_entry("data", versions[0])])

    report = collect(store.backend, GcOptions(keep_last=1, grace_seconds=0))

    assert (report.versions, report.kept_inputs) == (["proj/data:v2"], 1)
    assert [v.label for v in store.list_versions("proj", "data")] == ["v1", "v3"]
    assert store.has_content(store.resolve("data:v1", "proj"))


def stored_image(store: Store, raw: RawAccess, tmp_path: Path, name: str) -> str:
    """Store an image record (its config and one layer as blobs) and a tag; return its hex."""
    config, layer = f"config of {name}".encode(), f"layer of {name}".encode()
    orphan(store, raw, tmp_path, config)
    orphan(store, raw, tmp_path, layer)
    image = {
        "format": 1,
        "id": f"sha256:{sha(config)}",
        "config": {"sha256": sha(config), "size": len(config)},
        "layers": [{"sha256": sha(layer), "size": len(layer)}],
        "tags": [f"aeromancy/proj:{name}"],
    }
    raw.write(f"images/{sha(config)}.json", json.dumps(image).encode())
    tag = {"id": f"sha256:{sha(config)}", "tag": f"aeromancy/proj:{name}"}
    raw.write(f"images/tags/aeromancy/proj/{name}.json", json.dumps(tag).encode())
    return sha(config)


def code_package(store: Store, raw: RawAccess, tmp_path: Path, commit: str) -> str:
    """Store a code package of ``commit`` (one file, as a blob); return its digest."""
    source = f"print('commit {commit}')\n".encode()
    orphan(store, raw, tmp_path, source)
    digest = f"sha256:{sha(commit.encode())}"
    package = {
        "format": 1,
        "project": "proj",
        "commit": commit,
        "tree": commit,
        "digest": digest,
        "files": [{"path": "pipeline.py", "size": len(source), "sha256": sha(source)}],
        "links": [],
    }
    raw.write(f"code/proj/{commit}.json", json.dumps(package).encode())
    return digest


def run_record(store: Store, run_id: str, **fields: object) -> None:
    store.put_run_record("proj", run_id, {"run_id": run_id, "task": "t", **fields})


def test_images_and_code_packages_no_record_uses_are_deleted_with_their_blobs(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    used, unused = (stored_image(store, raw, tmp_path, name) for name in ("used", "unused"))
    by_digest = code_package(store, raw, tmp_path, "a" * 40)
    code_package(store, raw, tmp_path, "b" * 40)  # named by commit (a record before packages)
    code_package(store, raw, tmp_path, "c" * 40)  # no record ran it
    run_record(store, "r1", image_id=f"sha256:{used}", code_package=by_digest)
    run_record(store, "r2", environment_image_id=f"sha256:{used}", git_commit="b" * 40)

    dry = collect(store.backend, GcOptions(dry_run=True, grace_seconds=0))
    assert (len(dry.images), len(dry.code_packages), dry.blobs) == (1, 1, 3)
    assert f"images/{unused}.json" in raw.keys("images/")

    report = collect(store.backend, NOW)

    assert (len(report.images), len(report.code_packages), report.blobs) == (1, 1, 3)
    assert raw.keys("images/") == [f"images/{used}.json", "images/tags/aeromancy/proj/used.json"]
    assert raw.keys("code/") == [
        "code/proj/" + "a" * 40 + ".json",
        "code/proj/" + "b" * 40 + ".json",
    ]
    assert sorted(raw.keys("blobs/")) == sorted(
        blob(data)
        for data in (
            b"config of used",
            b"layer of used",
            f"print('commit {'a' * 40}')\n".encode(),
            f"print('commit {'b' * 40}')\n".encode(),
        )
    )


def test_an_unused_image_younger_than_the_grace_period_is_kept(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    image = stored_image(store, raw, tmp_path, "new")
    code_package(store, raw, tmp_path, "d" * 40)

    report = collect(store.backend, GcOptions())

    assert (len(report.images), len(report.code_packages), report.blobs) == (0, 0, 0)
    assert f"images/{image}.json" in raw.keys("images/")
    assert raw.keys("code/") == ["code/proj/" + "d" * 40 + ".json"]


def test_no_image_or_code_package_goes_while_a_launch_holds_a_lease(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    image = stored_image(store, raw, tmp_path, "launching")
    code_package(store, raw, tmp_path, "e" * 40)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stale = f"{LEASE_PREFIX}{owner().replace(str(os.getpid()), dead, 1)}-0.json"
    raw.write(stale, b"{}")  # a lease whose launcher died: not a reason to keep anything

    with launching(store.backend):
        [lease] = [key for key in raw.keys(LEASE_PREFIX) if key != stale]
        during = collect(store.backend, NOW)
    after = collect(store.backend, NOW)

    assert (len(during.images), len(during.code_packages), during.blobs) == (0, 0, 0)
    assert during.environments_kept == "a tracked run is being launched"
    assert lease not in raw.keys(LEASE_PREFIX)
    assert stale not in raw.keys(LEASE_PREFIX)
    assert (len(after.images), len(after.code_packages), after.blobs) == (1, 1, 3)
    assert f"images/{image}.json" not in raw.keys("images/")


def test_an_unreadable_run_record_stops_gc_deleting_what_records_might_use(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    for text in (b"one", b"two"):
        store.publish("proj", "data", tree(tmp_path / text.decode(), {"f": text}))
    stored_image(store, raw, tmp_path, "maybe-used")
    raw.write("runs/proj/zzz-broken.json", b"{truncated")

    report = collect(store.backend, GcOptions(keep_last=1, grace_seconds=0))

    assert (report.versions, report.images, report.blobs) == ([], [], 0)
    assert report.environments_kept == "1 run record(s) unreadable"
    assert len(store.list_versions("proj", "data")) == 2


def test_blobs_of_stored_images_are_kept(store: Store, raw: RawAccess, tmp_path: Path) -> None:
    image = stored_image(store, raw, tmp_path, "in-use")
    run_record(store, "r1", image_id=f"sha256:{image}")

    assert collect(store.backend, NOW).blobs == 0
    assert blob(b"layer of in-use") in raw.keys("blobs/")


def test_the_output_log_a_run_record_names_is_kept(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    orphan(store, raw, tmp_path, b"printed by a task")
    orphan(store, raw, tmp_path, b"nobody's log")
    record = {"run_id": "20260101-000000-00000000", "log": sha(b"printed by a task")}
    store.put_run_record("proj", record["run_id"], record, namespace="dev")

    assert collect(store.backend, NOW).blobs == 1
    assert blob(b"printed by a task") in raw.keys("blobs/")
    assert blob(b"nobody's log") not in raw.keys("blobs/")


def test_a_damaged_manifest_stops_gc_before_it_deletes_anything(
    store: Store, raw: RawAccess, tmp_path: Path
) -> None:
    orphan(store, raw, tmp_path, b"would go")
    raw.write("artifacts/proj/data/v1.json", b"{broken")

    with pytest.raises(StoreDamaged, match="gc cannot tell which blobs it needs") as info:
        collect(store.backend, NOW)
    assert info.value.exit_code == 3
    assert blob(b"would go") in raw.keys("blobs/")


def test_the_gc_command_reports_what_it_frees(
    store_url: str, raw: RawAccess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(store_url)
    orphan(store, raw, tmp_path, b"x" * 2048)
    monkeypatch.chdir(
        tree(tmp_path / "proj", {"pyproject.toml": b'[tool.aeromancy]\nproject = "proj"\n'})
    )

    dry = CliRunner().invoke(main, ["--store", store_url, "gc", "--dry-run", "--grace", "0"])
    real = CliRunner().invoke(main, ["--store", store_url, "gc", "--grace", "0"])

    assert dry.exit_code == 0, dry.output
    assert (
        "gc would delete 0 version(s), 0 image(s), 0 code package(s) and 1 blob(s); "
        "would free 2.0 KiB" in dry.stdout
    )
    assert real.exit_code == 0, real.output
    assert (
        "gc deleted 0 version(s), 0 image(s), 0 code package(s) and 1 blob(s); freed 2.0 KiB"
        in real.stdout
    )
    assert raw.keys("blobs/") == []


def test_gc_and_eight_publishers_at_once_leave_every_manifests_blobs(
    store_url: str, raw: RawAccess, tmp_path: Path
) -> None:
    store = open_store(store_url)
    # Orphans the publishers will find present and not send again: the dangerous case.
    shared = {f"shared-{i}": f"orphaned content {i}".encode() * 100 for i in range(6)}
    for name, data in shared.items():
        orphan(store, raw, tmp_path / name, data)
    project = tree(tmp_path / "proj", {"pyproject.toml": b'[tool.aeromancy]\nproject = "proj"\n'})
    for index in range(8):
        tree(project / f"data{index}", {**shared, "own": f"publisher {index}".encode()})

    pushes = [
        subprocess.Popen(
            [str(AEROMANCY), "--store", store_url, "push", "data", f"data{index}"],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for index in range(8)
    ]
    rounds = 0
    while any(push.poll() is None for push in pushes) or rounds < 2:
        collect(store.backend, NOW)
        rounds += 1
    for push in pushes:
        assert push.wait() == 0, push.stderr.read() if push.stderr else ""

    versions = store.list_versions("proj", "data")
    assert len(versions) == 8
    for version in versions:
        assert store.has_content(version), version.ref
    collect(store.backend, NOW)
    assert all(store.has_content(version) for version in versions)
