"""In a tracked run too, a task that writes to its input changes nothing but its own copy.

Real tracked ``aeromancy run`` in the real Docker engine, on both store backends (the
container reaches the loopback S3 server). The task runs as root in the container,
so read-only modes do not stop it: the protection is that its input shares no inode
with the cache, the store or a user's earlier pull.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from aeromancy.store import Store, open_store
from aeromancy.store.local import LocalBackend

pytestmark = pytest.mark.docker

AEROMANCY = str(Path(sys.executable).with_name("aeromancy"))
VANDAL = """\
from aeromancy import Context, task


@task(outputs=["raw"])
def ingest(ctx: Context) -> None:
    path = ctx.workdir / "raw.txt"
    path.write_text("original")
    ctx.save("raw", path)


@task(inputs=["raw"], outputs=["out"])
def vandal(ctx: Context) -> None:
    given = ctx.load("raw") / "raw.txt"
    given.chmod(0o644)  # root in the container may write anything it is given
    given.write_text("vandalised")
    path = ctx.workdir / "out.txt"
    path.write_text(given.read_text())
    ctx.save("out", path)
"""


def aeromancy(root: Path, store: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AEROMANCY, "--store", store, *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=900,
        check=False,
    )


def test_a_tracked_task_writing_to_its_input_changes_nothing_else(
    make_project: Callable[..., Path], store_url: str, tmp_path: Path
) -> None:
    root = make_project(pipeline=VANDAL)
    first = aeromancy(root, store_url, "run", "--tracker", "none", "--only", "ingest")
    assert first.returncode == 0, first.stderr
    before = tmp_path / "before"
    assert aeromancy(root, store_url, "pull", "raw", str(before)).returncode == 0

    ran = aeromancy(root, store_url, "run", "--tracker", "none")

    assert ran.returncode == 0, ran.stderr
    store = open_store(store_url)
    assert (
        store.materialize(store.resolve("out", "demo"), tmp_path / "o") / "out.txt"
    ).read_text() == "vandalised"
    raw = store.resolve("raw", "demo")
    assert pulled_from(store, raw.files[0].sha256).read_text() == "original"
    assert (before / "raw.txt").read_text() == "original"
    fresh = open_store(store_url, cache_dir=tmp_path / "fresh-cache")
    after = fresh.materialize(fresh.resolve("raw", "demo"), tmp_path / "after")
    assert (after / "raw.txt").read_text() == "original"  # the store's blob is intact


def pulled_from(store: Store, digest: str) -> Path:
    """Return the file a pull copies a blob from: the local store's blob, else the cache's."""
    if isinstance(store.backend, LocalBackend):
        return store.backend.root / "blobs" / "sha256" / digest[:2] / digest
    return store.cache.entry_path(digest)
