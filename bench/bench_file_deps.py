"""The cost of the file-dependency check for a run that read 10,000 project files.

    .venv/bin/python bench/bench_file_deps.py [--files 10000] [--repeat 5]

Writes ``--files`` small files under a temporary project, records them as a run
would (hashing every file: the cold case), then times ``FileDigests.changed`` (the
check the executor and ``aeromancy list`` make before reusing a run) with a fresh
stat cache object each time: "cold" right after recording, when the files are too
new for the stat cache to trust (racy-clean rule) and so are hashed again, and "warm"
once they are older than RACY_SECONDS, when each costs one stat and one cache row.
The warm check is timed twice, interleaved: as the stat cache does it (one query per
LOOKUP_BATCH files) and with one query per file, as it did before. Wall and CPU
seconds (the CPU figure suffers less from a loaded machine); the target for the warm
check is under 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from aeromancy.file_deps import FileDigests
from aeromancy.store import statcache
from aeromancy.store.statcache import RACY_SECONDS, StatCache

TARGET_S = 0.2


def timed(
    check: FileDigests, recorded: dict[str, str | None], batch: int = statcache.LOOKUP_BATCH
) -> tuple[float, float]:
    """Return (wall s, CPU s) of one check with a fresh stat cache object."""
    check.cache = StatCache(check.cache.path.parent)
    saved, statcache.LOOKUP_BATCH = statcache.LOOKUP_BATCH, batch
    try:
        started, cpu = time.perf_counter(), time.process_time()
        assert check.changed(recorded, ()) is None
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        statcache.LOOKUP_BATCH = saved


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "project"
        names = [f"data/{i % 100:02d}/part-{i}.csv" for i in range(args.files)]
        for name in names:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"row,{name}\n" * 20)
        digests = FileDigests(root, StatCache(Path(scratch) / "cache"))
        started = time.perf_counter()
        recorded = digests.record(names, ())
        record_s = time.perf_counter() - started
        cold = timed(digests, recorded)
        time.sleep(RACY_SECONDS + 0.5)
        digests.of(names)  # now settled: the stat cache takes their entries
        warm: list[tuple[float, float]] = []
        per_file: list[tuple[float, float]] = []
        for _ in range(args.repeat):
            warm.append(timed(digests, recorded))
            per_file.append(timed(digests, recorded, batch=1))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), f"load average {load}")
    print(f"file-dependency check, {args.files} files (median of {args.repeat})")
    print("| case | wall s | CPU s |")
    print("|---|---|---|")
    print(f"| record (hash every file) | {record_s:.3f} | - |")
    print(f"| check, files too new for the stat cache (hashed) | {cold[0]:.3f} | {cold[1]:.3f} |")
    wall, cpu = medians(per_file)
    print(f"| check, warm stat cache, one query per file (before) | {wall:.3f} | {cpu:.3f} |")
    wall, cpu = medians(warm)
    print(f"| check, warm stat cache, bulk lookup | {wall:.3f} | {cpu:.3f} |")
    print(f"warm check {'meets' if wall < TARGET_S else 'misses'} the {TARGET_S} s target")


if __name__ == "__main__":
    main()
