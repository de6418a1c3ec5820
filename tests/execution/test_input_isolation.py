"""A task's inputs are its own copies, and a task cannot publish what a link points to.

Real runs (``aeromancy run --dev``) of real task modules on both store backends.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aeromancy.store import Store
from aeromancy.store.local import LocalBackend

if TYPE_CHECKING:
    from conftest import ProjectFactory

VANDAL = """
from aeromancy import task

@task(outputs=["raw"])
def ingest(ctx):
    path = ctx.workdir / "raw.txt"
    path.write_text("original")
    ctx.save("raw", path)

@task(inputs=["raw"], outputs=["out"])
def vandal(ctx):
    given = ctx.load("raw") / "raw.txt"
    given.chmod(0o644)  # a task running as root may write anything it is given
    given.write_text("vandalised")
    path = ctx.workdir / "out.txt"
    path.write_text(given.read_text())
    ctx.save("out", path)
"""


def test_a_task_writing_to_its_input_changes_nothing_else(
    project_with: ProjectFactory, tmp_path: Path
) -> None:
    project = project_with(VANDAL)
    assert project.cli("run", "--dev", "--only", "ingest").exit_code == 0
    assert project.cli("pull", "raw:dev1", str(tmp_path / "before")).exit_code == 0

    result = project.cli("run", "--dev")

    assert result.exit_code == 0, result.output
    store = project.store()
    raw = store.resolve("raw", "demo", namespace="dev")
    assert pulled_from(store, raw.files[0].sha256).read_text() == "original"
    assert (tmp_path / "before" / "raw.txt").read_text() == "original"
    assert project.cli("pull", "raw:dev1", str(tmp_path / "after")).exit_code == 0
    assert (tmp_path / "after" / "raw.txt").read_text() == "original"


LEAK = """
from aeromancy import task

@task(outputs=["model"])
def leak(ctx):
    link = ctx.workdir / "model.bin"
    link.symlink_to({secret!r})
    ctx.save("model", link)
"""


def test_a_task_saving_a_link_to_a_file_outside_fails_and_publishes_nothing(
    project_with: ProjectFactory, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:the secret")
    project = project_with(LEAK.format(secret=str(secret)))

    result = project.cli("run", "--dev")

    assert result.exit_code == 1, result.output
    assert "model.bin is a symbolic link" in result.output
    assert project.labels("model") == []
    [record] = project.records_of("leak")
    assert record["status"] == "failed"
    assert "symbolic link" in record["error"]


def pulled_from(store: Store, digest: str) -> Path:
    """Return the file a pull copies a blob from: the local store's blob, else the cache's."""
    if isinstance(store.backend, LocalBackend):
        return store.backend.root / "blobs" / "sha256" / digest[:2] / digest
    return store.cache.entry_path(digest)
