"""In a tracked run the fork server runs inside the container, of the project's venv.

Real CLI, real Docker engine: the task reports the command line of its parent process
(the fork server) and the interpreter it runs; its record keeps its own peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from aeromancy.store import open_store

pytestmark = pytest.mark.docker

ProjectFactory = Callable[..., Path]
AEROMANCY = str(Path(sys.executable).parent / "aeromancy")

PIPELINE = """\
import json
import os
import sys
from pathlib import Path

from aeromancy import Context, task


def report(ctx: Context, name: str) -> None:
    parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\\0")
    facts = {"parent": [part.decode() for part in parent if part], "python": sys.executable}
    (ctx.workdir / "facts.json").write_text(json.dumps(facts))
    ctx.save(name, ctx.workdir / "facts.json")


@task(outputs=["a"])
def first(ctx: Context) -> None:
    report(ctx, "a")


@task(outputs=["b"])
def second(ctx: Context) -> None:
    report(ctx, "b")
"""


def test_tracked_task_processes_are_forked_in_the_container(
    make_project: ProjectFactory, local_store_url: str, tmp_path: Path
) -> None:
    root = make_project(pipeline=PIPELINE)

    done = subprocess.run(
        [AEROMANCY, "--store", local_store_url, "run", "--tracker", "none"],
        cwd=root,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )

    assert done.returncode == 0, done.stderr
    store = open_store(local_store_url)
    for name in ("a", "b"):
        folder = store.materialize(store.resolve(name, "demo"), tmp_path / name)
        facts = json.loads((folder / "facts.json").read_text())
        assert facts["parent"][-3:-1] == ["aeromancy.execution.child", "zygote"]
        assert facts["parent"][0] == facts["python"]  # the fork server is the project's Python
    for record in store.list_run_records("demo"):
        assert 5 << 20 < record["max_rss_bytes"] < 80 << 20
