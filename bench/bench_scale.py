"""Speed at scale (issue 17): many small files, unchanged data, big files, start-up.

    PATH=/opt/dvc-venv/bin:$PATH .venv/bin/python bench/bench_scale.py [--repeat 3]
        [--small-files 20000] [--s3-files 20000] [--skip-s3] [--skip-big] [--only-s3]
        [--scratch-parent /tmp]

Every row runs its contenders alternately, ``--repeat`` times each, and keeps the
median; each try starts from the same state (untimed reset, and ``sync`` so that no
try pays for another's writeback). DVC rows appear when ``dvc`` is on PATH (install
it in its own venv: ``python3 -m venv /opt/dvc-venv && /opt/dvc-venv/bin/pip install
dvc dvc-s3``). S3 is moto's server on loopback, sharing the machine's cores with
the client, so it is the limit there. Data is random, under /tmp, deleted after.

Byte-compiled modules matter for start-up: the rows run Python as installed
(``PYTHONDONTWRITEBYTECODE`` unset, after one untimed run that writes the caches).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
import urllib3

from aeromancy.store import Store, open_store
from aeromancy.store.paths import collect_files
from aeromancy.store.statcache import RACY_SECONDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import remove, start_moto

MIB = 1 << 20
AEROMANCY = Path(sys.executable).with_name("aeromancy")


@dataclass(frozen=True)
class Row:
    """One figure: ours against one contender (seconds, medians), and the target."""

    what: str
    ours: float
    other: float
    other_name: str
    target: str
    met: bool | None

    @property
    def ratio(self) -> float:
        return self.ours / self.other


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def interleaved(
    repeat: int, contenders: list[Callable[[], object]], reset: Callable[[], None]
) -> list[float]:
    """Return each contender's median time; tries alternate, each after ``reset``."""
    times: list[list[float]] = [[] for _ in contenders]
    for _ in range(repeat):
        for index, contender in enumerate(contenders):
            reset()
            times[index].append(timed(contender))
    reset()
    return [statistics.median(found) for found in times]


def sh(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in args], cwd=cwd, env=env, check=True, capture_output=True)


def settle() -> None:
    """Flush dirty pages, so the next try does not pay for this one's writeback."""
    os.sync()


def make_small_files(root: Path, count: int) -> Path:
    """Write ``count`` files of 1 KiB in folders of 1,000; return the top folder."""
    top = root / "small"
    for index in range(count):
        folder = top / f"d{index // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:06d}.bin").write_bytes(os.urandom(1024))
    return top


def make_many_files(root: Path) -> Path:
    top = root / "many"
    top.mkdir()
    for index in range(100):
        (top / f"part-{index:03d}.bin").write_bytes(os.urandom(5 * MIB))
    return top


def make_big_file(root: Path) -> Path:
    top = root / "big"
    top.mkdir()
    with open(top / "big.bin", "wb") as handle:
        for _ in range(16):
            handle.write(os.urandom(64 * MIB))
    return top


def hash_files(files: list[Path], threads: int) -> None:
    def one(path: Path) -> None:
        with open(path, "rb") as handle:
            hashlib.file_digest(handle, "sha256")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, files))


def hash_and_write_files(files: list[Path], out: Path, threads: int) -> None:
    """Read, sha256 and write each file to ``out``: the floor for a store that writes blobs."""
    out.mkdir(parents=True, exist_ok=True)

    def one(path: Path) -> None:
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as reader, open(out / path.name, "wb") as writer:
            while chunk := reader.read(MIB):
                digest.update(chunk)
                writer.write(chunk)

    if threads == 1:  # a plain loop: the floor of one Python thread, no pool
        for path in files:
            one(path)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, files))


def copy_alone(source: Path, dest: Path) -> None:
    """Copy one file in the kernel (copy_file_range), as a pull without hashing would."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader, open(dest / source.name, "wb") as writer:
        while os.copy_file_range(reader.fileno(), writer.fileno(), 64 * MIB):
            pass


def copy_files(files: list[Path], out: Path, threads: int) -> None:
    """Copy each file into ``out`` in the kernel, no hashing: the write a store must do."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda path: copy_alone(path, out), files))


class Dvc:
    """A DVC repository in ``root`` tracking a copy of ``data`` (made untimed)."""

    def __init__(self, dvc: str, root: Path, data: Path, remote: str, env: dict[str, str]) -> None:
        self.dvc, self.root, self.data, self.remote, self.env = dvc, root, data, remote, env

    def run(self, *args: str) -> None:
        sh(self.dvc, *args, cwd=self.root, env=self.env)

    def fresh(self, endpoint: str | None = None) -> None:
        remove(self.root)
        self.root.mkdir(parents=True)
        sh("cp", "-r", self.data, self.root / self.data.name)
        self.run("init", "--no-scm")
        self.run("remote", "add", "-d", "bench", self.remote)
        if endpoint:
            self.run("remote", "modify", "bench", "endpointurl", endpoint)

    def add_and_push(self) -> None:
        self.run("add", self.data.name)
        self.run("push")

    def forget_local(self) -> None:
        """Drop the workspace copy and the DVC cache: the next pull is cold."""
        remove(self.root / self.data.name)
        remove(self.root / ".dvc" / "cache")


# -- rows ------------------------------------------------------------------------------


def local_small_rows(scratch: Path, data: Path, repeat: int, dvc: str | None) -> list[Row]:
    count = sum(1 for _ in data.rglob("*.bin"))
    label = f"{count:,} x 1 KiB, local"
    store_dir, cache, out, copy = (scratch / n for n in ("ls-store", "ls-cache", "ls-out", "cp"))
    dvc_repo = (
        Dvc(dvc, scratch / "dvc", data, str(scratch / "dvc-remote"), dict(os.environ))
        if dvc
        else None
    )

    def store() -> Store:
        return open_store(store_dir, cache_dir=cache)

    def reset_all() -> None:
        for path in (store_dir, cache, out, copy, scratch / "dvc-remote"):
            remove(path)
        if dvc_repo:
            dvc_repo.fresh()
        settle()

    files = sorted(data.rglob("*.bin"))
    push_contenders: list[Callable[[], object]] = [
        lambda: store().publish("bench", "small", data),
        lambda: sh("cp", "-r", data, copy),
        lambda: hash_and_write_files(files, copy.with_name("floor"), 1),
    ]
    if dvc_repo:
        push_contenders.append(dvc_repo.add_and_push)

    def reset_push() -> None:
        remove(copy.with_name("floor"))
        reset_all()

    push = interleaved(repeat, push_contenders, reset_push)
    rows = [
        Row(f"push {label}", push[0], push[1], "cp -r", "<= 2.5x", push[0] / push[1] <= 2.5),
        Row(f"push {label}", push[0], push[2], "read + sha256 + write, 1 thread", "-", None),
    ]
    if dvc_repo:
        rows.append(Row(f"push {label}", push[0], push[3], "dvc add + push", "-", None))

    # Pulls: the store (and DVC's remote) is filled once, untimed.
    for path in (store_dir, cache, scratch / "dvc-remote"):
        remove(path)
    version = store().publish("bench", "small", data)
    if dvc_repo:
        dvc_repo.fresh()
        dvc_repo.add_and_push()

    def reset_cold() -> None:
        for path in (cache, out, copy):
            remove(path)
        if dvc_repo:
            dvc_repo.forget_local()
        settle()

    pull_contenders: list[Callable[[], object]] = [
        lambda: store().materialize(version, out),
        lambda: sh("cp", "-r", data, copy),
    ]
    if dvc_repo:
        pull_contenders.append(lambda: dvc_repo.run("pull"))
    cold = interleaved(repeat, pull_contenders, reset_cold)
    rows.append(
        Row(f"cold pull {label}", cold[0], cold[1], "cp -r", "<= 4x", cold[0] / cold[1] <= 4)
    )
    if dvc_repo:
        rows.append(Row(f"cold pull {label}", cold[0], cold[2], "dvc pull", "-", None))

    store().materialize(version, scratch / "warm-up")  # fills the cache, untimed

    def reset_warm() -> None:
        for path in (out, copy):
            remove(path)
        settle()

    warm = interleaved(
        repeat,
        [lambda: store().materialize(version, out), lambda: sh("cp", "-r", data, copy)],
        reset_warm,
    )
    rows.append(
        Row(f"warm pull {label}", warm[0], warm[1], "cp -r", "<= 2x", warm[0] / warm[1] <= 2)
    )
    for path in (
        store_dir,
        cache,
        out,
        copy,
        scratch / "warm-up",
        scratch / "dvc",
        scratch / "dvc-remote",
    ):
        remove(path)
    return rows


def unchanged_rows(scratch: Path, data: Path, repeat: int, dvc: str | None) -> list[Row]:
    """Push 500 MiB / 100 files once, then time pushing it again unchanged."""
    store_dir, cache = scratch / "u-store", scratch / "u-cache"
    store = open_store(store_dir, cache_dir=cache)
    # The stat cache trusts only files that last changed RACY_SECONDS before it records.
    time.sleep(max(0.0, RACY_SECONDS + 0.5 - (time.time() - newest_change(data))))
    store.publish("bench", "many", data)
    dvc_repo = (
        Dvc(dvc, scratch / "u-dvc", data, str(scratch / "u-dvc-remote"), dict(os.environ))
        if dvc
        else None
    )
    if dvc_repo:
        dvc_repo.fresh()
        dvc_repo.add_and_push()
    contenders: list[Callable[[], object]] = [
        lambda: store.publish("bench", "many", data),
        lambda: collect_files(data),
    ]
    if dvc_repo:
        contenders.append(dvc_repo.add_and_push)
    found = interleaved(repeat, contenders, settle)
    again, listing = found[0], found[1]
    rows = [
        Row(
            "re-push 500 MiB / 100 unchanged files, local (ours - listing)",
            again - listing,
            0.05,
            "target 0.05 s",
            "<= 0.05 s + listing",
            again - listing <= 0.05,
        )
    ]
    if dvc_repo:
        rows.append(
            Row(
                "re-push 500 MiB / 100 unchanged files, local",
                again,
                found[2],
                "dvc add + push",
                "ahead of DVC",
                again < found[2],
            )
        )
    for path in (store_dir, cache, scratch / "u-dvc", scratch / "u-dvc-remote"):
        remove(path)
    return rows


def newest_change(data: Path) -> float:
    return max(max(p.stat().st_mtime, p.stat().st_ctime) for p in data.rglob("*") if p.is_file())


def big_rows(scratch: Path, many: Path, big: Path, repeat: int) -> list[Row]:
    """Push 500 MiB / 100 files vs sha256 on both cores; pull 1 GiB vs sha256 alone."""
    store_dir, cache, out = scratch / "b-store", scratch / "b-cache", scratch / "b-out"
    many_files = sorted(many.iterdir())

    def reset_push() -> None:
        remove(store_dir)
        remove(out)
        settle()

    push = interleaved(
        repeat,
        [
            lambda: open_store(store_dir, cache_dir=cache).publish("bench", "many", many),
            lambda: hash_files(many_files, 2),
            lambda: hash_and_write_files(many_files, out, 2),
            lambda: copy_files(many_files, out, 2),
        ],
        reset_push,
    )
    rows = [
        Row(
            "push 500 MiB / 100 files, local",
            push[0],
            push[1],
            "sha256, 2 threads",
            "<= 1.15x",
            push[0] / push[1] <= 1.15,
        ),
        Row(
            "push 500 MiB / 100 files, local",
            push[0],
            push[2],
            "read + sha256 + write, 2 threads",
            "-",
            None,
        ),
        Row(
            "push 500 MiB / 100 files, local",
            push[0],
            push[1] + push[3],
            "sha256 + copy_file_range, 2 threads each, summed",
            "-",
            None,
        ),
    ]
    store = open_store(store_dir, cache_dir=cache)
    version = store.publish("bench", "big", big)

    def reset_pull() -> None:
        remove(cache)
        remove(out)
        settle()

    pull = interleaved(
        repeat,
        [
            lambda: store.materialize(version, out),
            lambda: hash_files([big / "big.bin"], 1),
            lambda: copy_alone(big / "big.bin", out),
        ],
        reset_pull,
    )
    label = "pull 1 GiB / 1 file, local (no cache copy)"
    rows.append(Row(label, pull[0], pull[1], "sha256 alone", "<= 1.1x", pull[0] / pull[1] <= 1.1))
    rows.append(Row(label, pull[0], pull[2], "copy_file_range alone", "-", None))
    for path in (store_dir, cache, out):
        remove(path)
    return rows


def s3_rows(scratch: Path, data: Path, repeat: int, dvc: str | None) -> list[Row]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[name] = value
    server, endpoint = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        return _s3_rows(scratch, data, repeat, dvc, bucket=bucket, endpoint=endpoint)
    finally:
        server.terminate()
        server.wait()


def _s3_rows(
    scratch: Path, data: Path, repeat: int, dvc: str | None, *, bucket: str, endpoint: str
) -> list[Row]:
    count = sum(1 for _ in data.rglob("*.bin"))
    label = f"{count:,} x 1 KiB, loopback S3"
    cache, out = scratch / "s-cache", scratch / "s-out"
    prefix = {"ours": "", "dvc": ""}
    dvc_repo = (
        Dvc(dvc, scratch / "s-dvc", data, f"s3://{bucket}/dvc", dict(os.environ)) if dvc else None
    )

    def reset_push() -> None:
        # A new prefix per try: each push starts from an empty store, and no deletes.
        prefix["ours"] = f"ours-{uuid.uuid4().hex[:8]}"
        if dvc_repo:
            dvc_repo.remote = f"s3://{bucket}/dvc-{uuid.uuid4().hex[:8]}"
            dvc_repo.fresh(endpoint)
            dvc_repo.run("add", data.name)  # hashing untimed for DVC, timed for us
        remove(cache)
        settle()

    contenders: list[Callable[[], object]] = [
        lambda: open_store(f"s3://{bucket}/{prefix['ours']}", cache_dir=cache).publish(
            "bench", "small", data
        )
    ]
    if dvc_repo:
        contenders.append(lambda: dvc_repo.run("push"))
    files = sorted(data.rglob("*.bin"))
    floor_urls = presigned(
        "PUT", bucket, [f"floor-{uuid.uuid4().hex[:8]}/{i}" for i in range(count)]
    )
    contenders.append(lambda: plain_requests("PUT", floor_urls, files))
    rows: list[Row] = []
    if dvc_repo:
        push = interleaved(repeat, contenders, reset_push)
        rows.append(
            Row(
                f"push {label}",
                push[0],
                push[1],
                "dvc push (after an untimed add)",
                "<= 0.8x",
                push[0] / push[1] <= 0.8,
            )
        )
        rows.append(_floor_row(f"push {label}", "ours", push[0], push[2]))
        rows.append(_floor_row(f"push {label}", "dvc", push[1], push[2]))
    # The stores the pulls read, filled untimed under new prefixes.
    store = open_store(f"s3://{bucket}/pull-{uuid.uuid4().hex[:8]}", cache_dir=cache)
    version = store.publish("bench", "small", data)
    if dvc_repo:
        dvc_repo.remote = f"s3://{bucket}/dvc-pull-{uuid.uuid4().hex[:8]}"
        dvc_repo.fresh(endpoint)
        dvc_repo.add_and_push()

    blob_urls = _blob_urls(store, bucket, count)

    def reset_pull() -> None:
        remove(cache)
        remove(out)
        if dvc_repo:
            dvc_repo.forget_local()
        settle()

    if dvc_repo:
        pull = interleaved(
            repeat,
            [
                lambda: open_store(store.describe(), cache_dir=cache).materialize(version, out),
                lambda: dvc_repo.run("pull"),
                lambda: plain_requests("GET", blob_urls),
            ],
            reset_pull,
        )
        rows.append(
            Row(
                f"cold pull {label}",
                pull[0],
                pull[1],
                "dvc pull",
                "<= 0.8x",
                pull[0] / pull[1] <= 0.8,
            )
        )
        rows.append(_floor_row(f"cold pull {label}", "ours", pull[0], pull[2]))
        rows.append(_floor_row(f"cold pull {label}", "dvc", pull[1], pull[2]))
    for path in (cache, out, scratch / "s-dvc"):
        remove(path)
    return rows


def presigned(method: str, bucket: str, keys: list[str]) -> list[str]:
    """Return a presigned URL per key (made untimed: the floor pays no signing)."""
    client = boto3.client("s3")
    operation = {"GET": "get_object", "PUT": "put_object"}[method]
    return [
        client.generate_presigned_url(operation, Params={"Bucket": bucket, "Key": key})
        for key in keys
    ]


def plain_requests(method: str, urls: list[str], bodies: list[Path] | None = None) -> None:
    """The server's floor: presigned requests, one per URL, 8 at a time, nothing checked
    but the status, nothing written (a PUT reads its body from the file)."""
    pool = urllib3.PoolManager(maxsize=8)

    def one(index: int) -> None:
        body = bodies[index].read_bytes() if bodies else None
        answer = pool.request(method, urls[index], body=body, retries=False)
        if answer.status != 200:
            raise RuntimeError(f"{method} {urls[index]}: HTTP {answer.status}")

    with ThreadPoolExecutor(8) as threads:
        list(threads.map(one, range(len(urls))))


def _floor_row(what: str, whose: str, seconds: float, floor: float) -> Row:
    against = f"{what} ({whose} against the floor)"
    return Row(against, seconds, floor, "presigned requests, 8 threads", "-", None)


def _blob_urls(store: Store, bucket: str, count: int) -> list[str]:
    """Return the URLs of the store's ``count`` blobs of 1 KiB (what a pull GETs)."""
    listed = boto3.client("s3").get_paginator("list_objects_v2")
    prefix = store.describe().split(f"s3://{bucket}/", 1)[1]
    keys = [
        item["Key"]
        for page in listed.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if item["Size"] == 1024
    ]
    if len(keys) != count:
        raise RuntimeError(f"listed {len(keys)} blobs of 1 KiB, expected {count}")
    return presigned("GET", bucket, keys)


def startup_rows(repeat: int, dvc: str | None) -> list[Row]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "aeromancy --version": [str(AEROMANCY), "--version"],
        "aeromancy --help": [str(AEROMANCY), "--help"],
    }
    if dvc:
        commands["dvc --version"] = [dvc, "--version"]
    for command in commands.values():
        sh(*command, env=env)  # writes the bytecode caches
    found = dict(
        zip(
            commands,
            interleaved(
                repeat * 5,
                [functools.partial(sh, *c, env=env) for c in commands.values()],
                lambda: None,
            ),
            strict=True,
        )
    )
    rows = []
    for name in ("aeromancy --version", "aeromancy --help"):
        rows.append(
            Row(
                name,
                found[name],
                found["python -c pass"],
                "python -c pass",
                "< 0.1 s",
                found[name] < 0.1,
            )
        )
        if dvc:
            rows.append(Row(name, found[name], found["dvc --version"], "dvc --version", "-", None))
    return rows


def render(rows: list[Row]) -> None:
    header = f"| {'figure':<62} | ours s | contender | contender s | ratio | target | met |"
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for row in rows:
        met = "-" if row.met is None else ("yes" if row.met else "NO")
        print(
            f"| {row.what:<62} | {row.ours:.3f} | {row.other_name} | {row.other:.3f} | "
            f"{row.ratio:.2f}x | {row.target} | {met} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small-files", type=int, default=20_000)
    parser.add_argument("--s3-files", type=int, default=20_000)
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--only-s3", action="store_true", help="run the S3 rows alone")
    parser.add_argument(
        "--scratch-parent",
        type=Path,
        default=Path("/tmp"),
        help="where data, stores and copies go (/dev/shm leaves the disk out)",
    )
    args = parser.parse_args()
    dvc = shutil.which("dvc")
    scratch = Path(tempfile.mkdtemp(prefix="aeromancy-scale-", dir=args.scratch_parent))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + f", in {args.scratch_parent}"
    load = os.getloadavg()[0]
    rows: list[Row] = []

    def add(found: list[Row]) -> None:
        render(found)  # as each group is done: a long run shows its figures as it goes
        rows.extend(found)

    try:
        if args.only_s3:
            s3_data = make_small_files(scratch / "s3data", args.s3_files)
            add(s3_rows(scratch, s3_data, args.repeat, dvc))
        else:
            _all_rows(args, scratch, dvc, add)
    finally:
        remove(scratch)
    finished = time.strftime("%H:%M UTC", time.gmtime())
    print(
        f"\nbench_scale.py --repeat {args.repeat}: started {started}, load average {load:.1f}; "
        f"finished {finished}, load average {os.getloadavg()[0]:.1f}"
    )
    render(rows)


def _all_rows(
    args: argparse.Namespace, scratch: Path, dvc: str | None, add: Callable[[list[Row]], None]
) -> None:
    add(startup_rows(args.repeat, dvc))
    small = make_small_files(scratch / "data", args.small_files)
    add(local_small_rows(scratch, small, args.repeat, dvc))
    if not args.skip_big:
        many = make_many_files(scratch / "data")
        add(unchanged_rows(scratch, many, args.repeat, dvc))
        add(big_rows(scratch, many, make_big_file(scratch / "data"), args.repeat))
    if not args.skip_s3:
        s3_data = (
            small
            if args.s3_files == args.small_files
            else make_small_files(scratch / "s3data", args.s3_files)
        )
        add(s3_rows(scratch, s3_data, args.repeat, dvc))


if __name__ == "__main__":
    main()
