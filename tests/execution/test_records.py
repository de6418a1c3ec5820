"""Run record summaries: cached locally, new records picked up, a bad cache rebuilt."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aeromancy.records import RecordIndex, record_summaries, summarise
from aeromancy.store import Store, open_store

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project


def record(run_id: str, fingerprint: str, outputs: list[dict[str, str]]) -> dict[str, object]:
    return {
        "run_id": run_id,
        "task": "t",
        "status": "succeeded",
        "fingerprint": fingerprint,
        "outputs": outputs,
        "inputs": [],
        "started": run_id,
        "ended": run_id,
        "environment": {"big": "x" * 1000},
    }


def test_summaries_follow_the_store(local_store_url: str, tmp_path: Path) -> None:
    store = open_store(local_store_url)
    source = tmp_path / "f.txt"
    source.write_text("hello")
    version = store.publish("demo", "out", source, run_id="r1", namespace="dev")
    entry = {"project": "demo", "name": "out", "label": version.label, "digest": version.digest}
    store.put_run_record("demo", "r1", record("r1", "fp1", [entry]), namespace="dev")

    [first] = record_summaries(store, "demo", "dev")
    assert first["fingerprint"] == "fp1"
    assert first["output_blobs"] == [version.files[0].sha256]
    assert "environment" not in first

    store.put_run_record("demo", "r2", record("r2", "fp2", []), namespace="dev")
    assert [s["run_id"] for s in record_summaries(store, "demo", "dev")] == ["r1", "r2"]

    cache_files = list(Path(os.environ["AEROMANCY_CACHE"]).rglob("records/*/dev/demo.json"))
    assert len(cache_files) == 1
    cache_files[0].write_text("garbage")
    assert [s["run_id"] for s in record_summaries(store, "demo", "dev")] == ["r1", "r2"]

    index = RecordIndex.load(store, "demo", "dev")
    found = index.reusable(store, "fp1")
    assert found is not None
    assert [v.label for v in found[1]] == ["dev1"]
    assert index.reusable(store, "nope") is None


def test_a_run_leaves_the_summaries_of_its_records_in_the_cache(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    store = project.store()
    written = {r["run_id"]: summarise(store, r) for r in project.records()}

    def no_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("the summaries should come from the cache, not the store")

    monkeypatch.setattr(Store, "get_run_record", no_reads)
    cached = {s["run_id"]: s for s in record_summaries(store, "demo", "dev")}

    assert len(written) == 3
    assert cached == written
