"""The public API is exactly what __all__ lists; changing it must be deliberate."""

from __future__ import annotations

import aeromancy

EXPECTED = {
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
}


def test_all_is_pinned() -> None:
    assert set(aeromancy.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in aeromancy.__all__:
        assert getattr(aeromancy, name) is not None


def test_errors_carry_exit_codes() -> None:
    assert aeromancy.UsageError("x").exit_code == 2
    assert aeromancy.GraphError("x").exit_code == 2
    assert aeromancy.TaskFailed("x").exit_code == 1
    assert aeromancy.StoreUnavailable("x").exit_code == 3
