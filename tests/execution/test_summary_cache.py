"""The summary cache file: JSON lines read back equal, repeated values shared, bad files empty."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aeromancy.summary_cache import SUMMARY_FORMAT, read_summaries, write_summaries


def summary(run_id: str, task: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "task": task,
        "status": "succeeded",
        "environment_key": "no-lockfile;python=3.11.7",
        "code": {"digest": "sha256:c", "files": ["p.py"], "digests": {"p.py": "sha256:f"}},
        "outputs": [{"name": f"a{run_id}", "digest": f"sha256:{run_id}"}],
        "output_blobs": [run_id * 4],
    }


def test_summaries_read_back_equal_sharing_repeated_values(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    written = {f"r{i}": summary(f"r{i}", "t") for i in range(3)}
    write_summaries(path, written)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"format": SUMMARY_FORMAT}
    assert len(lines) == 4
    read = read_summaries(path)
    assert read == written
    first, second = read["r0"], read["r1"]
    assert first["code"] is second["code"]
    assert first["environment_key"] is second["environment_key"]
    assert first["outputs"] is not second["outputs"]


def test_a_different_code_identity_is_not_shared(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    other = summary("r1", "t")
    other["code"] = {**other["code"], "files": ["p.py", "q.py"]}  # same digest, other files
    write_summaries(path, {"r0": summary("r0", "t"), "r1": other})
    read = read_summaries(path)
    assert read["r1"]["code"]["files"] == ["p.py", "q.py"]
    assert read["r0"]["code"]["files"] == ["p.py"]


def test_a_bad_or_older_file_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    assert read_summaries(path) == {}  # missing
    path.write_text(json.dumps({"format": 2, "runs": {"r0": summary("r0", "t")}}))
    assert read_summaries(path) == {}  # the single-document format before
    write_summaries(path, {"r0": summary("r0", "t"), "r1": summary("r1", "t")})
    path.write_text(path.read_text()[:-20])  # cut inside the last line
    assert read_summaries(path) == {}
    path.write_text(f'{{"format": {SUMMARY_FORMAT}}}\n["r0"]\n')  # a line of another shape
    assert read_summaries(path) == {}
