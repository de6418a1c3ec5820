"""Benchmark tracked runs on a Dask cluster of the project's image against local runs.

Side by side in one run, on a committed demo project in a temp directory (tracker
none, a fresh directory store per measurement so nothing is up to date):

- a 16-variant sweep of a 2-second CPU-bound task: ``aeromancy run --cluster`` on a
  cluster of 1 and of 2 workers (``aeromancy cluster up``, 1 thread each) vs a local
  tracked run with ``-j 1`` and ``-j 2``;
- the dispatch overhead per task: the same sweep of a trivial task, wall time per task.

Every wall time includes the run's own container start and planning, the same for all.
The cluster's containers (label ``aeromancy.cluster=bench-...``) are removed at the
end. Usage: ``.venv/bin/python bench/bench_cluster.py [--base-image aeromancy-base:bookworm]
[--dispatch-only]`` (the last: only the trivial tasks, local ``-j 2`` and 2 workers).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

VARIANTS = 16
PIPELINE = """\
import time

from aeromancy import Context, task


@task(outputs=["burnt"])
def burn(ctx: Context, k: int = 0, seconds: float = 2.0) -> None:
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        n += 1
    out = ctx.workdir / "burnt.txt"
    out.write_text(f"{k}")
    ctx.save("burnt", out)


@task(outputs=["tiny"])
def tiny(ctx: Context, k: int = 0) -> None:
    out = ctx.workdir / "tiny.txt"
    out.write_text(f"{k}")
    ctx.save("tiny", out)
"""
PYPROJECT = """\
[project]
name = "clusterbench"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = []

[tool.pdm]
distribution = false

[tool.aeromancy]
base_image = "{base_image}"
tracker = "none"
"""
SWEEP = ["--sweep", "burn.k=" + ",".join(str(k) for k in range(VARIANTS)), "--only", "burn"]
TRIVIAL = ["--sweep", "tiny.k=" + ",".join(str(k) for k in range(VARIANTS)), "--only", "tiny"]
ADDRESS = re.compile(r"^scheduler (tcp://\S+)$", re.MULTILINE)


def aeromancy() -> str:
    return str(Path(sys.executable).with_name("aeromancy"))


def make_project(root: Path, base_image: str) -> None:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(base_image=base_image))
    (root / "pipeline.py").write_text(PIPELINE)
    (root / ".gitignore").write_text(".venv/\n__pycache__/\n.pdm-python\nwandb/\n")
    env = {**os.environ, "PDM_USE_VENV": "false", "PDM_CHECK_UPDATE": "false"}
    env["PDM_PYTHON"] = shutil.which("python3") or "python3"
    pdm = str(Path(sys.executable).with_name("pdm"))
    subprocess.run([pdm, "lock", "--quiet", "--project", str(root)], env=env, check=True)
    git = ["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@b.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], check=True)


class Bench:
    """The demo project and a fresh store per measurement."""

    def __init__(self, root: Path, scratch: Path) -> None:
        self.root = root
        self.scratch = scratch
        self.store = scratch / "store-0"
        self.env = {**os.environ, "AEROMANCY_STORE_IMAGES": "0", "COLUMNS": "200"}

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "AEROMANCY_STORE": str(self.store)}
        done = subprocess.run(
            [aeromancy(), *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            raise SystemExit(f"aeromancy {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
        return done

    def timed_run(self, *args: str) -> float:
        self.store = self.scratch / f"store-{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        self.command("run", *args)
        return time.perf_counter() - started

    @contextmanager
    def cluster(self, workers: int) -> Iterator[str]:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        self.store = self.scratch / "store-cluster"
        up = self.command("cluster", "up", "--workers", str(workers), "--name", name)
        match = ADDRESS.search(up.stdout)
        if match is None:
            raise SystemExit(f"no address in: {up.stdout}")
        try:
            yield match.group(1)
        finally:
            self.command("cluster", "down", "--name", name, check=False)

    def cluster_runs(self, workers: int, sweeps: Sequence[Sequence[str]]) -> list[float]:
        """Return the wall time of each sweep on a cluster of ``workers`` workers.

        The cluster's containers mount one store directory, so instead of a fresh store
        each run forces its tasks (``--force``).
        """
        times = []
        with self.cluster(workers) as address:
            for sweep in sweeps:
                started = time.perf_counter()
                self.command("run", "--cluster", address, "--force", *sweep)
                times.append(time.perf_counter() - started)
        return times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default="aeromancy-base:bookworm")
    parser.add_argument(
        "--dispatch-only", action="store_true", help="Only the trivial tasks' dispatch rows."
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder:
        scratch = Path(folder)
        root = scratch / "clusterbench"
        make_project(root, args.base_image)
        bench = Bench(root, scratch)
        bench.timed_run("--only", "tiny")  # builds the image once, outside the timings
        if args.dispatch_only:
            local_tiny = bench.timed_run("-j", "2", *TRIVIAL)
            [two_tiny] = bench.cluster_runs(2, [TRIVIAL])
            report_dispatch(Console(), local_tiny, two_tiny)
            return
        local = {jobs: bench.timed_run("-j", str(jobs), *SWEEP) for jobs in (1, 2)}
        local_tiny = bench.timed_run("-j", "2", *TRIVIAL)
        one = bench.cluster_runs(1, [SWEEP])[0]
        two, two_tiny = bench.cluster_runs(2, [SWEEP, TRIVIAL])
    report(local, one, two, local_tiny, two_tiny)


def report(
    local: dict[int, float], one: float, two: float, local_tiny: float, two_tiny: float
) -> None:
    console = Console()
    table = Table(title=f"{VARIANTS}-variant sweep of a 2 s CPU-bound task (wall seconds)")
    for column in ("where", "wall s", "vs local -j 1"):
        table.add_column(column)
    rows = [
        ("local -j 1", local[1]),
        ("local -j 2", local[2]),
        ("cluster, 1 worker", one),
        ("cluster, 2 workers", two),
    ]
    for where, seconds in rows:
        table.add_row(where, f"{seconds:.1f}", f"{seconds / local[1]:.2f}")
    console.print(table)
    report_dispatch(console, local_tiny, two_tiny)
    console.print(f"1 -> 2 workers: {one / two:.2f}x; local -j1 -> -j2: {local[1] / local[2]:.2f}x")


def report_dispatch(console: Console, local_tiny: float, two_tiny: float) -> None:
    overhead = Table(title=f"dispatch: {VARIANTS} trivial tasks (wall per task)")
    for column in ("where", "wall s", "per task s"):
        overhead.add_column(column)
    overhead.add_row("local -j 2", f"{local_tiny:.1f}", f"{local_tiny / VARIANTS:.2f}")
    overhead.add_row("cluster, 2 workers", f"{two_tiny:.1f}", f"{two_tiny / VARIANTS:.2f}")
    console.print(overhead)


if __name__ == "__main__":
    main()
