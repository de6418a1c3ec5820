"""What happened to each task of a run: the executor's answer to the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from aeromancy.errors import AeromancyError
from aeromancy.store.manifest import ArtifactVersion


class Outcome(str, Enum):
    """What happened to one task of the plan."""

    RAN = "ran"
    SKIPPED = "skipped"
    FAILED = "failed"
    NOT_RUN = "not run"


@dataclass
class TaskResult:
    """The outcome of one task; ``outputs`` are the versions it made or reused."""

    task: str
    outcome: Outcome
    run_id: str | None = None
    outputs: list[ArtifactVersion] = field(default_factory=list)
    error: str | None = None
    blocked_by: tuple[str, ...] = ()
    infrastructure: AeromancyError | None = None
    reason: str = ""  # why it ran (see aeromancy/staleness.py); empty otherwise
