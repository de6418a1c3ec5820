"""Benchmark ``aeromancy results`` over many run records, local and on loopback S3.

Writes N run records (default 10,000) shaped like real ones (this machine's own
environment capture, a config, three logged metrics, one output) in 100 invocations
into a local store and into a moto S3 server on loopback, then times, as whole
``aeromancy`` processes (bytecode compiled once beforehand, as an installed package
has it):

- cold (empty local cache) ``results --all --format csv``: on records without packs
  (a store written before packs: lists every key, one read per record; that reader
  then stores one sealed pack); on one pack per invocation without a sealed pack (the
  first reader after an upgrade: lists every key once, then seals); on the sealed pack
  that reader stored (a new machine: no record key before the floor is listed); on
  the first writer's empty sealed pack plus one pack per invocation (a store written
  by this version: no full listing; that reader merges the 101 packs into one);
- warm (cache filled) ``results --all --format csv``, ``results --all`` (the terminal
  layout) and ``results`` (the default: the newest invocation).

For S3 each cold row names its requests, counted by one in-process read of the same
state just before (its writes refused, so the timed run finds the store unchanged;
the timed run also stores its pack: one PutObject, and a DeleteObject per pack it
replaces). "S3 LIST" is the bare listing of the runs folder with boto3: what any reader
that lists every record pays first. Targets: warm < 1 s, cold from S3 < 5 s.

Sweeps: planning a 1,000-variant sweep of a two-task graph in-process (target < 1 s),
and the per-variant cost of ``run --dev --sweep`` over V variants of a trivial task
side by side with V separate ``run --dev --set`` processes (the ``-j 1`` loop).
Usage: .venv/bin/python bench/bench_experiments.py [--records N] [--repeat N] [--variants V]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3

from aeromancy.experiments.record_cache import all_row_sources
from aeromancy.store import Store, open_store
from aeromancy.store.run_packs import RunPacker, packs_prefix, write_pack
from aeromancy.tracking.environment import capture_environment

AEROMANCY = Path(sys.executable).with_name("aeromancy")
PROJECT = "bench"
INVOCATIONS = 100


def record(index: int, environment: dict[str, Any]) -> dict[str, Any]:
    """Return a run record like the executor writes, for run number ``index``."""
    group = f"20261201-{index // (10_000 // INVOCATIONS):06d}-inv"
    started = f"2026-12-01T10:{(index // 60) % 60:02d}:{index % 60:02d}.{index:06d}+00:00"
    return {
        "format": 1,
        "run_id": f"20261201-{index:06d}-{index:08x}",
        "project": PROJECT,
        "task": f"task{index % 5}",
        "group": group,
        "namespace": "tracked",
        "status": "succeeded",
        "error": None,
        "config": {"lr": 0.001 * (index % 7), "depth": index % 4, "opt": {"name": "adam"}},
        "config_sources": {"lr": "--set", "depth": "default", "opt.name": "default"},
        "inputs": [],
        "outputs": [
            {"project": PROJECT, "name": "m", "label": f"v{index}", "digest": "sha256:" + "0" * 64}
        ],
        "fingerprint": f"sha256:{index:064x}",
        "code": {"digest": "sha256:" + "1" * 64, "files": ["pipeline.py"]},
        "started": started,
        "ended": started,
        "environment": environment,
        "metrics": {"loss": 1 / (index + 1), "accuracy": 0.5, "step": index},
        "metric_summary": {
            "loss": {"last": 1 / (index + 1), "min": 0.0, "max": 1.0, "count": 10},
            "accuracy": {"last": 0.5, "min": 0.1, "max": 0.5, "count": 10},
        },
    }


def fill(store: Store, count: int) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """Store ``count`` records (no packs); return each one's stored bytes and record."""
    environment = capture_environment()

    def put(index: int) -> tuple[str, bytes, dict[str, Any]]:
        data = record(index, environment)
        return data["run_id"], store.put_run_record(PROJECT, data["run_id"], data), data

    with ThreadPoolExecutor(16) as pool:
        return {run_id: (stored, data) for run_id, stored, data in pool.map(put, range(count))}


def remove_packs(store: Store) -> None:
    for key in store.backend.list_prefix(packs_prefix("tracked", PROJECT)):
        store.backend.delete(key)


def pack_by_invocation(
    store: Store, written: dict[str, tuple[bytes, dict[str, Any]]], keep: bool = False
) -> None:
    """Replace every pack (but with ``keep``) by one per invocation, as ``aeromancy run``
    leaves them."""
    if not keep:
        remove_packs(store)
    packers: dict[str, RunPacker] = {}
    for run_id, (stored, data) in written.items():
        packer = packers.setdefault(data["group"], RunPacker(store.backend, "tracked", PROJECT))
        packer.add(run_id, stored, data)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(RunPacker.close, packers.values()))


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
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
    raise RuntimeError("moto server did not start")


def _cpu() -> float:
    """Return the CPU seconds of this process and its finished children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def best(
    repeat: int, run: Callable[[], None], reset: Callable[[], None] = lambda: None
) -> tuple[float, float]:
    """Return the best wall time of ``repeat`` runs and the CPU seconds of that run."""
    tries = []
    for _ in range(repeat):
        reset()
        started, cpu = time.perf_counter(), _cpu()
        run()
        tries.append((time.perf_counter() - started, _cpu() - cpu))
    return min(tries)


def command(store_url: str, env: dict[str, str], *args: str) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(
            [str(AEROMANCY), "--store", store_url, *args],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=env["BENCH_PROJECT"],
        )

    return run


def s3_list(bucket: str) -> Callable[[], None]:
    """List the runs folder with boto3 alone: what any S3 reader pays first."""

    def run() -> None:
        pages = boto3.client("s3").get_paginator("list_objects_v2")
        for _ in pages.paginate(Bucket=bucket, Prefix="store/runs/"):
            pass

    return run


Row = tuple[str, str, tuple[float, float]]


def seal_as_first_writer(store: Store) -> None:
    """Store the empty sealed pack the first writer of a project stores."""
    write_pack(store.backend, "tracked", PROJECT, {}, sealed="20261130-000000")


class ReadOnly(OSError):
    """Raised for a write in the counted pass, which must leave the store as it is (the
    reader takes it as a store that refuses writes, and reads on)."""


def s3_requests(store_url: str, cache: Path) -> Counter[str]:
    """Return the S3 requests of one cold read in this process (writes refused, so the
    store stays as the timed run then finds it)."""
    store = open_store(store_url)
    client = store.backend.client  # type: ignore[attr-defined]
    counts: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        counts[operation] += 1
        if operation in ("PutObject", "DeleteObject", "CopyObject"):
            raise ReadOnly(operation)

    client.meta.events.register("before-call.s3", count)
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["AEROMANCY_CACHE"] = str(cache)
    try:
        all_row_sources(store, PROJECT, lambda _message: None)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return counts


def bench_store(
    label: str,
    store_url: str,
    env: dict[str, str],
    repeat: int,
    written: dict[str, tuple[bytes, dict[str, Any]]],
) -> list[Row]:
    cache = Path(env["AEROMANCY_CACHE"])
    store = open_store(store_url)

    def clear() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    csv_all = command(store_url, env, "results", "--all", "--format", "csv")
    rows: list[Row] = []

    def cold(what: str, times: int) -> None:
        packs = len(store.backend.list_prefix(packs_prefix("tracked", PROJECT)))
        counts = s3_requests(store_url, cache.with_name("counted")) if store.backend.remote else {}
        shown = ", ".join(f"{n} {op}" for op, n in sorted(counts.items()))
        rows.append(
            (
                label,
                f"cold csv, {what} [{packs} packs{': ' if shown else ''}{shown}]",
                best(times, csv_all, clear),
            )
        )

    remove_packs(store)
    cold("no packs (before packs: lists all, reads each)", 1)
    pack_by_invocation(store, written)
    cold("invocation packs, no seal (lists all once)", 1)
    cold("the sealed pack that reader stored", repeat)
    remove_packs(store)
    seal_as_first_writer(store)
    pack_by_invocation(store, written, keep=True)
    cold("first writer's seal + invocation packs", 1)
    cold("the sealed pack that reader stored", repeat)
    rows += [
        (label, "warm csv: results --all --format csv", best(repeat, csv_all)),
        (
            label,
            "warm table: results --all",
            best(repeat, command(store_url, env, "results", "--all")),
        ),
        (
            label,
            "warm default: results (newest invocation)",
            best(repeat, command(store_url, env, "results")),
        ),
    ]
    return rows


SWEPT_PIPELINE = """\
from aeromancy import Context, task


@task(outputs=["data"])
def prepare(ctx: Context) -> None:
    path = ctx.workdir / "data.txt"
    path.write_text("data")
    ctx.save("data", path)


@task(inputs=["data"], outputs=["model"])
def train(ctx: Context, lr: float = 0.1) -> None:
    path = ctx.workdir / "model.txt"
    path.write_text(str(lr))
    ctx.save("model", path)
"""


def sweep_project(root: Path) -> Path:
    """Write and commit a two-task project; return its directory."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.aeromancy]\nproject = "swept"\ntasks = "pipeline.py"\n'
    )
    (root / "pipeline.py").write_text(SWEPT_PIPELINE)
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "bench"], check=True)
    return root


def bench_sweep_planning(root: Path, variants: int) -> tuple[float, float]:
    """Return wall and CPU seconds of planning a ``variants``-point sweep, in-process."""
    from aeromancy.experiments.sweeps import check_request, parse_axes, plan_sweep
    from aeromancy.planning import build_plan, load_graph

    store = open_store(root.parent / "plan-store")
    graph = load_graph("pipeline.py", root, "swept")
    values = ",".join(f"{i / variants:.6f}" for i in range(variants))
    started, cpu = time.perf_counter(), time.process_time()
    axes = parse_axes([f"train.lr={values}"])
    check_request(axes, None, (), False)
    base = build_plan(graph, store, namespace="dev")
    sweep = plan_sweep(base, axes, None, (), ())
    assert len(sweep.variants) == variants
    return time.perf_counter() - started, time.process_time() - cpu


def bench_variants(root: Path, variants: int, env: dict[str, str]) -> tuple[float, float]:
    """Return seconds per variant: one ``--sweep`` process, and a loop of ``--set`` processes."""
    base = [str(AEROMANCY), "run", "--dev", "--tracker", "none"]
    values = [f"{0.5 + i / 1000:.4f}" for i in range(variants)]
    swept_env = {**env, "AEROMANCY_STORE": str(root.parent / "sweep-store")}
    loop_env = {**env, "AEROMANCY_STORE": str(root.parent / "loop-store")}

    def run(args: list[str], env: dict[str, str]) -> None:
        subprocess.run(args, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)

    started = time.perf_counter()
    run([*base, "--sweep", "train.lr=" + ",".join(values)], swept_env)
    sweep = (time.perf_counter() - started) / variants
    started = time.perf_counter()
    for value in values:
        run([*base, "--set", f"train.lr={value}"], loop_env)
    loop = (time.perf_counter() - started) / variants
    return sweep, loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", type=int, default=30)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="aeromancy-bench-exp-"))
    server, endpoint = start_moto()
    try:
        project = scratch / "project"
        project.mkdir()
        (project / "pyproject.toml").write_text(f'[tool.aeromancy]\nproject = "{PROJECT}"\n')
        env = {
            **os.environ,
            "AEROMANCY_CACHE": str(scratch / "cache"),
            "BENCH_PROJECT": str(project),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            # Bytecode written once and reused, as an installed package has it (this
            # machine's default, PYTHONDONTWRITEBYTECODE, recompiles on every start).
            "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "aeromancy-bench-pycache"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        local_url = str(scratch / "store")
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        s3_url = f"s3://{bucket}/store"
        started = time.perf_counter()
        local_written = fill(open_store(local_url), args.records)
        s3_written = fill(open_store(s3_url), args.records)
        print(
            f"wrote {args.records} records to each store in {time.perf_counter() - started:.1f} s"
        )
        command(local_url, env, "--help")()  # compiles the bytecode
        rows = bench_store("local", local_url, env, args.repeat, local_written)
        rows += bench_store("s3", s3_url, env, args.repeat, s3_written)
        rows.append(
            ("s3", "S3 LIST of the runs folder (boto3 only)", best(args.repeat, s3_list(bucket)))
        )
        swept = sweep_project(scratch / "swept")
        planning = bench_sweep_planning(swept, 1000)
        per_variant = bench_variants(swept, args.variants, env)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n`aeromancy results` over {args.records} run records (best of {args.repeat})")
    print(f"{'store':<6} {'what':<100} {'wall s':>7} {'cpu s':>7} {'vs no packs':>12}")
    baseline = {label: t[0] for label, what, t in rows if "no packs" in what}
    for label, what, (wall, cpu) in rows:
        ratio = wall / baseline[label]
        print(f"{label:<6} {what:<100} {wall:>7.2f} {cpu:>7.2f} {ratio:>11.3f}x")
    print(f"\nplanning a 1,000-variant sweep: {planning[0]:.3f} s wall, {planning[1]:.3f} s CPU")
    sweep, loop = per_variant
    print(
        f"per variant over {args.variants}: --sweep {sweep:.3f} s, "
        f"loop of run --set {loop:.3f} s, ratio {sweep / loop:.2f}x"
    )


if __name__ == "__main__":
    main()
