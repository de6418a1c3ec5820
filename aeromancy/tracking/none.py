"""The tracker that records nothing beyond Aeromancy's own run records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aeromancy.store.manifest import ArtifactVersion
from aeromancy.tracking.base import TaskRunInfo


class NoneRun:
    """An open run that forwards nothing; Aeromancy's record is the only trace."""

    @property
    def path(self) -> str | None:
        return None

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        pass

    def log_outputs(self, outputs: Sequence[ArtifactVersion], blob_uris: Mapping[str, str]) -> None:
        pass

    def attach_log(self, path: Path) -> None:
        pass

    def finish(self, record: Mapping[str, Any], succeeded: bool) -> None:
        pass


class NoneTracker:
    """``--tracker none``: task runs are recorded only in the store's run records."""

    def start(self, info: TaskRunInfo) -> NoneRun:
        return NoneRun()

    def close(self) -> None:
        pass
