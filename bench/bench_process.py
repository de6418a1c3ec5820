"""The cost of the process boundary: 200 trivial tasks, before and after.

    .venv/bin/python bench/bench_process.py [--tasks 200] [--repeat 3] [--before REF]

"before" is the code just before task runs moved into child processes (by default the
parent of the commit that added ``aeromancy/execution/child/runtime.py``), checked out
into a temporary git worktree and imported ahead of this checkout through PYTHONPATH;
"after" is this checkout. Both run ``aeromancy run --dev --force -j N`` as a subprocess
on the same generated module of independent tasks that save a 1-byte output, against
a local store on this disk, alternating before and after, ``--repeat`` times each. The
per-task overhead is (after - before) / tasks; the target is under 30 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD_RUNTIME = "aeromancy/execution/child/runtime.py"
TARGET_MS = 30.0

TASK = """
@task(outputs=["out{i}"])
def t{i}(ctx):
    path = ctx.workdir / "out.txt"
    path.write_text("x")
    ctx.save("out{i}", path)
"""


def write_project(root: Path, tasks: int) -> None:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bench"\nversion = "0"\n\n[tool.aeromancy]\nproject = "bench"\n'
    )
    body = "".join(TASK.format(i=i) for i in range(tasks))
    (root / "pipeline.py").write_text("from aeromancy import task\n" + body)


def before_ref() -> str:
    """Return the commit just before the child runtime was added."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "log", "--diff-filter=A", "--format=%H", "--", CHILD_RUNTIME],
        check=True,
        capture_output=True,
        text=True,
    )
    added = done.stdout.split()
    if not added:
        raise SystemExit(f"{CHILD_RUNTIME} is not committed yet: pass --before REF")
    return f"{added[-1]}^"


def timed_run(code: Path, project: Path, scratch: Path, jobs: int) -> tuple[float, float]:
    """Return the wall and CPU seconds (the run and every process it waited for) of one
    ``aeromancy run --dev --force`` with ``code`` first on the path."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "AEROMANCY_STORE": str(scratch / f"store-{code.name}"),
        "AEROMANCY_CACHE": str(scratch / f"cache-{code.name}"),
    }
    env.pop("AEROMANCY_PROJECT_PYTHON", None)
    command = [sys.executable, "-c", "from aeromancy.cli import main; main()"]
    command += ["run", "--dev", "--force", "-j", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--before", default=None, help="git ref of the in-process code")
    args = parser.parse_args()
    ref = args.before or before_ref()
    with tempfile.TemporaryDirectory(prefix="aeromancy-bench-process-") as tmp:
        scratch = Path(tmp)
        before = scratch / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), ref],
            check=True,
        )
        try:
            project = scratch / "project"
            write_project(project, args.tasks)
            report(args, ref, before, project, scratch)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=True
            )


def start_cost(scratch: Path, repeat: int = 20) -> tuple[float, float]:
    """Return the median ms of starting ``python -c pass`` and of importing the child
    runtime the way a task's child does (for scale: the floor of the boundary)."""
    shim = scratch / "shim"
    shim.mkdir(exist_ok=True)
    if not (shim / "aeromancy").exists():
        (shim / "aeromancy").symlink_to(ROOT / "aeromancy")
    env = {**os.environ, "PYTHONPATH": str(shim)}
    runs: dict[str, list[float]] = {"pass": [], "child": []}
    for _ in range(repeat):
        for name, code in (("pass", "pass"), ("child", "import aeromancy.execution.child.runtime")):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            runs[name].append((time.perf_counter() - start) * 1000)
    return statistics.median(runs["pass"]), statistics.median(runs["child"])


def report(args: argparse.Namespace, ref: str, before: Path, project: Path, scratch: Path) -> None:
    count = args.tasks
    bare, child = start_cost(scratch)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}; python -c pass {bare:.1f} ms, + child runtime {child:.1f} ms")
    print(f"{count} trivial tasks (each saves a 1-byte output), median of {args.repeat} runs")
    print(f"before = {ref} (in-process), after = {ROOT.name} (process per task)")
    print("wall: median s of the whole run; cpu: its CPU ms per task, children included")
    head = "jobs  before s  after s  before ms/task  after ms/task  overhead ms/task  ratio"
    print(head + "  cpu before  cpu after  cpu overhead")
    for jobs in (int(j) for j in args.jobs.split(",")):
        timed_run(before, project, scratch, jobs)  # warm the caches (bytecode, records)
        timed_run(ROOT, project, scratch, jobs)
        runs: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
        for _ in range(args.repeat):
            runs["before"].append(timed_run(before, project, scratch, jobs))
            runs["after"].append(timed_run(ROOT, project, scratch, jobs))
        old, new = (statistics.median(w for w, _ in runs[k]) for k in ("before", "after"))
        cpu_old, cpu_new = (
            statistics.median(c for _, c in runs[k]) / count * 1000 for k in ("before", "after")
        )
        overhead = (new - old) / count * 1000
        verdict = "ok" if overhead < TARGET_MS else f"over the {TARGET_MS:.0f} ms target"
        print(
            f"{jobs:>4}  {old:8.2f}  {new:7.2f}  {old / count * 1000:14.1f}  "
            f"{new / count * 1000:13.1f}  {overhead:16.1f}  {new / old:4.2f}x  "
            f"{cpu_old:10.1f}  {cpu_new:9.1f}  {cpu_new - cpu_old:12.1f}  {verdict}"
        )


if __name__ == "__main__":
    main()
