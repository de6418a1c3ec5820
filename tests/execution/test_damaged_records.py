"""One unreadable run record or manifest is skipped and named, never fatal to the commands.

Real runs of the demo project on both backends; records and manifests are then
damaged behind the store's back (as a bad disk, a hand edit or another tool might).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.records import input_entry, output_entry
from aeromancy.store import open_store

if TYPE_CHECKING:
    from conftest import Project, ProjectFactory


def write_raw(project: Project, key: str, data: bytes) -> None:
    """Write an object into the store directly, bypassing Aeromancy."""
    store = project.store()
    if store.backend.remote:
        backend = store.backend
        backend.client.put_object(  # type: ignore[attr-defined]
            Bucket=backend.bucket,  # type: ignore[attr-defined]
            Key=backend._key(key),  # type: ignore[attr-defined]
            Body=data,
        )
        return
    path = Path(project.store_url) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.chmod(0o644)
    path.write_bytes(data)


BAD_RECORDS = {
    "zzz-not-json": b"{truncated",
    "zzz-a-list": b"[1, 2]",
}
NULL_FIELDS = {
    "run_id": "zzz-nulls",
    "task": None,
    "status": None,
    "inputs": None,
    "outputs": None,
    "config": None,
    "started": None,
    "ended": None,
    "fingerprint": None,
}


@pytest.mark.parametrize(
    "command", [["runs"], ["list", "--dev"], ["run", "--dev"], ["lineage", "raw", "--down"]]
)
def test_corrupt_and_null_records_are_skipped_and_named(
    project: Project, command: list[str]
) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    for run_id, data in BAD_RECORDS.items():
        write_raw(project, f"dev/runs/demo/{run_id}.json", data)
    write_raw(project, "dev/runs/demo/zzz-nulls.json", json.dumps(NULL_FIELDS).encode())

    result = project.cli(*command)

    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, result.stderr
    for run_id in BAD_RECORDS:
        assert sum(run_id in line for line in warnings) == 1
    assert "Traceback" not in result.output
    if command == ["run", "--dev"]:
        assert result.stdout.count("skipped") == 3  # the good records still count


def test_an_unreadable_newest_manifest_hides_only_that_artifact(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    write_raw(project, "dev/artifacts/demo/model/dev2.json", b"not a manifest")

    result = project.cli("artifacts", "--dev")

    assert result.exit_code == 0, result.output
    assert "raw" in result.stdout
    assert "report" in result.stdout
    [warning] = result.stderr.strip().splitlines()
    assert "skipping manifest dev/artifacts/demo/model/dev2.json" in warning
    assert "the store is damaged" in warning


def test_a_chain_of_1000_runs_shows_its_whole_lineage(
    local_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Local store only: the walk is the same code on both backends, and 2,000 objects
    # written and read through the loopback S3 server took 10 minutes (2026-12-02).

    store = open_store(local_store_url)
    source = tmp_path / "f.txt"
    previous = None
    for step in range(1000):
        source.write_text(str(step))
        run_id = f"run-{step:04d}"
        version = store.publish("demo", f"a{step}", source, run_id=run_id, namespace="dev")
        inputs = [input_entry(previous.ref, previous)] if previous else []
        record = {
            "run_id": run_id,
            "task": f"t{step}",
            "status": "succeeded",
            "inputs": inputs,
            "outputs": [output_entry(version)],
            "started": f"{step:04d}",
        }
        store.put_run_record("demo", run_id, record, namespace="dev")
        previous = version
    (tmp_path / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "demo"\n')
    monkeypatch.chdir(tmp_path)

    up = CliRunner().invoke(
        main, ["--store", local_store_url, "lineage", "a999"], env={"COLUMNS": "250"}
    )
    down = CliRunner().invoke(
        main, ["--store", local_store_url, "lineage", "a0", "--down"], env={"COLUMNS": "250"}
    )

    for result in (up, down):
        assert result.exit_code == 0, result.output[-2000:]
        assert "demo/a0:dev1" in result.stdout
        assert "demo/a999:dev1" in result.stdout
        assert "t500" in result.stdout


PARAMS = """
from aeromancy import task

@task(outputs=["out"])
def fit(ctx, rate: float = 0.1):
    path = ctx.workdir / "out.txt"
    path.write_text(str(rate))
    ctx.log({"loss": float("inf"), "rate": rate})
    ctx.save("out", path)
"""


def test_non_finite_numbers_in_a_record_are_stored_as_standard_json(
    project_with: ProjectFactory,
) -> None:
    project = project_with(PARAMS)

    refused = project.cli("run", "--dev", "--set", "fit.rate=nan")
    assert refused.exit_code == 2, refused.output
    assert len(refused.stderr.strip().splitlines()) == 1
    assert project.store_is_empty()

    result = project.cli("run", "--dev")  # the metric logged is infinite

    assert result.exit_code == 0, result.output
    store = project.store()
    [run_id] = store.list_run_ids("demo", namespace="dev")
    data = store.backend.read_bytes(f"dev/runs/demo/{run_id}.json")
    assert data is not None

    def refuse(constant: str) -> float:
        raise AssertionError(f"the record holds {constant}, which is not standard JSON")

    record = json.loads(data, parse_constant=refuse)
    assert record["metrics"]["loss"] == "Infinity"
    assert record["metrics"]["rate"] == 0.1
