"""Instructions spent planning large graphs, counted by callgrind (issue 17).

    .venv/bin/python bench/bench_instructions.py [--sizes 1000,5000] [--scratch DIR]
        [--cache-sim BYTES]

Wall and CPU seconds on this shared 2-core machine vary by 20-30% between runs, which
is as much as the linearity target (50k tasks within 5x of 10k) leaves. Callgrind
counts the instructions the interpreter executes instead: the same count for the same
inputs whatever else the machine does. Each size is planned once, as
``bench_executor.py``'s harness plans it (the same projects and populated stores, so
``--scratch`` shares them), inside ``valgrind --tool=callgrind``; a dump is taken
between stages (``--dump-before`` on ``os.getppid``, which the harness calls as a
marker), so each stage's instructions are read from its own dump. If instructions
grow 5x for 5x tasks and seconds grow more, the extra time is the memory hierarchy
(a larger working set), not the algorithm; ``--cache-sim BYTES`` also simulates a
last-level cache of that size and counts the data accesses that miss it, per task.
Needs valgrind (Debian package).
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


def count(scratch: Path, size: int, cache_bytes: int | None) -> dict[str, dict[str, int]]:
    """Run one planning pass of ``size`` tasks under callgrind; its events per stage
    (``Ir``, instructions; with a cache simulated, ``DLmr``/``DLmw``, data reads and
    writes that missed the last-level cache of ``cache_bytes``)."""
    simulate = ["--cache-sim=yes", f"--LL={cache_bytes},16,64"] if cache_bytes else []
    with tempfile.TemporaryDirectory(prefix="aeromancy-callgrind-") as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            *simulate,
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
        totals = [_events(path) for path in dumps]
    # Dumps: start-up, one per stage, the last marker's (nothing), then the exit.
    if len(totals) < len(STAGES) + 2:
        raise RuntimeError(
            f"expected {len(STAGES) + 2} or more dumps, callgrind wrote {len(totals)}"
        )
    stages = dict(zip(STAGES, totals[1 : 1 + len(STAGES)], strict=True))
    stages["total"] = {event: sum(s[event] for s in stages.values()) for event in totals[1]}
    return stages


def _dump_number(path: Path) -> int:
    suffix = path.name.rpartition(".")[2]
    return int(suffix) if suffix.isdigit() else 1 << 30  # the final dump has no number


def _events(path: Path) -> dict[str, int]:
    """Return a dump's totals by event name."""
    text = path.read_text()
    names = re.search(r"^events: (.+)$", text, re.MULTILINE)
    found = re.search(r"^(?:summary|totals): ([\d ]+)$", text, re.MULTILINE)
    if not names or not found:
        raise RuntimeError(f"{path}: no event totals")
    events = names.group(1).split()
    values = [int(v) for v in found.group(1).split()]
    values += [0] * (len(events) - len(values))  # callgrind leaves trailing zeros out
    return dict(zip(events, values, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument(
        "--cache-sim",
        type=int,
        default=None,
        metavar="BYTES",
        help="Also simulate a last-level cache of BYTES (e.g. 4194304) and count its misses.",
    )
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
        _report(scratch, sizes, args.cache_sim)


def _report(scratch: Path, sizes: list[int], cache_bytes: int | None) -> None:
    what = "instructions (millions)"
    if cache_bytes:
        what += f"; per task, instructions and data misses of a {cache_bytes >> 20} MiB cache"
    print(f"\nPlanning, all tasks up to date: {what} per stage, callgrind")
    columns = [f"{'tasks':>7}", *(f"{s:>9}" for s in (*STAGES, "total")), f"{'per task':>9}"]
    columns += [f"{'misses/task':>11}"] if cache_bytes else []
    print(" ".join([*columns, f"{'ratio':>7}"]))
    previous: tuple[int, int] | None = None
    for size in sizes:
        stages = count(scratch, size, cache_bytes)
        total = stages["total"]["Ir"]
        ratio = f"{total / previous[1]:.2f}x" if previous else "-"
        scale = f" ({size / previous[0]:.0f}x tasks)" if previous else ""
        cells = [f"{stages[s]['Ir'] / 1e6:>9.0f}" for s in (*STAGES, "total")]
        cells.append(f"{total / size:>9.0f}")
        if cache_bytes:
            misses = stages["total"]["DLmr"] + stages["total"]["DLmw"]
            cells.append(f"{misses / size:>11.0f}")
        print(f"{size:>7} {' '.join(cells)} {ratio:>7}{scale}", flush=True)
        previous = (size, total)


if __name__ == "__main__":
    main()
