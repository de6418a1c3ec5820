"""Fixtures of the cluster tests: the launcher suite's base image and project helpers and
the tracking suite's offline W&B, loaded from their files (the suites are not packages)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aeromancy.planning import build_plan, load_graph
from aeromancy.store import Store, open_store


def _fixtures(suite: str) -> ModuleType:
    path = Path(__file__).parents[1] / suite / "conftest.py"
    spec = importlib.util.spec_from_file_location(f"{suite}_fixtures_for_cluster", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


launcher = _fixtures("launcher")
base_image = launcher.base_image
wandb_env = _fixtures("tracking").wandb_env


DemoProject = Callable[[str], tuple[Path, str, Store, Any]]


@pytest.fixture
def demo_project(tmp_path: Path) -> DemoProject:
    """Return a maker of project ``demo`` (``pipeline.py`` holding the given text) and a
    directory store under ``tmp_path``: it returns the root, the store's URL, the store
    and the dev plan."""

    def make(pipeline: str) -> tuple[Path, str, Store, Any]:
        root = tmp_path / "demo"
        root.mkdir()
        (root / "pipeline.py").write_text(pipeline)
        store_url = str(tmp_path / "store")
        store = open_store(store_url)
        plan = build_plan(load_graph("pipeline.py", root, "demo"), store, namespace="dev")
        return root, store_url, store, plan

    return make


DaskWorker = Callable[..., AbstractContextManager[subprocess.Popen[bytes]]]


@contextmanager
def _dask_worker(
    address: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a real ``dask worker`` process of this venv (no nanny) for the block, then stop
    it: SIGTERM, and SIGKILL if its graceful close hangs (once, on a loaded CI machine,
    it took over 30 s after the test had passed)."""
    argv = [str(Path(sys.executable).with_name("dask")), "worker", address, "--no-nanny", *args]
    worker = subprocess.Popen(
        argv, env=env or dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=30)


@pytest.fixture(scope="session")
def dask_worker() -> DaskWorker:
    """Return :func:`_dask_worker`: ``with dask_worker(address, *args, env=...) as proc``."""
    return _dask_worker
