"""Benchmark saving and loading environment images through the store, beside docker's own.

Side by side in one run, for an image of about 1 GB (the local test base image plus a
layer of random bytes, built here and labelled ``aeromancy.bench=environments``):

- save into a local store and into an S3 store (moto on loopback) vs ``docker save``
  to a file and ``docker save | gzip``;
- load back from each store vs ``docker load`` of the file;
- a second save, of an image sharing all but a new top layer: the bytes uploaded.

Only the images this script built are removed. Usage:
``.venv/bin/python bench/bench_environments.py [--megabytes 750]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import docker
import docker.errors
from rich.console import Console
from rich.table import Table

from aeromancy.environments.load import load_image
from aeromancy.environments.save import SaveReport, save_image
from aeromancy.store import Store, open_store

LABEL = {"aeromancy.bench": "environments"}
QUIET = Console(file=io.StringIO(), force_terminal=False)


@dataclass
class Row:
    """One measurement: what, seconds, bytes moved, and the baseline it is compared to."""

    what: str
    seconds: float
    moved: str = ""
    baseline: float | None = None

    def ratio(self) -> str:
        return f"{self.seconds / self.baseline:.2f}" if self.baseline else "-"


class Rows(list[Row]):
    """The table so far; each row is printed as it is measured, so a crash keeps them."""

    def add(self, row: Row) -> None:
        self.append(row)
        seconds = f"{row.seconds:.2f}" if row.seconds else "-"
        print(f"measured: {row.what}: {seconds} s, {row.moved}", file=sys.stderr, flush=True)


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def base_image() -> str:
    """Return a local Debian base image: ``AEROMANCY_BENCH_BASE_IMAGE``, else the tests'
    or the launcher benchmark's (an empty one, left by a failed import, is passed over)."""
    if os.environ.get("AEROMANCY_BENCH_BASE_IMAGE"):
        return os.environ["AEROMANCY_BENCH_BASE_IMAGE"]
    client = docker.from_env()
    for image in client.images.list():
        if not image.attrs.get("Size"):
            continue
        for tag in image.tags:
            if tag.startswith(("aeromancy-test-base:", "aeromancy-bench-base:")):
                return str(tag)
    from aeromancy.launcher.debian_base import build_debian_base_image

    build_debian_base_image("aeromancy-bench-base:bookworm")
    return "aeromancy-bench-base:bookworm"


def build(parent: str, megabytes: int) -> str:
    """Build ``parent`` + one layer of ``megabytes`` MB of random bytes; return its id."""
    dockerfile = (
        f"FROM {parent}\nRUN head -c {megabytes}000000 /dev/urandom > /{uuid.uuid4().hex}.bin\n"
    )
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    context.seek(0)
    image, _ = docker.from_env().images.build(
        fileobj=context, custom_context=True, labels=LABEL, rm=True, network_mode="none"
    )
    return str(image.id)


def remove(image_id: str) -> None:
    """Remove an image this script built, and its untagged parents (built here too)."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker.from_env().images.remove(image_id, force=True)


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """Start moto's S3 server on a free loopback port; return it and its endpoint.

    The tests' serial server: moto's threaded one answered 500 here to the
    CompleteMultipartUpload of a 750 MB layer (cause not looked into).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serial = Path(__file__).parents[1] / "tests" / "serial_moto_server.py"
    server = subprocess.Popen(
        [sys.executable, str(serial), str(port)],
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


def docker_save(image_id: str, dest: Path, gzip: bool) -> None:
    with dest.open("wb") as out:
        if not gzip:
            subprocess.run(["docker", "save", image_id], stdout=out, check=True)
            return
        saver = subprocess.Popen(["docker", "save", image_id], stdout=subprocess.PIPE)
        subprocess.run(["gzip", "-c"], stdin=saver.stdout, stdout=out, check=True)
        if saver.wait() != 0:
            raise RuntimeError("docker save failed")


def timed_save(store: Store, image_id: str) -> tuple[float, SaveReport]:
    started = time.perf_counter()
    report = save_image(store, image_id, (), QUIET)
    return time.perf_counter() - started, report


def timed_load(store: Store, image_id: str) -> tuple[float, str]:
    """Return the seconds a load took, and '' or why it failed (the table keeps going)."""
    started = time.perf_counter()
    try:
        load_image(store, image_id, QUIET)
    except Exception as exc:  # a failed contender is a row of the table, not its end
        return time.perf_counter() - started, f"failed: {type(exc).__name__}"
    return time.perf_counter() - started, ""


def mb(count: int) -> str:
    return f"{count / 1e6:.0f} MB"


def run(megabytes: int, scratch: Path) -> list[Row]:
    base = base_image()
    big = build(base, megabytes)
    top = build(big, 20)
    stores: dict[str, Store] = {
        "local store": open_store(scratch / "store", cache_dir=scratch / "cache-local"),
    }
    boto3.client("s3").create_bucket(Bucket="bench")
    stores["S3 store"] = open_store("s3://bench/store", cache_dir=scratch / "cache-s3")
    archive = scratch / "image.tar"
    rows = Rows()
    try:
        size = int(docker.from_env().images.get(big).attrs["Size"])
        plain = timed(lambda: docker_save(big, archive, gzip=False))
        rows.add(Row(f"docker save to a file ({mb(size)} image)", plain, mb(size), plain))
        gzipped = timed(lambda: docker_save(big, scratch / "image.tar.gz", gzip=True))
        rows.add(Row("docker save | gzip to a file", gzipped, mb(size), plain))
        (scratch / "image.tar.gz").unlink()
        for name, store in stores.items():
            seconds, report = timed_save(store, big)
            rows.add(Row(f"save into the {name}", seconds, mb(report.uploaded_bytes), plain))
        for name, store in stores.items():
            seconds, report = timed_save(store, top)
            moved = f"{mb(report.uploaded_bytes)} of {mb(report.read_bytes)} read"
            rows.add(Row(f"second save (new 20 MB top layer), {name}", seconds, moved, plain))
        remove(top)
        remove(big)
        loaded = timed(lambda: subprocess.run(["docker", "load", "-i", str(archive)], check=True,
                                              stdout=subprocess.DEVNULL))  # fmt: skip
        rows.add(Row("docker load of the file", loaded, mb(archive.stat().st_size), loaded))
        for name, store in stores.items():
            remove(big)
            seconds, failure = timed_load(store, big)
            rows.add(Row(f"load from the {name} (empty read cache)", seconds, failure, loaded))
    finally:
        remove(top)
        remove(big)
    rows.add(Row("peak RSS of this process (MB)", 0.0, f"{_peak_rss_mb():.0f}"))
    return rows


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def render(rows: list[Row]) -> None:
    table = Table(title="environment images: store vs docker save/load")
    for header in ("measurement", "seconds", "bytes moved", "vs docker"):
        table.add_column(header, justify="left" if header == "measurement" else "right")
    for row in rows:
        seconds = f"{row.seconds:.2f}" if row.seconds else "-"
        table.add_row(row.what, seconds, row.moved, row.ratio())
    Console().print(table)
    print("\n| measurement | seconds | bytes moved | vs docker |\n|---|---:|---:|---:|")
    for row in rows:
        seconds = f"{row.seconds:.2f}" if row.seconds else "-"
        print(f"| {row.what} | {seconds} | {row.moved} | {row.ratio()} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=750, help="random layer size (MB)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="aeromancy-bench-env-", dir="/tmp"))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AEROMANCY_CACHE": str(scratch / "cache"),
    }.items():
        os.environ[name] = value
    server, endpoint = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        render(run(args.megabytes, scratch))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
