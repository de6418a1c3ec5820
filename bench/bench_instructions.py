"""Instructions spent planning large graphs, counted by callgrind (issue 17).

    .venv/bin/python bench/bench_instructions.py [--sizes 1000,5000] [--scratch DIR]

Wall and CPU seconds on this shared 2-core machine vary by 20-30% between runs, which
is as much as the linearity target (50k tasks within 5x of 10k) leaves. Callgrind
counts the instructions the interpreter executes instead: the same count for the same
inputs whatever else the machine does. Each size is planned once, as
``bench_executor.py``'s harness plans it (the same projects and populated stores, so
``--scratch`` shares them), inside ``valgrind --tool=callgrind``; a dump is taken
between stages (``--dump-before`` on ``os.getppid``, which the harness calls as a
marker), so each stage's instructions are read from its own dump. If instructions
grow 5x for 5x tasks and seconds grow more, the extra time is the memory hierarchy
(a larger working set), not the algorithm. Needs valgrind (Debian package).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_executor import _plan_stages, ready_project

from aeromancy.gcpause import gc_paused
from aeromancy.identity import dev_environment_key

STAGES = ("load", "plan", "records", "code", "check")
MARKER = "os_getppid"  # the C function behind os.getppid(): a dump is taken before each call


def plan_with_markers(scratch: Path, size: int) -> None:
    """Plan ``size`` tasks as the harness does, calling the marker after each stage."""
    root, store_url, _ = ready_project(scratch, size, inline=True)
    environment = dev_environment_key(root)

    def timed(_name: str, step: object) -> object:
        os.getppid()  # everything before this call is the previous stage's
        return step()  # type: ignore[operator]

    with gc_paused(freeze=True):
        _plan_stages(root, store_url, f"graph{size}", environment, timed)
    os.getppid()


def count(scratch: Path, size: int) -> dict[str, int]:
    """Run one planning pass of ``size`` tasks under callgrind; instructions per stage."""
    with tempfile.TemporaryDirectory(prefix="aeromancy-callgrind-") as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--dump-before={MARKER}",
            f"--callgrind-out-file={out}/cg.out",
            sys.executable,
            __file__,
            "--inside",
            str(size),
            "--scratch",
            str(scratch),
        ]
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
        dumps = sorted(Path(out).glob("cg.out*"), key=_dump_number)
        totals = [_total(path) for path in dumps]
    # Dumps: start-up, one per stage, the last marker's (nothing), then the exit.
    if len(totals) < len(STAGES) + 2:
        raise RuntimeError(
            f"expected {len(STAGES) + 2} or more dumps, callgrind wrote {len(totals)}"
        )
    stages = dict(zip(STAGES, totals[1 : 1 + len(STAGES)], strict=True))
    stages["total"] = sum(stages.values())
    return stages


def _dump_number(path: Path) -> int:
    suffix = path.name.rpartition(".")[2]
    return int(suffix) if suffix.isdigit() else 1 << 30  # the final dump has no number


def _total(path: Path) -> int:
    found = re.search(r"^(?:summary|totals): (\d+)", path.read_text(), re.MULTILINE)
    if not found:
        raise RuntimeError(f"{path}: no instruction total")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument("--inside", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aeromancy-bench-") as tmp:
        scratch = (args.scratch or Path(tmp)).resolve()
        scratch.mkdir(parents=True, exist_ok=True)
        os.environ["AEROMANCY_CACHE"] = str(scratch / "cache")
        if args.inside is not None:
            plan_with_markers(scratch, args.inside)
            return
        sizes = [int(s) for s in args.sizes.split(",")]
        for size in sizes:  # populate (and warm the caches) outside callgrind
            ready_project(scratch, size, inline=True)
            plan_with_markers(scratch, size)
        _report(scratch, sizes)


def _report(scratch: Path, sizes: list[int]) -> None:
    print("\nPlanning, all tasks up to date: instructions (millions) per stage, callgrind")
    print(
        " ".join(
            [
                f"{'tasks':>7}",
                *(f"{s:>9}" for s in (*STAGES, "total")),
                f"{'per task':>9}",
                f"{'ratio':>7}",
            ]
        )
    )
    previous: tuple[int, int] | None = None
    for size in sizes:
        stages = count(scratch, size)
        ratio = f"{stages['total'] / previous[1]:.2f}x" if previous else "-"
        scale = f" ({size / previous[0]:.0f}x tasks)" if previous else ""
        cells = (f"{stages[s] / 1e6:>9.0f}" for s in (*STAGES, "total"))
        print(
            f"{size:>7} {' '.join(cells)} {stages['total'] / size:>9.0f} {ratio:>7}{scale}",
            flush=True,
        )
        previous = (size, stages["total"])


if __name__ == "__main__":
    main()
