"""Fixtures of the cluster tests: the launcher suite's base image and project helpers and
the tracking suite's offline W&B, loaded from their files (the suites are not packages)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


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
