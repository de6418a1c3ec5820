"""Fixtures of the cluster tests: the launcher suite's base image and project helpers and
the tracking suite's offline W&B, loaded from their files (the suites are not packages)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
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
