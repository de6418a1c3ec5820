"""The cost of the process boundary: 200 trivial tasks, in-process, spawned, forked.

    .venv/bin/python bench/bench_process.py [--tasks 200] [--repeat 3] [--before REF]

"in-process" is the code just before task runs moved into child processes (by default
the parent of the commit that added ``aeromancy/execution/child/runtime.py``), checked
out into a temporary git worktree and imported ahead of this checkout through
PYTHONPATH; "spawn" is this checkout with ``AEROMANCY_FORK_SERVER=0`` (a fresh Python
per task run) and "fork" this checkout as it runs by default (task processes forked by
the run's fork server). Each runs ``aeromancy run --dev --force -j N`` as a subprocess
on the same generated module of independent tasks that save a 1-byte output, against a
local store on this disk, the three in turn, ``--repeat`` times each. The per-task
overhead is (variant - in-process) / tasks; the target is under 30 ms.

First, the boundary alone: ``ChildProcesses.run`` of one trivial task request, spawned
and forked in turn, without the rest of a run (no store, no record), and the child's
own CPU time as its ``wait4`` reports it.
"""

from __future__ import annotations

import argparse
import json
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


def timed_run(
    code: Path, project: Path, scratch: Path, jobs: int, fork_server: str = "1"
) -> tuple[float, float]:
    """Return the wall and CPU seconds (the run and every process it waited for) of one
    ``aeromancy run --dev --force`` with ``code`` first on the path."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "AEROMANCY_STORE": str(scratch / f"store-{code.name}"),
        "AEROMANCY_CACHE": str(scratch / f"cache-{code.name}"),
        "AEROMANCY_FORK_SERVER": fork_server,
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


def boundary_cost(project: Path, scratch: Path, count: int) -> dict[str, list[float]]:
    """Return, for spawn and fork, the wall ms of each ``ChildProcesses.run`` of a trivial
    task (taking turns) and the child's CPU ms; the first fork includes its server's start."""
    from aeromancy.execution.child.protocol import PROTOCOL, REQUEST_FILENAME
    from aeromancy.execution.output import CappedLog, OutputRelay
    from aeromancy.execution.process import ChildProcesses

    variants = {"spawn": ChildProcesses(sys.executable, False)}
    variants["fork"] = ChildProcesses(sys.executable, True)
    found: dict[str, list[float]] = {f"{k} {m}": [] for k in variants for m in ("wall", "cpu")}
    try:
        for i in range(count):
            for name, children in variants.items():
                run_dir = scratch / f"boundary-{name}-{i}"
                (run_dir / "work").mkdir(parents=True)
                request = {
                    "protocol": PROTOCOL,
                    "root": str(project),
                    "tasks": "pipeline.py",
                    "task": f"t{i}",
                    "run_id": f"bench-{i}",
                    "config": {},
                    "workdir": str(run_dir / "work"),
                    "inputs": {},
                    "outputs": {f"out{i}": "artifact"},
                }
                (run_dir / REQUEST_FILENAME).write_text(json.dumps(request))
                log = CappedLog(run_dir / "output.log")
                relay = OutputRelay(lambda stream, text: None, log, None)
                start = time.perf_counter()
                ended = children.run(run_dir / REQUEST_FILENAME, project, relay, lambda e: None)
                found[f"{name} wall"].append((time.perf_counter() - start) * 1000)
                log.close()
                if not (ended.result or {}).get("ok"):
                    raise SystemExit(f"the {name} boundary run failed: {ended.result}")
                used = ended.resources.cpu_user_s + ended.resources.cpu_system_s
                found[f"{name} cpu"].append(used * 1000)
    finally:
        for children in variants.values():
            children.close()
    return found


def report(args: argparse.Namespace, ref: str, before: Path, project: Path, scratch: Path) -> None:
    count = args.tasks
    load = os.getloadavg()
    bytecode = "not written" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "written"
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; .pyc files {bytecode}")
    bare, child = start_cost(scratch)
    print(f"python -c pass {bare:.1f} ms, + child runtime import {child:.1f} ms (median wall)")
    boundary = boundary_cost(project, scratch, min(count, 100))
    print("the boundary alone, ms per task (median; the first fork starts the fork server):")
    for name in ("spawn", "fork"):
        walls, cpus = boundary[f"{name} wall"], boundary[f"{name} cpu"]
        print(
            f"  {name:<5}  wall {statistics.median(walls):6.1f}  child cpu "
            f"{statistics.median(cpus):5.1f}  first wall {walls[0]:6.1f}"
        )
    print(f"{count} trivial tasks (each saves a 1-byte output), median of {args.repeat} runs")
    print(f"in-process = {ref}; spawn, fork = {ROOT.name} with AEROMANCY_FORK_SERVER=0, 1")
    print("wall: median s of the whole run; cpu: its CPU ms per task, children included;")
    print("overhead: per task over in-process")
    print("jobs  variant     wall s  ms/task  overhead ms  ratio  cpu ms  cpu overhead ms")
    variants = {"in-process": (before, "1"), "spawn": (ROOT, "0"), "fork": (ROOT, "1")}
    for jobs in (int(j) for j in args.jobs.split(",")):
        for code, fork in variants.values():
            timed_run(code, project, scratch, jobs, fork)  # warm the caches (records)
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, (code, fork) in variants.items():
                runs[name].append(timed_run(code, project, scratch, jobs, fork))
        wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
        cpu = {k: statistics.median(c for _, c in v) / count * 1000 for k, v in runs.items()}
        base = wall["in-process"]
        for name in variants:
            overhead = (wall[name] - base) / count * 1000
            verdict = ""
            if name != "in-process":
                verdict = "ok" if overhead < TARGET_MS else f"over the {TARGET_MS:.0f} ms target"
            print(
                f"{jobs:>4}  {name:<10}  {wall[name]:6.2f}  {wall[name] / count * 1000:7.1f}  "
                f"{overhead:11.1f}  {wall[name] / base:4.2f}x  {cpu[name]:6.1f}  "
                f"{cpu[name] - cpu['in-process']:15.1f}  {verdict}"
            )


if __name__ == "__main__":
    main()
