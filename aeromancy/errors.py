"""Aeromancy's one exception hierarchy.

Every error a user can meet carries the process exit code from DESIGN.md and a
hint that says how to fix it::

    AeromancyError (exit 1)
    ├── UsageError (exit 2)            refused before anything ran
    │   ├── InvalidName                  bad artifact, task or path name
    │   ├── NotFound                     unknown task, artifact or version
    │   ├── DirtyTree                    tracked run from a dirty git tree
    │   ├── LockfileError                pdm.lock missing or stale
    │   └── GraphError                   cycle, duplicate producer, missing input
    ├── TaskFailed (exit 1)            a task's own code raised
    └── InfrastructureError (exit 3)   the store, Docker or W&B failed us
        ├── StoreUnavailable             store unreachable after retries
        ├── StoreDamaged                 a manifest or blob that contradicts itself
        └── ImageBuildError              the Docker image could not be built

Third-party errors (botocore, docker, git, wandb) are translated where they are
called, with ``raise ... from exc`` so the cause stays visible under ``--debug``.
"""

from __future__ import annotations


class AeromancyError(Exception):
    """Base of all Aeromancy errors. ``str(err)`` is the one line shown to users."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(AeromancyError):
    """Refused before anything ran: the request itself is wrong."""

    exit_code = 2


class InvalidName(UsageError):
    """An artifact, task or file name that breaks the naming rules."""


class NotFound(UsageError):
    """An unknown task, artifact, version or run."""


class DirtyTree(UsageError):
    """A tracked run was asked for from a git tree with uncommitted changes."""


class LockfileError(UsageError):
    """pdm.lock is missing or does not match pyproject.toml."""


class GraphError(UsageError):
    """The task graph cannot be planned: cycle, duplicate producer, missing input."""


class TaskFailed(AeromancyError):
    """A task's own code raised; other independent tasks still ran."""

    exit_code = 1


class InfrastructureError(AeromancyError):
    """Aeromancy could not do its job: store, Docker engine or image build failed."""

    exit_code = 3


class StoreUnavailable(InfrastructureError):
    """The artifact store could not be reached after retries."""


class StoreDamaged(InfrastructureError):
    """The store holds a manifest or blob that is malformed, inconsistent or missing."""


class ImageBuildError(InfrastructureError):
    """The Docker image could not be built."""
