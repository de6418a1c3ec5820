"""A tracker wrapper that turns every tracker failure into one warning.

A task's outputs and run record matter more than its W&B run: whatever a tracker
raises is caught here, reported once per invocation, and the run goes on untracked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aeromancy.store.manifest import ArtifactVersion
from aeromancy.tracking.base import TaskRunInfo, TrackedRun, Tracker
from aeromancy.tracking.none import NoneRun

logger = logging.getLogger("aeromancy.tracking")


class TrackerGuard:
    """Wraps a Tracker so that no call ever raises; the first failure is passed to ``warn``."""

    def __init__(self, tracker: Tracker, warn: Callable[[str], None] | None = None) -> None:
        self.tracker = tracker
        self.warn = warn or logger.warning
        self.failures = 0
        self._lock = threading.Lock()

    def failed(self, what: str, exc: BaseException) -> None:
        """Count a tracker failure; report the first, log the rest at debug level."""
        with self._lock:
            self.failures += 1
            first = self.failures == 1
        logger.debug("tracker failed in %s", what, exc_info=exc)
        if first:
            self.warn(
                f"tracker failed in {what}: {type(exc).__name__}: {exc} "
                "(outputs and run records are kept; later tracker errors are not shown)"
            )

    def start(self, info: TaskRunInfo) -> GuardedRun:
        """Return the tracker's run for ``info``, or an untracked one if starting failed."""
        try:
            run: TrackedRun = self.tracker.start(info)
        except Exception as exc:
            self.failed("start", exc)
            run = NoneRun()
        return GuardedRun(run, self)

    def close(self) -> None:
        """Close the tracker's invocation-wide state; a failure is reported, not raised."""
        try:
            self.tracker.close()
        except Exception as exc:
            self.failed("close", exc)


class GuardedRun:
    """A TrackedRun whose methods report failures to their guard instead of raising."""

    def __init__(self, run: TrackedRun, guard: TrackerGuard) -> None:
        self.run = run
        self.guard = guard

    @property
    def path(self) -> str | None:
        """Return the tracker's run path, or None when untracked or unknown."""
        try:
            return self.run.path
        except Exception as exc:
            self.guard.failed("path", exc)
            return None

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Forward metrics to the tracker."""
        try:
            self.run.log(metrics, step)
        except Exception as exc:
            self.guard.failed("log", exc)

    def log_outputs(self, outputs: Sequence[ArtifactVersion], blob_uris: Mapping[str, str]) -> None:
        """Forward published outputs to the tracker."""
        try:
            self.run.log_outputs(outputs, blob_uris)
        except Exception as exc:
            self.guard.failed("log_outputs", exc)

    def attach_log(self, path: Path) -> None:
        """Forward the task's captured stdout and stderr to the tracker."""
        try:
            self.run.attach_log(path)
        except Exception as exc:
            self.guard.failed("attach_log", exc)

    def finish(self, record: Mapping[str, Any], succeeded: bool) -> None:
        """Close the tracker's run."""
        try:
            self.run.finish(record, succeeded)
        except Exception as exc:
            self.guard.failed("finish", exc)
