"""-j N runs independent tasks at the same time.

Each task writes a "started" marker, then waits (up to a deadline) for its sibling's
marker before finishing, and records whether it saw it and when it started and ended.
If each saw the other's marker before ending, each started before the other ended: the
runs overlapped. Run one at a time, the first task can never see the second start.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import ProjectFactory

SIBLINGS = """
import json
import time
from pathlib import Path

from aeromancy import task


def meet(ctx, me, other, sync_dir, wait):
    sync = Path(sync_dir)
    started = time.time()
    (sync / me).write_text(str(started))
    deadline = time.monotonic() + wait
    while not (sync / other).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    # The sibling started before this task ended: if both see that, their runs overlapped.
    saw_other_start = (sync / other).exists()
    ended = time.time()
    path = ctx.workdir / "times.json"
    path.write_text(json.dumps({"start": started, "end": ended, "saw": saw_other_start}))
    ctx.save(me, path)


@task(outputs=["slow_a"])
def slow_a(ctx, sync_dir: str = "", wait: float = 20.0):
    meet(ctx, "slow_a", "slow_b", sync_dir, wait)


@task(outputs=["slow_b"])
def slow_b(ctx, sync_dir: str = "", wait: float = 20.0):
    meet(ctx, "slow_b", "slow_a", sync_dir, wait)
"""


def _times(project, name: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    store = project.store()
    version = store.resolve(name, "demo", namespace="dev")
    folder = store.materialize(version, project.root.parent / f"out-{name}-{version.label}")
    return json.loads((folder / "times.json").read_text())  # type: ignore[no-any-return]


def test_two_independent_tasks_overlap_with_j2(project_with: ProjectFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = project_with(SIBLINGS)
    sync = tmp_path / "sync"
    sync.mkdir()
    sets = ["--set", f"slow_a.sync_dir={sync}", "--set", f"slow_b.sync_dir={sync}"]
    result = project.cli("run", "--dev", "-j", "2", *sets)
    assert result.exit_code == 0, result.output
    a, b = _times(project, "slow_a"), _times(project, "slow_b")
    assert a["saw"]
    assert b["saw"]
    assert a["start"] < b["end"]
    assert b["start"] < a["end"]


def test_one_job_runs_them_one_after_the_other(project_with: ProjectFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = project_with(SIBLINGS)
    sync = tmp_path / "sync"
    sync.mkdir()
    sets = [f"slow_{x}.{k}" for x in "ab" for k in ("sync_dir", "wait")]
    values = [str(sync), "0.3", str(sync), "0.3"]
    args = [
        arg for key, value in zip(sets, values, strict=True) for arg in ("--set", f"{key}={value}")
    ]
    result = project.cli("run", "--dev", "-j", "1", *args)
    assert result.exit_code == 0, result.output
    a, b = _times(project, "slow_a"), _times(project, "slow_b")
    first, second = sorted([a, b], key=lambda t: t["start"])
    assert not first["saw"]
    assert second["saw"]
    assert first["end"] <= second["start"]
