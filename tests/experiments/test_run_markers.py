"""Start markers: a reader lists only the records after the oldest open invocation, and
never misses one (a late record, a killed launcher, a damaged pack, old-layout records).

Both backends: a directory and the loopback S3 server. The reader's allowed clock skew
is set negative, so that the records these tests write (minted now) sort before the
reader's floor: only start markers and packs can make a reader find them, as for
records minted hours before.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aeromancy.experiments import record_cache
from aeromancy.records import new_run_id
from aeromancy.store import Store, open_store, run_markers
from aeromancy.store.backend import Backend
from aeromancy.store.run_markers import list_markers
from aeromancy.store.run_packs import PackEntry, RunPacker, packs_prefix, read_pack, write_pack

PROJECT = "exp"


@pytest.fixture(autouse=True)
def reader_trusts_markers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Readers list records only from an hour ahead: markers and packs must find them."""
    monkeypatch.setattr(run_markers, "SKEW_SECONDS", -3600)
    monkeypatch.setenv("AEROMANCY_CACHE", str(tmp_path / "cache-0"))


class Counting:
    """The real backend, counting keys read and listings made."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend
        self.calls: Counter[str] = Counter()

    def read_bytes(self, key: str) -> bytes | None:
        kind = "packs" if "/packs/" in key else "markers" if "/open/" in key else "reads"
        self.calls[kind] += 1
        return self.inner.read_bytes(key)

    def list_objects(self, prefix: str, start_after: str = "") -> Any:
        self.calls["full listings" if not start_after else "listings"] += 1
        return self.inner.list_objects(prefix, start_after)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_machines = iter(range(1, 1000))


def new_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AEROMANCY_CACHE", str(tmp_path / f"cache-{next(_machines)}"))


def read_ids(url: str, warn: Any = None) -> tuple[list[str], Counting]:
    """Return the run ids ``results`` reads (dev namespace) and the counted backend."""
    backend = Counting(open_store(url).backend)
    store = Store(backend)
    warnings: list[str] = []
    sources = record_cache.row_sources(store, PROJECT, "dev", warn or warnings.append)
    assert warn is not None or warnings == []
    return [s["fixed"]["run"] for s in sources], backend


def full_listing(url: str) -> list[str]:
    return open_store(url).list_run_ids(PROJECT, "dev")


def record(run_id: str, group: str = "g") -> dict[str, Any]:
    return {
        "run_id": run_id,
        "project": PROJECT,
        "task": "t",
        "status": "succeeded",
        "group": group,
        "started": "2026-12-02T04:00:00+00:00",
        "config": {"run": run_id},
        "environment": {"python": "3.11"},
    }


def write(store: Store, packer: RunPacker | None, run_id: str | None = None) -> str:
    """Store one record (as a task run does) and tell ``packer``; return its id."""
    run_id = run_id or new_run_id()
    data = store.put_run_record(PROJECT, run_id, record(run_id), namespace="dev")
    if packer is not None:
        packer.add(run_id, data, record(run_id))
    return run_id


def packer_of(store: Store) -> RunPacker:
    packer = RunPacker(store.backend, "dev", PROJECT)
    packer.open()
    return packer


def test_a_record_written_after_its_invocations_pack_still_appears(
    store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = open_store(store_url)
    # A long task of invocation A minted its run id; B started, ran and completed.
    a = packer_of(store)
    late = new_run_id()
    b = packer_of(store)
    written = [write(store, b), write(store, b)]
    b.close()
    assert read_ids(store_url)[0] == sorted(written)
    # A's task writes its record after B's pack: A's marker still says A may write.
    written.append(write(store, a, late))
    new_machine(monkeypatch, tmp_path)
    assert read_ids(store_url)[0] == sorted(written) == full_listing(store_url)
    # A cluster worker wrote a record the launcher heard of but cannot find yet: the
    # launcher stores its pack and keeps its marker, so the record still appears.
    elsewhere = new_run_id()
    a.add(elsewhere, None, record(elsewhere))
    a.close()
    assert [m.key for m in list_markers(store.backend, "dev", PROJECT)] != []
    written.append(write(store, None, elsewhere))
    new_machine(monkeypatch, tmp_path)
    ids, backend = read_ids(store_url)
    assert ids == sorted(written) == full_listing(store_url)
    assert backend.calls["full listings"] == 0
    assert backend.calls["reads"] == 1  # the record no pack holds, and no other


KILLED = """
import os, sys
from aeromancy.store import open_store
from aeromancy.records import new_run_id
from aeromancy.store.run_packs import RunPacker
store = open_store(sys.argv[1])
packer = RunPacker(store.backend, "dev", "exp")
packer.open()
for _ in range(2):
    run_id = new_run_id()
    print(run_id, flush=True)
    data = store.put_run_record("exp", run_id, {"run_id": run_id, "task": "t"}, namespace="dev")
    packer.add(run_id, data, {})
os._exit(9)  # killed: no pack, the marker stays
"""


def test_a_killed_invocation_still_shows_its_records(
    store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = open_store(store_url)
    done = packer_of(store)
    written = [write(store, done)]
    done.close()
    ran = subprocess.run(
        [sys.executable, "-c", KILLED, store_url], check=False, capture_output=True, text=True
    )
    killed = ran.stdout.split()
    assert (ran.returncode, len(killed)) == (9, 2), ran.stderr
    [marker] = list_markers(store.backend, "dev", PROJECT)
    assert read_ids(store_url)[0] == sorted(written + killed) == full_listing(store_url)
    # Its launcher ran on this host and is gone: the reader packed its records after
    # the marker and removed it.
    assert list_markers(store.backend, "dev", PROJECT) == []
    assert store.backend.read_bytes(marker.key) is None
    new_machine(monkeypatch, tmp_path)
    ids, backend = read_ids(store_url)
    assert ids == sorted(written + killed)
    assert backend.calls["reads"] == 0


def test_a_live_invocation_on_this_host_keeps_its_marker(store_url: str) -> None:
    store = open_store(store_url)
    running = packer_of(store)  # this very process: alive
    written = [write(store, running)]
    assert read_ids(store_url)[0] == written
    assert len(list_markers(store.backend, "dev", PROJECT)) == 1
    running.close()
    assert list_markers(store.backend, "dev", PROJECT) == []


def test_a_damaged_pack_is_ignored_with_one_warning_and_its_records_still_appear(
    store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = open_store(store_url)
    packer = packer_of(store)
    written = [write(store, packer) for _ in range(3)]
    packer.close()
    [key] = [k for k in pack_keys(store) if entries_of(store, k)]
    store.backend.delete(key)
    store.backend.create(key, gzip.compress(b"{not json"))
    warnings: list[str] = []
    ids, backend = read_ids(store_url, warnings.append)
    assert ids == sorted(written) == full_listing(store_url)
    [warning] = warnings
    assert warning.startswith(f"ignoring damaged run pack {key}: its bytes do not hash")
    assert backend.calls["full listings"] == 1
    # That reader stored every record as one sealed pack in its place.
    new_machine(monkeypatch, tmp_path)
    warnings.clear()
    ids, backend = read_ids(store_url, warnings.append)
    assert (ids, warnings) == (sorted(written), [])
    assert backend.calls == {"packs": 1, "listings": 1}


def old_pack(entries: dict[str, PackEntry]) -> bytes:
    """Return a format 1 pack, as Aeromancy wrote before start markers."""
    runs = {i: {"size": e.size, "sha256": e.sha256, "record": e.record} for i, e in entries.items()}
    document = json.dumps({"format": 1, "runs": runs}, sort_keys=True)
    return gzip.compress(document.encode(), mtime=0)


def put_old(store: Store, ids: list[str], packed: bool) -> None:
    """Store records as Aeromancy before start markers did: no marker, maybe a pack."""
    entries = {}
    for run_id in ids:
        data = store.put_run_record(PROJECT, run_id, record(run_id, "old"), namespace="dev")
        entries[run_id] = PackEntry.of(data, record(run_id, "old"))
    if packed:
        data = old_pack(entries)
        key = f"{packs_prefix('dev', PROJECT)}{hashlib.sha256(data).hexdigest()}.json.gz"
        store.backend.create(key, data)


def test_old_layout_records_still_appear(
    store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = open_store(store_url)
    old = [f"20261101-0000{i:02d}-old" for i in range(4)]
    put_old(store, old[:2], packed=False)
    put_old(store, old[2:], packed=True)
    packer = packer_of(store)  # not the first writer: no empty sealed pack
    new = [write(store, packer)]
    packer.close()
    ids, backend = read_ids(store_url)
    assert ids == sorted(old + new) == full_listing(store_url)
    assert backend.calls["full listings"] == 1
    # Sealed: the next new machine reads one pack and lists nothing before the floor.
    [sealed] = pack_keys(store)
    pack = read_pack(store.backend, sealed)
    assert pack is not None
    assert pack.sealed is not None
    new_machine(monkeypatch, tmp_path)
    ids, backend = read_ids(store_url)
    assert ids == sorted(old + new)
    assert backend.calls == {"packs": 1, "listings": 1}
    # An older Aeromancy writes again (its format 1 pack tells): everything is listed.
    later = ["20261101-000100-old", "20261101-000101-old"]
    put_old(store, later, packed=True)
    ids, backend = read_ids(store_url)
    assert ids == sorted(old + new + later) == full_listing(store_url)
    assert backend.calls["full listings"] == 1


def test_results_equal_a_full_listing(
    store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = open_store(store_url)
    first = packer_of(store)  # the first writer: stores an empty sealed pack
    written = [write(store, first) for _ in range(2)]
    first.close()
    running = packer_of(store)
    written += [write(store, running)]
    finished = packer_of(store)
    written += [write(store, finished) for _ in range(3)]
    finished.close()
    ids, backend = read_ids(store_url)
    assert ids == sorted(written) == full_listing(store_url)
    assert backend.calls["full listings"] == 0
    written += [write(store, running)]
    new_machine(monkeypatch, tmp_path)
    assert read_ids(store_url)[0] == sorted(written) == full_listing(store_url)


def pack_keys(store: Store) -> list[str]:
    return store.backend.list_prefix(packs_prefix("dev", PROJECT))


def entries_of(store: Store, key: str) -> set[str]:
    pack = read_pack(store.backend, key)
    assert pack is not None
    return set(pack.entries)


class MergedMeanwhile:
    """The real backend, where another reader merges the packs away just as this one
    comes to read the first: it stores their records as one pack and deletes them."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend
        self.merged = False

    def read_bytes(self, key: str) -> bytes | None:
        if "/packs/" in key and not self.merged:
            self.merged = True
            keys = self.inner.list_prefix(packs_prefix("dev", PROJECT))
            entries: dict[str, PackEntry] = {}
            for old in keys:
                pack = read_pack(self.inner, old)
                assert pack is not None
                entries.update(pack.entries)
            write_pack(self.inner, "dev", PROJECT, entries, sealed="20261101-000000")
            for old in keys:
                self.inner.delete(old)
        return self.inner.read_bytes(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_packs_merged_away_during_a_read_are_found_in_the_merged_pack(store_url: str) -> None:
    store = open_store(store_url)
    written = []
    for _ in range(3):
        packer = packer_of(store)
        written += [write(store, packer), write(store, packer)]
        packer.close()
    backend = MergedMeanwhile(store.backend)
    warnings: list[str] = []
    sources = record_cache.row_sources(Store(backend), PROJECT, "dev", warnings.append)  # type: ignore[arg-type]
    assert backend.merged
    assert [s["fixed"]["run"] for s in sources] == sorted(written) == full_listing(store_url)
    assert warnings == []


def test_a_held_invocation_keeps_its_marker_and_its_later_records_appear(
    store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = open_store(store_url)
    packer = packer_of(store)
    written = [write(store, packer)]
    lost = new_run_id()  # a task lost on the cluster: the launcher never learns its id
    packer.hold()
    packer.close()
    assert len(list_markers(store.backend, "dev", PROJECT)) == 1
    written.append(write(store, None, lost))  # its worker wrote the record after all
    assert read_ids(store_url)[0] == sorted(written) == full_listing(store_url)
