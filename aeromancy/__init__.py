"""Aeromancy: reproducible ML pipelines with versioned artifacts and tracked runs.

The public API is what ``__all__`` lists (pinned by tests/execution/test_public_api.py):
the ``task`` decorator, the ``Context`` handed to tasks, the error classes, and
``results`` (the results table as a pandas DataFrame).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aeromancy._version import __version__
from aeromancy.errors import (
    AeromancyError,
    DirtyTree,
    GraphError,
    ImageBuildError,
    InfrastructureError,
    InvalidName,
    LockfileError,
    NotFound,
    StoreUnavailable,
    TaskFailed,
    UsageError,
)

if TYPE_CHECKING:
    from aeromancy.context import Context
    from aeromancy.experiments.api import results
    from aeromancy.tasks import task

#: Names imported on first use, so that ``aeromancy --help`` loads none of them.
_LAZY = {
    "Context": "aeromancy.context",
    "results": "aeromancy.experiments.api",
    "task": "aeromancy.tasks",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "AeromancyError",
    "Context",
    "DirtyTree",
    "GraphError",
    "ImageBuildError",
    "InfrastructureError",
    "InvalidName",
    "LockfileError",
    "NotFound",
    "StoreUnavailable",
    "TaskFailed",
    "UsageError",
    "__version__",
    "results",
    "task",
]
