"""Offline W&B runs made on a worker, brought home to the project's ``wandb/``.

A task run on a worker opens its W&B run there. Online, the worker syncs it itself
(``aeromancy cluster up`` hands the workers ``WANDB_API_KEY`` as it does to tracked
runs: in the containers' environment, never in an image, a command line or a log).
Offline, the run's directory would stay in the worker's container, where ``aeromancy
sync`` never sees it. So each task run on a worker writes W&B files into a directory
of its own (``WANDB_DIR``); afterwards an offline run directory is packed into one
blob of the store (only its reference travels back through Dask), and the run, on
the host, unpacks it into the project's W&B runs directory, next to the offline runs
of local task runs. The worker's copy is removed either way. The blob is referenced by
nothing else, so ``aeromancy gc`` removes it later.
"""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aeromancy.store.paths import SourceFile
from aeromancy.tracking.wandb_setup import RUNS_DIRNAME

if TYPE_CHECKING:
    from aeromancy.store import Store

OFFLINE_PREFIX = "offline-run-"


@dataclass(frozen=True)
class ShippedRun:
    """An offline W&B run directory packed into a blob of the store."""

    name: str  # offline-run-<time>-<id>
    sha256: str
    size: int


@contextlib.contextmanager
def worker_wandb_dir() -> Iterator[Path]:
    """Yield a fresh ``WANDB_DIR`` for one task run on a worker; removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="aeromancy-worker-wandb-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def ship_offline_runs(store: Store, wandb_dir: Path) -> list[ShippedRun]:
    """Pack each offline run directory under ``wandb_dir`` into a blob; return them."""
    shipped = []
    runs = wandb_dir / RUNS_DIRNAME
    for run in sorted(runs.glob(f"{OFFLINE_PREFIX}*")) if runs.is_dir() else ():
        if run.is_dir() and not run.is_symlink():
            shipped.append(_ship(store, run, wandb_dir))
    return shipped


def _ship(store: Store, run: Path, scratch: Path) -> ShippedRun:
    packed = scratch / f"{run.name}.tar"
    with tarfile.open(packed, "w") as archive:
        archive.add(run, arcname=run.name, filter=_no_links)
    source = SourceFile(packed.name, packed, packed.stat().st_size)
    [entry] = store.blobs.put_files([source], lambda _: None)
    return ShippedRun(run.name, entry.sha256, entry.size)


def _no_links(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Leave links out (W&B links its debug logs to files outside the run directory)."""
    return None if info.issym() or info.islnk() else info


def unpack_offline_run(store: Store, shipped: ShippedRun, runs_dir: Path) -> Path:
    """Unpack ``shipped`` into ``runs_dir`` (the project's ``wandb/``); return its path.

    A run directory already there (an earlier attempt of the same task run) is kept.
    """
    target = runs_dir / shipped.name
    if target.exists():
        return target
    runs_dir.mkdir(parents=True, exist_ok=True)
    blob = store.cache.fetch(shipped.sha256, None, shipped.size)
    staging = Path(tempfile.mkdtemp(prefix=".aeromancy-unpack-", dir=runs_dir))
    try:
        with tarfile.open(blob) as archive:
            archive.extractall(staging, filter="data")
        (staging / shipped.name).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
