"""A rerun that makes byte-identical outputs reuses their versions; the record names them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project


def test_forced_rerun_with_identical_output_keeps_the_version(project: Project) -> None:
    assert project.cli("run", "--dev").exit_code == 0
    forced = project.cli("run", "--dev", "--force")
    assert forced.exit_code == 0, forced.output
    assert project.labels("raw") == ["dev1"]
    assert project.labels("report") == ["dev1"]
    [newest, _] = sorted(project.records_of("ingest"), key=lambda r: r["ended"], reverse=True)
    assert [o["label"] for o in newest["outputs"]] == ["dev1"]
    assert "raw:dev1" in forced.stdout
