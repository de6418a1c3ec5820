"""Run packs: an invocation packs its records; cold readers use, verify and merge packs.

Stores are real (a directory, the loopback S3 server). Requests are counted by a thin
proxy around the real backend, which passes every call through.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from aeromancy.experiments import record_cache
from aeromancy.experiments.record_cache import all_row_sources
from aeromancy.experiments.results import row_source
from aeromancy.store import Store, open_store
from aeromancy.store.backend import Backend
from aeromancy.store.run_markers import list_markers
from aeromancy.store.run_packs import PackEntry, encode_pack, packs_prefix, read_pack, write_pack

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project

RUN = ("run", "--dev", "--tracker", "none")


class Counting:
    """The real backend, with a count of the keys read (``packs`` or ``records``)."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend
        self.reads: Counter[str] = Counter()

    def read_bytes(self, key: str) -> bytes | None:
        self.reads["packs" if "/packs/" in key else "records"] += 1
        return self.inner.read_bytes(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def counted(url: str) -> tuple[Store, Counting]:
    backend = Counting(open_store(url).backend)
    return Store(backend), backend  # type: ignore[arg-type]


def pack_keys(store: Store, namespace: str = "dev", project: str = "exp") -> list[str]:
    return store.backend.list_prefix(packs_prefix(namespace, project))  # type: ignore[arg-type]


def stored_bytes(store: Store, record: dict[str, Any], namespace: str = "dev") -> bytes:
    root = "dev/" if namespace == "dev" else ""
    data = store.backend.read_bytes(f"{root}runs/{record['project']}/{record['run_id']}.json")
    assert data is not None
    return data


def entries_of(store: Store, key: str) -> set[str]:
    pack = read_pack(store.backend, key)
    assert pack is not None
    return set(pack.entries)


def no_warnings(message: str) -> None:
    raise AssertionError(f"unexpected warning: {message}")


def test_an_invocation_packs_its_records_and_a_cold_reader_uses_the_pack(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.ok(*RUN)
    store = project.store()
    # The invocation completed: its start marker is gone.
    assert list_markers(store.backend, "dev", "exp") == []
    # The first writer's empty sealed pack, and the invocation's pack.
    packs = [read_pack(store.backend, key) for key in pack_keys(store)]
    [first] = [p for p in packs if p is not None and p.sealed is not None]
    [pack] = [p for p in packs if p is not None and p.sealed is None]
    assert first.entries == {}
    entries = pack.entries
    records = project.records()
    assert sorted(entries) == sorted(r["run_id"] for r in records)
    for record in records:
        data = stored_bytes(store, record)
        entry = entries[record["run_id"]]
        assert (entry.size, entry.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert "environment" not in entry.record
        assert entry.record["config"] == record["config"]

    # A new machine: an empty cache reads the one pack and no record.
    monkeypatch.setenv("AEROMANCY_CACHE", str(tmp_path / "new-machine"))
    cold, backend = counted(project.store_url)
    sources = all_row_sources(cold, "exp", no_warnings)
    assert backend.reads == {"packs": 2}
    assert sources == [row_source(r) for r in records]
    # Warm: nothing read at all.
    backend.reads.clear()
    assert all_row_sources(cold, "exp", no_warnings) == sources
    assert backend.reads == {}


def test_a_sweep_is_one_pack_for_all_its_variants(project: Project) -> None:
    project.ok(*RUN, "--sweep", "train.lr=0.1,0.2,0.3")
    packs = [read_pack(project.store().backend, key) for key in pack_keys(project.store())]
    [entries] = [p.entries for p in packs if p is not None and p.entries]
    assert sorted(entries) == sorted(r["run_id"] for r in project.records())
    assert len(entries) == 2 + 3 * 2  # prepare and baseline once, train and report per variant


def test_a_damaged_pack_is_ignored_with_one_warning(project: Project) -> None:
    project.ok(*RUN)
    [key] = [k for k in pack_keys(project.store()) if entries_of(project.store(), k)]
    path = Path(project.store_url) / key
    path.chmod(0o644)
    path.write_bytes(gzip.compress(b"{not json"))
    size = path.stat().st_size
    result = project.cli("results", "--all", "--format", "csv")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: ignoring damaged run pack {key}: its bytes do not hash to its name "
        f"({size} bytes) (it only repeats stored run records: deleting it "
        "loses nothing)"
    ]
    runs = [line.split(",")[0] for line in result.stdout.splitlines()[1:]]
    assert runs == [r["run_id"] for r in project.records()]
    # That reader listed every record and stored them all as one sealed pack in its place.
    assert not path.exists()
    again = project.cli("results", "--all", "--format", "csv")
    assert again.exit_code == 0, again.output
    assert "warning" not in again.output


def test_a_pack_entry_the_listing_contradicts_is_not_trusted(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.ok(*RUN, "--only", "prepare")
    [record] = project.records()
    store = project.store()
    data = stored_bytes(store, record)
    forged = {**record, "task": "forged"}
    wrong_size = PackEntry(len(data) + 1, "0", forged)
    [genuine] = [key for key in pack_keys(store) if entries_of(store, key)]
    write_pack(store.backend, "dev", "exp", {record["run_id"]: wrong_size})
    # Beside the genuine pack, the forged entry loses: the listing agrees with the other.
    monkeypatch.setenv("AEROMANCY_CACHE", str(tmp_path / "machine-1"))
    cold, backend = counted(project.store_url)
    [source] = all_row_sources(cold, "exp", no_warnings)
    assert source["fixed"]["task"] == "prepare"
    assert backend.reads == {"packs": 3}
    # Alone, it is not trusted: the record is read on its own.
    store.backend.delete(genuine)
    monkeypatch.setenv("AEROMANCY_CACHE", str(tmp_path / "new-machine"))
    cold, backend = counted(project.store_url)
    [source] = all_row_sources(cold, "exp", no_warnings)
    assert source["fixed"]["task"] == "prepare"
    assert backend.reads == {"packs": 2, "records": 1}  # the first writer's, the forged


def put_records(store: Store, count: int, group: str = "g1") -> list[dict[str, Any]]:
    """Store ``count`` small run records directly, without packs; return them."""
    records = []
    for index in range(count):
        record = {
            "run_id": f"20261201-{index:06d}-{group}",
            "project": "exp",
            "task": "t",
            "status": "succeeded",
            "group": group,
            "started": f"2026-12-01T10:00:{index % 60:02d}.{index:06d}+00:00",
            "config": {"i": index},
            "environment": {"python": "3.11", "python_packages": {"x": "1"}},
        }
        store.put_run_record("exp", record["run_id"], record, namespace="dev")
        records.append(record)
    return records


def test_a_reader_packs_many_records_it_read_one_by_one(
    local_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(local_store_url)
    records = put_records(store, record_cache.PACK_MIN)
    first, backend = counted(local_store_url)
    assert len(all_row_sources(first, "exp", no_warnings)) == len(records)
    assert backend.reads == {"records": len(records)}
    [key] = pack_keys(store)
    monkeypatch.setenv("AEROMANCY_CACHE", str(tmp_path / "new-machine"))
    second, backend = counted(local_store_url)
    sources = all_row_sources(second, "exp", no_warnings)
    assert backend.reads == {"packs": 1}
    assert sources == [row_source(r) for r in records]
    assert pack_keys(store) == [key]
    assert entries_of(store, key) == {r["run_id"] for r in records}


def test_many_packs_are_merged_into_one(
    s3_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(s3_store_url)
    count = record_cache.PACK_MERGE + 1
    records = [r for i in range(count) for r in put_records(store, 2, group=f"g{i:02d}")]
    for i in range(count):
        entries = {
            r["run_id"]: PackEntry.of(stored_bytes(store, r), r) for r in records[2 * i : 2 * i + 2]
        }
        write_pack(store.backend, "dev", "exp", entries)
    assert len(pack_keys(store)) == count
    first, backend = counted(s3_store_url)
    expected = sorted((row_source(r) for r in records), key=lambda s: s["fixed"]["started"])
    assert all_row_sources(first, "exp", no_warnings) == expected
    assert backend.reads == {"packs": count}
    [merged] = pack_keys(store)
    assert entries_of(store, merged) == {r["run_id"] for r in records}
    monkeypatch.setenv("AEROMANCY_CACHE", str(tmp_path / "new-machine"))
    second, backend = counted(s3_store_url)
    assert all_row_sources(second, "exp", no_warnings) == expected
    assert backend.reads == {"packs": 1}


def test_a_pack_is_named_by_its_bytes_and_the_same_entries_give_the_same_pack() -> None:
    entry = PackEntry(3, "ab", {"run_id": "r1", "config": {"lr": 0.1}})
    data = encode_pack({"r1": entry})
    assert encode_pack({"r1": entry}) == data
    document = json.loads(gzip.decompress(data))
    assert document == {
        "format": 2,
        "sealed": None,
        "runs": {"r1": {"size": 3, "sha256": "ab", "record": entry.record}},
    }
    assert encode_pack({"r1": entry}, sealed="20261201-000000") != data
