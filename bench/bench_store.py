"""Benchmark the artifact store against the obvious baselines, side by side.

Data (random bytes, under /tmp, deleted afterwards): 500 MiB in 100 files, and one
1 GiB file. For each, in one run:

- push to a local store            vs  ``cp -r``, and vs hashing the same bytes alone
- push to a loopback S3 server     vs  plain boto3 ``upload_file`` with 8 threads
- our streaming sha256             vs  ``hashlib.file_digest`` alone
- ``dvc add`` + ``dvc push``       (only when ``dvc`` is on PATH)
- peak RSS of a process pushing the 1 GiB file (local and S3)

Times are the best of ``--repeat`` runs (page cache warm for every contender; local
tries start with no dirty pages).
Usage: .venv/bin/python bench/bench_store.py [--repeat N] [--small]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from rich.console import Console
from rich.table import Table

from aeromancy.store import open_store
from aeromancy.store.hashing import sha256_file

MIB = 1 << 20


@dataclass(frozen=True)
class Row:
    """One side-by-side comparison: ours vs a baseline, both in seconds."""

    what: str
    data: str
    ours: float
    baseline: float
    baseline_name: str
    target: str
    met: bool | None
    #: True: the ratio is our speed over the baseline's (higher is better), not time over time.
    speed: bool = False

    @property
    def ratio(self) -> float:
        """Return time(ours)/time(baseline), or for a speed row its inverse."""
        if self.speed:
            return self.baseline / self.ours
        return self.ours / self.baseline


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def compare(
    repeat: int, ours: Callable[[], None], baseline: Callable[[], None], reset: Callable[[], None]
) -> tuple[float, float]:
    """Return the best wall times of ``ours`` and ``baseline``, run alternately.

    Alternating spreads the noise of a shared machine evenly over both sides;
    ``reset`` runs before every try so each starts from the same state.
    """
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(repeat):
        reset()
        mine.append(timed(ours))
        reset()
        theirs.append(timed(baseline))
    reset()
    return min(mine), min(theirs)


def make_data(root: Path, small: bool) -> dict[str, Path]:
    """Write the two datasets under ``root``; return {label: path}."""
    count, each, big = (20, 5 * MIB, 128 * MIB) if small else (100, 5 * MIB, 1024 * MIB)
    many = root / "many"
    many.mkdir()
    for index in range(count):
        (many / f"part-{index:03d}.bin").write_bytes(os.urandom(each))
    single = root / "single"
    single.mkdir()
    with open(single / "big.bin", "wb") as handle:
        for _ in range(big // (64 * MIB) or 1):
            handle.write(os.urandom(min(big, 64 * MIB)))
    return {
        f"{count * each // MIB} MiB / {count} files": many,
        f"{big // MIB} MiB / 1 file": single / "big.bin",
    }


def remove(path: Path) -> None:
    """Delete a file or a tree (the store makes its blobs read-only)."""
    if path.is_dir() and not path.is_symlink():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# -- local ----------------------------------------------------------------------------


def bench_local(label: str, source: Path, scratch: Path, repeat: int) -> Row:
    store_dir = scratch / "local-store"
    copy_dir = scratch / "cp-target"

    def push() -> None:
        open_store(store_dir).publish("bench", "data", source)

    def copy() -> None:
        subprocess.run(["cp", "-r", str(source), str(copy_dir)], check=True)

    def reset() -> None:
        remove(store_dir)
        remove(copy_dir)
        # Each try starts with no dirty pages, so no contender pays for another's writeback.
        os.sync()

    ours, baseline = compare(repeat, push, copy, reset)
    row = Row("push, local store", label, ours, baseline, "cp -r", "time <= 1.3x", False)
    return _judge(row, lambda r: r <= 1.3)


# -- S3 -------------------------------------------------------------------------------


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """Start moto's S3 server on a free loopback port; return it and its endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return server, endpoint
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto server did not start")


def empty_bucket(bucket: str) -> None:
    client = boto3.client("s3")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})


def plain_boto3_upload(client: Any, source: Path, bucket: str) -> None:
    """The baseline: boto3's upload_file, 8 files at a time, 8 part threads per file."""
    config = TransferConfig(max_concurrency=8)
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]

    def upload(path: Path) -> None:
        client.upload_file(str(path), bucket, f"plain/{path.name}", Config=config)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(upload, files))


def bench_s3(label: str, source: Path, bucket: str, repeat: int) -> Row:
    store = open_store(f"s3://{bucket}/store")  # both sides build their client untimed
    client = boto3.client("s3")
    ours, baseline = compare(
        repeat,
        lambda: store.publish("bench", "data", source) and None,
        lambda: plain_boto3_upload(client, source, bucket),
        lambda: empty_bucket(bucket),
    )
    row = Row(
        "push, loopback S3", label, ours, baseline, "boto3 upload_file x8", "time <= 1.1x", False
    )
    return _judge(row, lambda r: r <= 1.1)


# -- hashing --------------------------------------------------------------------------


def bench_hash(label: str, source: Path, repeat: int) -> Row:
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]

    def ours() -> None:
        for path in files:
            sha256_file(path)

    def plain() -> None:
        for path in files:
            with open(path, "rb") as handle:
                hashlib.file_digest(handle, "sha256")

    mine, theirs = compare(repeat, ours, plain, lambda: None)
    size = sum(p.stat().st_size for p in files) / MIB
    row = Row(
        f"sha256 ({size / mine:.0f} vs {size / theirs:.0f} MiB/s)",
        label,
        mine,
        theirs,
        "hashlib.file_digest",
        "speed >= 0.9x",
        False,
        speed=True,
    )
    return _judge(row, lambda r: r >= 0.9)


# -- DVC ------------------------------------------------------------------------------


def bench_dvc(
    label: str, source: Path, scratch: Path, ours_local: float, repeat: int
) -> Row | None:
    """Return ``dvc add`` + ``dvc push`` to a local remote, or None when dvc is absent.

    Each try starts from a fresh repository holding a copy of the data (untimed).
    """
    dvc = shutil.which("dvc")
    if dvc is None:
        return None
    repo, remote = scratch / "dvc-repo", scratch / "dvc-remote"

    def run(*args: str) -> None:
        subprocess.run([dvc, *args], cwd=repo, check=True, capture_output=True)

    def add_and_push() -> None:
        run("add", source.name)
        run("push")

    times = []
    for _ in range(repeat):
        remove(repo)
        remove(remote)
        repo.mkdir()
        subprocess.run(["cp", "-r", str(source), str(repo / source.name)], check=True)
        run("init", "--no-scm")
        run("remote", "add", "-d", "bench", str(remote))
        os.sync()
        times.append(timed(add_and_push))
    remove(repo)
    remove(remote)
    row = Row("push, local store", label, ours_local, min(times), "dvc add + push", "-", None)
    return row


def floor_row(local: Row, hashing: Row) -> Row:
    """Compare a local push with hashing the same bytes alone: content addressing's floor."""
    return Row(
        "push, local store", local.data, local.ours, hashing.baseline, "sha256 alone", "-", None
    )


# -- memory ---------------------------------------------------------------------------


PUSH_CHILD = """
import sys
from aeromancy.store import open_store
open_store(sys.argv[1]).publish("bench", "mem", sys.argv[2])
# VmHWM is the peak RSS of this program's own address space (it restarts at exec,
# unlike ru_maxrss, which would count the parent's pages from before the exec).
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]))
"""


def peak_rss_mib(store_url: str, source: Path) -> float:
    """Return the peak resident memory (MiB) of a fresh process pushing ``source``."""
    result = subprocess.run(
        [sys.executable, "-c", PUSH_CHILD, store_url, str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.split()[-1]) / 1024  # VmHWM is in KiB


# -- main -----------------------------------------------------------------------------


def _judge(row: Row, ok: Callable[[float], bool]) -> Row:
    return dataclasses.replace(row, met=ok(row.ratio))


def render(rows: list[Row], memory: list[tuple[str, float]], dvc_note: str) -> None:
    table = Table(title="aeromancy store benchmark")
    for column in (
        "what",
        "data",
        "ours (s)",
        "baseline",
        "baseline (s)",
        "ratio",
        "target",
        "met",
    ):
        table.add_column(column)
    for row in rows:
        met = "-" if row.met is None else ("yes" if row.met else "NO")
        table.add_row(
            row.what,
            row.data,
            f"{row.ours:.2f}",
            row.baseline_name,
            f"{row.baseline:.2f}",
            f"{row.ratio:.2f}x",
            row.target,
            met,
        )
    for what, mib in memory:
        table.add_row(
            what,
            "1 GiB file",
            f"{mib:.0f} MiB",
            "",
            "",
            "",
            "< 200 MiB",
            "yes" if mib < 200 else "NO",
        )
    console = Console(width=160)
    console.print(table)
    console.print(dvc_note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (best kept)")
    parser.add_argument("--small", action="store_true", help="100 MiB + 128 MiB, for a quick try")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="aeromancy-bench-", dir="/tmp"))
    os.environ["AEROMANCY_CACHE"] = str(scratch / "cache")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[name] = value
    server, endpoint = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        datasets = (
            make_data(scratch / "data", args.small) if (scratch / "data").mkdir() is None else {}
        )
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        rows: list[Row] = []
        dvc_rows: list[Row] = []
        for label, source in datasets.items():
            hashing = bench_hash(label, source, args.repeat)
            local = bench_local(label, source, scratch, args.repeat)
            rows.extend([hashing, local, floor_row(local, hashing)])
            rows.append(bench_s3(label, source, bucket, args.repeat))
            dvc_row = bench_dvc(label, source, scratch, local.ours, args.repeat)
            if dvc_row is not None:
                dvc_rows.append(dvc_row)
        rows.extend(dvc_rows)
        big = list(datasets.values())[-1]
        memory = [
            ("peak RSS, push to local", peak_rss_mib(str(scratch / "mem-store"), big)),
            ("peak RSS, push to S3", peak_rss_mib(f"s3://{bucket}/mem", big)),
        ]
        empty_bucket(bucket)
        note = "dvc: compared above" if dvc_rows else "dvc: skipped (dvc is not on PATH)"
        render(rows, memory, note)
    finally:
        server.terminate()
        server.wait()
        remove(scratch)


if __name__ == "__main__":
    main()
