"""Fixtures for the tracking tests: an isolated W&B environment and a reader of offline W&B
runs (the real ``mlflow server`` on loopback, ``mlflow_server``, is in tests/conftest.py).

The wandb SDK (0.31) has no public reader for the ``run-<id>.wandb`` transaction log of
an offline run. The format is the LevelDB log format with a 7-byte W&B header:
``:W&B`` + magic 0xBEE1 + version 0, then 32 KiB blocks of records, each
``crc32 (u32 LE) | length (u16 LE) | type (u8)`` + payload, where type FULL=1,
FIRST=2, MIDDLE=3, LAST=4 stitches payloads into one serialized
``wandb_internal_pb2.Record``. :func:`read_offline_run` decodes that, so tests see
exactly what ``wandb sync`` would upload.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HEADER = struct.Struct("<4sHB")
RECORD_HEADER = struct.Struct("<IHB")
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def iter_records(path: Path) -> Iterator[Any]:
    """Yield every protobuf Record of a ``.wandb`` file, in write order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, magic, version = HEADER.unpack_from(data, 0)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), f"not a .wandb file: {path}"
    pos, pending = HEADER.size, b""
    while pos + RECORD_HEADER.size <= len(data):
        room = BLOCK - pos % BLOCK
        if room < RECORD_HEADER.size:  # block trailer padding
            pos += room
            continue
        _crc, length, kind = RECORD_HEADER.unpack_from(data, pos)
        if kind == 0:  # zero fill at the end of a block or of the file
            pos += room
            continue
        start = pos + RECORD_HEADER.size
        pending += data[start : start + length]
        pos = start + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _nested_update(target: dict[str, Any], item: Any) -> None:
    keys = list(item.nested_key) or [item.key]
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = json.loads(item.value_json)


@dataclass
class OfflineRun:
    """What one offline W&B run recorded, decoded from its ``.wandb`` file."""

    directory: Path
    run_id: str = ""
    entity: str = ""
    project: str = ""
    job_type: str = ""
    group: str = ""
    notes: str = ""
    display_name: str = ""
    tags: list[str] = field(default_factory=list)
    git: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    saved_files: list[str] = field(default_factory=list)
    exit_code: int | None = None

    @property
    def user_config(self) -> dict[str, Any]:
        """Return the config without W&B's internal ``_wandb`` key."""
        return {k: v for k, v in self.config.items() if k != "_wandb"}


def read_offline_run(directory: Path) -> OfflineRun:
    """Return what the offline run in ``directory`` (``offline-run-*``) recorded."""
    (log,) = directory.glob("run-*.wandb")
    run = OfflineRun(directory)
    for record in iter_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            _read_run(run, record.run)
        elif kind == "config":
            for item in record.config.update:
                _nested_update(run.config, item)
        elif kind == "summary":
            for item in record.summary.update:
                _nested_update(run.summary, item)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _nested_update(row, item)
            run.history.append(row)
        elif kind == "artifact":
            run.artifacts.append(_read_artifact(record.artifact))
        elif kind == "files":
            run.saved_files += [f.path for f in record.files.files]
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def _read_run(run: OfflineRun, record: Any) -> None:
    run.run_id, run.entity, run.project = record.run_id, record.entity, record.project
    run.job_type, run.group, run.notes = record.job_type, record.run_group, record.notes
    run.display_name, run.tags = record.display_name, list(record.tags)
    run.git = {"commit": record.git.commit, "remote_url": record.git.remote_url}
    for item in record.config.update:
        _nested_update(run.config, item)


def _read_artifact(record: Any) -> dict[str, Any]:
    return {
        "name": record.name,
        "type": record.type,
        "aliases": list(record.aliases),
        "metadata": json.loads(record.metadata or "{}"),
        "entries": {
            entry.path: {"ref": entry.ref, "digest": entry.digest, "size": entry.size}
            for entry in record.manifest.contents
        },
    }


def offline_runs(runs_dir: Path) -> list[OfflineRun]:
    """Return every offline run under a W&B runs directory, oldest first.

    ``run.finish()`` returns before the wandb-core service has written everything to
    the ``.wandb`` file; ``wandb.teardown()`` waits for it, as process exit does.
    """
    import wandb

    wandb.teardown()
    return [read_offline_run(d) for d in sorted(runs_dir.glob("offline-run-*"))]


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Isolate W&B in a temp dir: offline, no credentials, no network. Yields WANDB_DIR.

    The SDK reads its environment once per process, when its singleton is set up;
    tearing it down around each test makes every test see its own environment.
    """
    import wandb

    wandb.teardown()
    for name in ("WANDB_API_KEY", "WANDB_ENTITY", "WANDB_BASE_URL", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    wandb_dir = tmp_path / "wandb-home"
    wandb_dir.mkdir()
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    yield wandb_dir
    wandb.teardown()


# Processes started with this environment share one bytecode cache outside the tree (this
# VM sets PYTHONDONTWRITEBYTECODE; importing mlflow uncached takes minutes under load).
BYTECODE_CACHE_ENV = {"PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "aeromancy-pycache")}


@pytest.fixture
def bytecode_cached_env() -> dict[str, str]:
    """Return os.environ with Python bytecode cached in the shared cache (for subprocesses)."""
    env = {**os.environ, **BYTECODE_CACHE_ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@pytest.fixture
def read_runs() -> Any:
    """Return :func:`offline_runs`, so test modules need not import this conftest."""
    return offline_runs
