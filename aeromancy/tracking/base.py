"""The tracker protocol: what the executor tells a tracker about each task run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aeromancy.identity import RunIdentity
from aeromancy.store.manifest import ArtifactVersion


@dataclass(frozen=True)
class TaskRunInfo:
    """What a tracker needs to open the record of one task run."""

    run_id: str
    project: str
    task: str
    group: str  # identifies the ``aeromancy run`` invocation
    config: Mapping[str, Any]
    tags: tuple[str, ...]
    identity: RunIdentity
    inputs: Sequence[ArtifactVersion]
    # The sweep variant the run belongs to (index, label, point, seed); None outside sweeps.
    variant: Mapping[str, Any] | None = None


class TrackedRun(Protocol):
    """One open task run in a tracker. Methods never raise for tracker failures."""

    @property
    def path(self) -> str | None:
        """Return the tracker's run path (``entity/project/id``), or None when untracked."""

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record metrics for this run."""

    def log_outputs(self, outputs: Sequence[ArtifactVersion], blob_uris: Mapping[str, str]) -> None:
        """Record published outputs; ``blob_uris`` maps a sha256 hex to its store URI."""

    def attach_log(self, path: Path) -> None:
        """Attach the task's captured stdout and stderr (the file at ``path``)."""

    def finish(self, record: Mapping[str, Any], succeeded: bool) -> None:
        """Close the run, attaching the final run record (environment capture included)."""


class Tracker(Protocol):
    """Opens one tracked run per task run."""

    def start(self, info: TaskRunInfo) -> TrackedRun:
        """Return a new open run for ``info``."""

    def close(self) -> None:
        """Close what spans the whole invocation (MLflow's parent run); called once, last."""
