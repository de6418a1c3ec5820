"""Loading and planning large graphs from the task module's description.

    .venv/bin/python bench/bench_describe.py [--sizes 10000,50000] [--repeat 3]
        [--before REV]

For each size, a generated module of N tasks (bench_executor's: task i reads a(i-1)
and a(i//2)) is loaded and planned against an empty store: ``load_graph`` then
``build_plan``, each pass in a fresh interpreter, so that what one pass leaves in
memory cannot help the next. ``cold`` is the first pass (the project's interpreter
imports the module and describes it), ``warm`` the best of ``--repeat`` passes that
find the description in the cache. With ``--before REV`` the same is timed for the
code at git revision REV (extracted to a temporary directory), which imported the
module in Aeromancy's own process. Times are this process tree's CPU seconds (the
machine is shared; CPU time suffers least from that) and wall seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_executor import generate_pipeline  # noqa: E402

PASS = """
import sys, time
sys.path.insert(0, {code!r})
from pathlib import Path
from aeromancy.planning import build_plan, load_graph
from aeromancy.store import open_store
started = time.process_time()
graph = load_graph("pipeline.py", Path({root!r}), "bench")
build_plan(graph, open_store({store!r}), namespace="dev")
print(time.process_time() - started)
"""


def one_pass(code: Path, root: Path, store: Path, env: dict[str, str]) -> tuple[float, float]:
    """Return (wall s, CPU s of the whole process tree) of one load-and-plan pass."""
    script = PASS.format(code=str(code), root=str(root), store=str(store))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def extract(revision: str, into: Path) -> Path:
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "aeromancy"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", metavar="REV")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="aeromancy-bench-describe-") as tmp:
        scratch = Path(tmp)
        versions = {"now": ROOT}
        if args.before:
            versions[f"before ({args.before})"] = extract(args.before, scratch / "before")
        rows = []
        for label, code in versions.items():
            for size in sizes:
                root = scratch / f"{label.split()[0]}-{size}"
                root.mkdir()
                (root / "pipeline.py").write_text(generate_pipeline(size))
                env = {**os.environ, "AEROMANCY_CACHE": str(scratch / f"cache-{label[:3]}")}
                cold = one_pass(code, root, scratch / "store", env)
                warm = min(
                    (one_pass(code, root, scratch / "store", env) for _ in range(args.repeat)),
                    key=lambda sample: sample[1],
                )
                rows.append((label, size, cold, warm))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), f"load average {load}")
    columns = "cold wall s | cold CPU s | warm wall s | warm CPU s | warm CPU vs first size"
    print(f"| code | tasks | {columns} |")
    print("|---|---|---|---|---|---|---|")
    base: dict[str, float] = {}
    for label, size, cold, warm in rows:
        base.setdefault(label, warm[1])
        print(
            f"| {label} | {size} | {cold[0]:.2f} | {cold[1]:.2f} | {warm[0]:.2f} | {warm[1]:.2f}"
            f" | {warm[1] / base[label]:.2f}x |"
        )


if __name__ == "__main__":
    main()
