"""Fixtures of the cluster tests: the launcher suite's base image and project helpers,
loaded from its file (the suites are not packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def _launcher_fixtures() -> ModuleType:
    path = Path(__file__).parents[1] / "launcher" / "conftest.py"
    spec = importlib.util.spec_from_file_location("launcher_fixtures_for_cluster", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


launcher = _launcher_fixtures()
base_image = launcher.base_image
