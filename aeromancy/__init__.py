"""Aeromancy: reproducible ML pipelines with versioned artifacts and tracked runs.

The public API is what ``__all__`` lists (pinned by tests/executor/test_public_api.py):
the ``task`` decorator, the ``Context`` handed to tasks, and the error classes.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aeromancy")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0+unknown"

from aeromancy.context import Context
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
from aeromancy.tasks import task

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
    "task",
]
